"""Indexing: resumable, idempotent, each text embedded once; the `icalign index` command."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from langchain_icalign import AlignmentDemo, DemoStore
from langchain_icalign.cli import main
from langchain_icalign.loaders import (
    CachingEmbeddings,
    index_demos,
    index_sources,
    stored_ids,
    stored_vectors,
)
from unit_tests.conftest import BagOfWordsEmbeddings

FIXTURES = Path(__file__).parent / "fixtures"


class FailingEmbeddings(BagOfWordsEmbeddings):
    """Embeds `budget` document batches, then fails like an interrupted run."""

    def __init__(self, budget: int) -> None:
        super().__init__()
        self.budget = budget
        self.texts: list[str] = []

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        if self.budget <= 0:
            raise KeyboardInterrupt
        self.budget -= 1
        self.texts += texts
        return super().embed_documents(texts)


def _demos(n: int) -> list[AlignmentDemo]:
    return [
        AlignmentDemo(prompt=f"Question number {i}?", response=f"Answer {i}.") for i in range(n)
    ]


def test_index_demos_is_idempotent(store: DemoStore) -> None:
    demos = _demos(10)
    first = index_demos(store, demos + demos[:3], batch_size=4)
    assert len(first.added) == 10
    second = index_demos(store, demos, batch_size=4)
    assert second.added == []
    assert len(second.already_stored) == 10
    assert store.count() == 10


def test_index_demos_resumes_after_an_interruption(tmp_path: Path) -> None:
    demos = _demos(10)
    failing = FailingEmbeddings(budget=2)  # 2 batches, then the run is interrupted
    with DemoStore(failing, path=tmp_path / "store") as store:
        with pytest.raises(KeyboardInterrupt):
            index_demos(store, demos, batch_size=3)
        assert store.count() == 6  # the batches written before the interruption are kept
    embeddings = FailingEmbeddings(budget=100)
    with DemoStore(embeddings, path=tmp_path / "store") as store:
        result = index_demos(store, demos, batch_size=3)
        assert len(result.already_stored) == 6
        assert result.added == [d.id for d in demos[6:]]
        assert sorted(embeddings.texts) == sorted(d.prompt for d in demos[6:])  # no re-embedding
        assert store.count() == 10


def test_stored_ids_and_vectors(store: DemoStore) -> None:
    demos = _demos(3)
    store.add_demos(demos[:2])
    assert stored_ids(store, [d.id for d in demos], batch_size=1) == {demos[0].id, demos[1].id}
    vectors = stored_vectors(store, batch_size=1)
    assert vectors.shape == (2, store.vector_size)


def test_caching_embeddings_embed_each_text_once(embeddings: BagOfWordsEmbeddings) -> None:
    cache = CachingEmbeddings(embeddings)
    assert cache.model_name == "bag-of-words"
    first = cache.embed_documents(["a", "b", "a"])
    again = cache.embed_documents(["b", "a"])
    assert embeddings.calls == 1
    assert again == [first[1], first[0]]
    assert (cache.hits, cache.misses) == (3, 2)
    cache.forget(["a"])
    assert len(cache) == 1


def test_index_sources_embeds_once_with_near_dedup(embeddings: BagOfWordsEmbeddings) -> None:
    cache = CachingEmbeddings(embeddings)
    with DemoStore(cache, embedding_name="bag-of-words") as store:
        summary = index_sources(
            store,
            [FIXTURES / "dolly.jsonl", FIXTURES / "lima.jsonl"],
            dedup_threshold=0.99,
            batch_size=2,
        )
        assert len(summary.added) == 6
        assert cache.misses == 6  # embedded once for near-duplicates, reused by the store
        assert len(cache) == 0  # forgotten once stored


def test_index_sources_summary_adds_up(store: DemoStore) -> None:
    summary = index_sources(
        store,
        [FIXTURES / "sharegpt.json", FIXTURES / "sharegpt.json", FIXTURES / "messages.jsonl"],
        eval_prompts=["why is the sky blue"],
        decontaminate_threshold=None,
    )
    counts = summary.counts()
    assert counts == {
        "read": 9,
        "added": 5,
        "already_stored": 0,
        "invalid": 0,
        "duplicates": 3,
        "near_duplicates": 0,
        "decontaminated": 1,
        "decontaminated_exact": 1,
        "decontaminated_near": 0,
        "too_short": 0,
        "too_long": 0,
        "left_out_by_loader": 0,
        "total_in_store": 5,
    }
    again = index_sources(
        store,
        [FIXTURES / "sharegpt.json", FIXTURES / "sharegpt.json", FIXTURES / "messages.jsonl"],
        eval_prompts=["why is the sky blue"],
        decontaminate_threshold=None,
    ).counts()
    assert again["added"] == 0
    assert again["already_stored"] == 5
    assert again["duplicates"] == 3
    assert again["decontaminated"] == 1


def test_near_duplicates_of_stored_demos_are_left_out(store: DemoStore) -> None:
    index_sources(store, [FIXTURES / "dolly.jsonl"])
    rewritten = [
        {"prompt": "name some ways to reduce food waste at home", "response": "Plan your meals."}
    ]
    summary = index_sources(store, [rewritten], dedup_threshold=0.95)
    assert summary.counts()["near_duplicates"] == 1
    assert "a demo already stored" in summary.cleaning.dropped[0].detail
    assert store.count() == 3


def test_dry_run_writes_nothing(store: DemoStore) -> None:
    summary = index_sources(store, [FIXTURES / "dolly.jsonl"], dry_run=True)
    assert summary.counts()["read"] == 3
    assert summary.added == []
    assert store.count() == 0


# -- the command --------------------------------------------------------------------------


@pytest.fixture
def fake_embeddings(monkeypatch: pytest.MonkeyPatch) -> BagOfWordsEmbeddings:
    fake = BagOfWordsEmbeddings()
    monkeypatch.setattr("langchain_icalign.defaults.default_embeddings", lambda: fake)
    return fake


def _index(*args: str | Path) -> int:
    return main(["index", *(str(a) for a in args), "--no-progress"])


def _report(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text())


@pytest.mark.usefixtures("fake_embeddings")
def test_cli_index_fixtures_then_second_run_adds_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store, report = tmp_path / "store", tmp_path / "report.json"
    files = [FIXTURES / name for name in ("alpaca.json", "sharegpt.json", "messages.jsonl")]
    assert _index(*files, "--store", store, "--report", report) == 0
    first = _report(report)
    assert first["counts"]["added"] == 10
    assert [s["format"] for s in first["sources"]] == ["alpaca", "sharegpt", "messages"]
    assert all(s["detected"] for s in first["sources"])
    err = capsys.readouterr().err
    assert "alpaca (detected:" in err
    assert "added" in err
    assert _index(*files, "--store", store, "--report", report) == 0
    second = _report(report)["counts"]
    assert (second["added"], second["already_stored"], second["total_in_store"]) == (0, 10, 10)


@pytest.mark.usefixtures("fake_embeddings")
def test_cli_bad_file_leaves_the_store_as_it_was(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = tmp_path / "store"
    assert _index(FIXTURES / "dolly.jsonl", "--store", store) == 0
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"prompt": "Fine?", "response": "Yes."}\n{"prompt": "Broken?"\n')
    capsys.readouterr()
    assert _index(FIXTURES / "lima.jsonl", bad, "--store", store) == 1
    assert f"icalign: error: {bad}:2: invalid JSON" in capsys.readouterr().err
    report = tmp_path / "r.json"
    assert _index(FIXTURES / "dolly.jsonl", "--store", store, "--report", report) == 0
    assert _report(report)["counts"]["total_in_store"] == 3  # the lima demos never went in


@pytest.mark.usefixtures("fake_embeddings")
def test_cli_skip_invalid_reports_each_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"prompt": "Fine?", "response": "Yes."}\n{oops\n{"prompt": "No answer?"}\n')
    report = tmp_path / "r.json"
    args = (bad, "--store", tmp_path / "store", "--skip-invalid", "--report", report)
    assert _index(*args) == 0
    err = capsys.readouterr().err
    assert f"skipped {bad}:2: invalid JSON" in err
    assert f"skipped {bad}:3: missing field 'response'" in err
    data = _report(report)
    assert [(item["line"], item["reason"]) for item in data["invalid"]] == [
        (2, "invalid JSON (Expecting property name enclosed in double quotes at column 2)"),
        (3, "missing field 'response'"),
    ]
    assert data["counts"]["added"] == 1


@pytest.mark.usefixtures("fake_embeddings")
def test_cli_columns_format_and_cleaning_options(tmp_path: Path) -> None:
    report = tmp_path / "r.json"
    common = ("--store", tmp_path / "store", "--report", report)
    assert _index(FIXTURES / "qa_custom.jsonl", *common) == 1  # undetectable without a mapping
    assert (
        _index(
            FIXTURES / "qa_custom.jsonl",
            "--column",
            "prompt=question",
            "--column",
            "response=answer",
            "--metadata-field",
            "topic",
            *common,
        )
        == 0
    )
    assert _report(report)["counts"]["added"] == 2
    assert (
        _index(
            FIXTURES / "messages.jsonl",
            "--format",
            "messages",
            "--decontaminate",
            FIXTURES / "eval_prompts.jsonl",
            "--decontaminate-threshold",
            "1",
            "--max-turns",
            "1",
            *common,
        )
        == 0
    )
    data = _report(report)
    assert data["counts"]["decontaminated_exact"] == 1  # "Why is the sky blue?"
    assert data["dropped"][0]["prompt"] == "Why is the sky blue?"
    assert _index(FIXTURES / "dolly.jsonl", "--column", "oops", *common) == 2


@pytest.mark.usefixtures("fake_embeddings")
def test_cli_token_bounds_use_the_given_tokenizer(tmp_path: Path, byte_tokenizer: Any) -> None:
    folder = tmp_path / "tokenizer"
    byte_tokenizer.save_pretrained(folder)
    report = tmp_path / "r.json"
    args = ("--store", tmp_path / "store", "--report", report, "--tokenizer", folder)
    assert _index(FIXTURES / "dolly.jsonl", "--max-tokens", "120", *args) == 0
    counts = _report(report)["counts"]
    assert counts["too_long"] == 2  # one byte a token: only the haiku answer is short
    assert counts["added"] == 1


@pytest.mark.usefixtures("fake_embeddings")
def test_cli_oasst_languages(tmp_path: Path) -> None:
    report = tmp_path / "r.json"
    args = ("--store", tmp_path / "store", "--report", report, "--lang", "en")
    assert _index(FIXTURES / "oasst_messages.jsonl", *args) == 0
    data = _report(report)
    assert data["counts"]["added"] == 1
    assert data["sources"][0]["left_out_by_loader"] == {
        "language not selected": 1,
        "no assistant reply": 1,
    }


@pytest.mark.usefixtures("fake_embeddings")
def test_cli_dry_run_creates_no_store(tmp_path: Path) -> None:
    report, store = tmp_path / "r.json", tmp_path / "store"
    assert _index(FIXTURES / "lima.jsonl", "--store", store, "--dry-run", "--report", report) == 0
    assert not store.exists()
    assert _report(report)["counts"]["read"] == 3
    assert _report(report)["dry_run"] is True


def test_cli_needs_a_store(capsys: pytest.CaptureFixture[str]) -> None:
    assert _index(FIXTURES / "dolly.jsonl") == 2
    assert "give --store PATH or --url URL" in capsys.readouterr().err


def test_loads_are_checked_before_the_store_opens(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    opened: list[bool] = []
    monkeypatch.setattr(
        "langchain_icalign.defaults.default_embeddings",
        lambda: opened.append(True) or BagOfWordsEmbeddings(),
    )
    bad = tmp_path / "bad.jsonl"
    bad.write_text("{")
    assert _index(FIXTURES / "dolly.jsonl", bad, "--store", tmp_path / "store") == 1
    assert opened == []  # no embeddings loaded, no store opened
    assert not (tmp_path / "store").exists()  # not even an empty store folder
