"""Print a candidate file's voice profile beside the target: marker-word rates per 1,000 words.

The targets are the rates in the ChatGPT answers of the dev half of the LIMA test prompts
(benchmarks/splits; numbers only, no text): demos in that voice help the default model,
while the same content in another voice does not (benchmarks/README.md, "The built-in pool").
A rate outside [target / 1.6, target * 1.6] is flagged.

Usage: python3 benchmarks/pool_candidates/voice.py FILE.jsonl [FILE.jsonl ...]
"""

import itertools
import json
import re
import sys
from collections import Counter

TARGETS = {
    "and": 41.8,
    "can": 8.6,
    "that": 8.8,
    "your": 6.8,
    "it": 6.8,
    "you": 5.9,
    "this": 5.5,
    "their": 4.0,
    "they": 2.9,
    "these": 2.6,
    "may": 2.6,
    "such as": 2.2,
    "provide": 1.9,
    "it is": 1.8,
    "it's": 1.7,
    "help": 1.6,
    "important": 1.5,
    "which": 1.4,
    "however": 1.4,
    "various": 1.3,
    "also": 1.2,
    "individuals": 1.2,
    "specific": 1.0,
    "significant": 0.9,
    "including": 0.9,
    "often": 0.9,
    "remember": 0.8,
    "factors": 0.8,
    "potential": 0.7,
    "allows": 0.7,
    "additionally": 0.55,
    "overall": 0.55,
    "diverse": 0.5,
    "ensure": 0.5,
    "essential": 0.45,
    "allowing": 0.4,
    "crucial": 0.3,
    "ultimately": 0.3,
    "because": 0.12,
}
WORD = re.compile(r"[A-Za-z']+")


def profile(texts):
    counts = Counter()
    total = 0
    for text in texts:
        words = [w.lower() for w in WORD.findall(text.replace("\u2019", "'"))]
        counts.update(words)
        counts.update(" ".join(pair) for pair in itertools.pairwise(words))
        total += len(words)
    return {key: counts[key] / max(total, 1) * 1000 for key in TARGETS}, total


def main():
    for path in sys.argv[1:]:
        texts = []
        with open(path, encoding="utf-8") as handle:
            for line in handle:
                if line.strip():
                    record = json.loads(line)
                    texts.append(record["response"])
                    texts.extend(turn[1] for turn in record.get("turns", []))
        rates, total = profile(texts)
        off = 0
        print(f"{path}: {total} words")
        print(f"  {'word':<14} {'target':>7} {'file':>7}")
        for key, target in TARGETS.items():
            rate = rates[key]
            flag = ""
            if not target / 1.6 <= rate <= target * 1.6:
                flag = "  <-- too low" if rate < target else "  <-- too high"
            off += bool(flag)
            print(f"  {key:<14} {target:>7.2f} {rate:>7.2f}{flag}")
        print(f"  {off} of {len(TARGETS)} rates outside the range")


if __name__ == "__main__":
    main()
