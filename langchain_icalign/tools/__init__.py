"""Tool calls and structured output for a base model.

- `syntax`: the `<tool_call>` syntax, written and parsed here only.
- `plan`: `AnswerPlan`, the one decision for forced / auto / JSON answers, read by the
  prompt side (`request_mode`) and the generation side (`answer_steps`).
- `request_mode`: one call's tools, tool choice and JSON mode as prompt changes, demos,
  stops and grammar; `binding`: `bind_tools`'s arguments checked.
- `grammar` (what a constrained backend follows), `guided_object` (field by field where
  none), `call_guard` (where a parsed call came from), `structured_output`.
"""
