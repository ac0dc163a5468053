"""The built-in demo pool: schema, size, categories, house style, duplicates, shipped vectors.

The bounds are the house style of docs/pool_style.md, measured (benchmarks/pool_report.py).
"""

import collections
import json
from importlib import resources
from pathlib import Path

import numpy as np
import pytest

from langchain_icalign.curation import pool_style
from langchain_icalign.defaults.builtin_demos import (
    VECTORS_FILE,
    VECTORS_MANIFEST,
    builtin_pool,
    builtin_pool_version,
    builtin_vectors,
    urial_set,
)
from langchain_icalign.evaluation.decontaminate import normalize_prompt

STYLE_GUIDE = Path(__file__).parents[1] / "docs" / "pool_style.md"
SHARED = Path(__file__).parents[2] / "shared" / "data"
FORBIDDEN = ["Question:", "Here\u2019s an example answer", "# Query", "# Answer", "<bos>", "<eos>"]


def categories_of_the_style_guide():
    text = STYLE_GUIDE.read_text(encoding="utf-8")
    listing = text.split("`metadata.category` is one of:", 1)[1]
    return {word.strip(" .\n") for word in listing.split(",")}


def test_every_line_has_the_schema_and_a_known_category():
    known = categories_of_the_style_guide()
    assert len(known) >= 40
    folder = resources.files("langchain_icalign.data").joinpath("pool")
    files = [f for f in folder.iterdir() if f.name.endswith(".jsonl")]
    assert files
    for file in files:
        for number, line in enumerate(file.read_text(encoding="utf-8").splitlines(), 1):
            record = json.loads(line)
            assert set(record) == {"prompt", "response", "turns", "metadata"}, (file.name, number)
            assert record["metadata"]["category"] in known, (file.name, number)
            assert all(len(turn) == 2 for turn in record["turns"]), (file.name, number)


def test_size_categories_and_multi_turn():
    pool = builtin_pool()
    single = [d for d in pool if not d.turns]
    multi = [d for d in pool if d.turns]
    assert len(single) >= 1500
    assert len(multi) >= 100
    counts = collections.Counter(d.metadata["category"] for d in pool)
    assert len(counts) >= 20
    for needed in (
        "advice",
        "how-to",
        "coding",
        "debugging",
        "math",
        "writing",
        "rewriting",
        "summarising",
        "extraction",
        "classification",
        "brainstorming",
        "creative",
        "role-play",
        "health",
        "legal",
        "finance",
        "safety",
        "comparison",
    ):
        assert counts[needed] >= 10, needed


def test_house_style_is_held():
    style = pool_style(builtin_pool())
    assert style.bold_share <= 0.01
    assert style.heading_share <= 0.01
    assert 0.35 <= style.list_share <= 0.65
    assert 130 <= style.median_words <= 300
    assert style.p90_words <= 420
    assert style.marker_leak_share == 0


def test_no_duplicate_or_near_duplicate_prompts():
    pool = builtin_pool()
    assert len({d.id for d in pool}) == len(pool)
    prompts = [normalize_prompt(d.prompt) for d in pool]
    assert len(set(prompts)) == len(prompts)
    vectors = np.array(list(builtin_vectors("sentence-transformers/all-MiniLM-L6-v2").values()))
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    similarity = vectors @ vectors.T
    np.fill_diagonal(similarity, 0)
    assert similarity.max() < 0.9


def test_no_format_markers_in_the_text():
    system, constant = urial_set()
    texts = [system]
    for demo in (*builtin_pool(), *constant):
        texts += [demo.prompt, demo.response, *(t for turn in demo.turns for t in turn)]
    for text in texts:
        assert not any(marker in text for marker in FORBIDDEN), text[:80]


@pytest.mark.skipif(not SHARED.is_dir(), reason="the shared third-party data (../shared) is absent")
def test_no_prompt_is_a_third_party_prompt():
    theirs = set()
    for file in [*SHARED.glob("eval/*.jsonl"), *SHARED.glob("pools/*.jsonl")]:
        for line in file.read_text(encoding="utf-8").splitlines():
            record = json.loads(line)
            if isinstance(record.get("prompt"), str):
                theirs.add(normalize_prompt(record["prompt"]))
    ours = {
        normalize_prompt(t) for d in builtin_pool() for t in (d.prompt, *(u for u, _ in d.turns))
    }
    assert not ours & theirs


def test_shipped_vectors_match_the_pool():
    manifest = json.loads(
        resources.files("langchain_icalign.data").joinpath(VECTORS_MANIFEST).read_text("utf-8")
    )
    assert manifest["pool_version"] == builtin_pool_version()
    assert manifest["embedding_model"] == "sentence-transformers/all-MiniLM-L6-v2"
    assert manifest["ids"] == [d.id for d in builtin_pool()]
    with resources.files("langchain_icalign.data").joinpath(VECTORS_FILE).open("rb") as handle:
        matrix = np.load(handle)
    assert matrix.shape == (len(builtin_pool()), 384)
    assert builtin_vectors("some-other-model") is None


def test_urial_set_is_a_header_and_three_demos():
    system, demos = urial_set()
    assert 50 <= len(system.split()) <= 200
    assert len(demos) == 3
    assert {d.metadata["category"] for d in demos} >= {"safety"}


def test_version_is_stable():
    assert builtin_pool_version() == builtin_pool_version()
    assert len(builtin_pool_version()) == 12
