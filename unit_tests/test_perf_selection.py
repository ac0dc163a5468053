"""Speed-ups of selection keep its results: near-duplicate removal."""

import random

from langchain_icalign import AlignmentDemo
from langchain_icalign.selector import _drop_near_duplicates


def _reference(candidates, threshold):
    """The rule as first written: Jaccard of word sets against every kept candidate."""
    import re

    def words(demo):
        return frozenset(re.findall(r"\w+", f"{demo.prompt} {demo.response}".lower()))

    kept = []
    for candidate in candidates:
        w = words(candidate[0])
        if all(len(w & o) / max(1, len(w | o)) < threshold for _, o in kept):
            kept.append((candidate, w))
    return [c for c, _ in kept]


def test_dedup_matches_the_plain_jaccard_rule():
    rng = random.Random(0)
    vocabulary = [f"w{i}" for i in range(40)]
    for _ in range(200):
        candidates = []
        for index in range(12):
            size = rng.randint(0, 30)
            text = " ".join(rng.choice(vocabulary) for _ in range(size))
            candidates.append((AlignmentDemo(prompt=f"q{index % 3}", response=text or "x"), 0.5))
        for threshold in (0.3, 0.6, 0.9, 1.0):
            assert _drop_near_duplicates(candidates, threshold) == _reference(candidates, threshold)
