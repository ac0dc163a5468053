"""The built-in demo pool and URIAL-style set: schema, coverage, no duplicates, lengths."""

import collections
import json
import re
from importlib import resources

from langchain_icalign.builtin_demos import builtin_pool, builtin_pool_version, urial_set

CATEGORIES = {
    "advice",
    "explanation",
    "factual",
    "coding",
    "math",
    "writing",
    "rewriting",
    "summarization",
    "brainstorming",
    "comparison",
    "planning",
    "safety",
    "honesty",
}
FORBIDDEN = ["Question:", "Here\u2019s an example answer", "# Query", "# Answer", "<bos>", "<eos>"]


def test_every_line_has_the_schema():
    folder = resources.files("langchain_icalign.data").joinpath("pool")
    for file in folder.iterdir():
        for number, line in enumerate(file.read_text(encoding="utf-8").splitlines(), 1):
            record = json.loads(line)
            assert set(record) == {"prompt", "response", "turns", "metadata"}, (file.name, number)
            assert record["metadata"]["category"] in CATEGORIES, (file.name, number)
            assert bool(record["turns"]) == bool(record["metadata"].get("multi_turn")), number


def test_size_coverage_and_multi_turn():
    pool = builtin_pool()
    assert len(pool) >= 200
    counts = collections.Counter(d.metadata["category"] for d in pool)
    assert set(counts) == CATEGORIES
    assert min(counts.values()) >= 10
    assert sum(1 for d in pool if d.turns) >= 10


def test_no_duplicates():
    pool = builtin_pool()
    assert len({d.id for d in pool}) == len(pool)
    prompts = [re.sub(r"\W+", " ", d.prompt.lower()).strip() for d in pool]
    assert len(set(prompts)) == len(prompts)


def test_no_format_markers_in_the_text():
    system, constant = urial_set()
    texts = [system]
    for demo in (*builtin_pool(), *constant):
        texts += [demo.prompt, demo.response, *(t for turn in demo.turns for t in turn)]
    for text in texts:
        assert not any(marker in text for marker in FORBIDDEN), text[:80]


def test_answer_length_distribution_in_words():
    words = sorted(len(d.response.split()) for d in builtin_pool())
    assert words[0] >= 40
    assert words[-1] <= 320
    assert 120 <= words[len(words) // 2] <= 260


def test_urial_set_is_a_header_and_three_demos():
    system, demos = urial_set()
    assert 50 <= len(system.split()) <= 200
    assert len(demos) == 3
    assert {d.metadata["category"] for d in demos} >= {"safety"}


def test_version_is_stable():
    assert builtin_pool_version() == builtin_pool_version()
    assert len(builtin_pool_version()) == 12
