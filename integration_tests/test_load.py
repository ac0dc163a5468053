"""32 concurrent requests on the default stack all complete (short answers, small budget)."""

from __future__ import annotations

import asyncio

from langchain_icalign import AlignmentExampleSelector, ChatICAlign


def test_32_concurrent_ainvoke_calls_complete(default_chat):
    selector = AlignmentExampleSelector(
        store=default_chat.selector.store,
        token_counter=default_chat.selector.token_counter,
        max_tokens=200,
    )
    chat = ChatICAlign(llm=default_chat.llm, selector=selector, temperature=0, max_new_tokens=3)

    async def run():
        return await asyncio.gather(
            *(chat.ainvoke(f"Question number {i}: say hi.") for i in range(32))
        )

    results = asyncio.run(run())
    assert len(results) == 32
    assert all(r.usage_metadata["output_tokens"] <= 3 for r in results)
    assert all(r.response_metadata["finish_reason"] in ("stop", "length") for r in results)
