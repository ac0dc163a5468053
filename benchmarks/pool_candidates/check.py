"""Check a candidate-pool JSONL file written by a demo author: format, counts and style.

Usage: python3 benchmarks/pool_candidates/check.py FILE.jsonl [FILE.jsonl ...]
"""

import json
import re
import statistics
import sys
from collections import Counter

LIST_ITEM = re.compile(r"(?m)^[ \t]*(?:[-*•+]|\d{1,3}[.)])[ \t]+\S")
HEADING = re.compile(r"(?m)^#{1,6} ")


def main() -> None:
    for path in sys.argv[1:]:
        records = []
        with open(path, encoding="utf-8") as handle:
            for number, line in enumerate(handle, 1):
                if not line.strip():
                    continue
                try:
                    record = json.loads(line)
                except json.JSONDecodeError as error:
                    sys.exit(f"{path}:{number}: bad JSON: {error}")
                for key in ("prompt", "response", "turns", "metadata"):
                    if key not in record:
                        sys.exit(f"{path}:{number}: missing key {key!r}")
                if not isinstance(record["prompt"], str) or not record["prompt"].strip():
                    sys.exit(f"{path}:{number}: empty prompt")
                if not isinstance(record["response"], str) or not record["response"].strip():
                    sys.exit(f"{path}:{number}: empty response")
                for turn in record["turns"]:
                    if not (
                        isinstance(turn, list)
                        and len(turn) == 2
                        and all(isinstance(t, str) and t.strip() for t in turn)
                    ):
                        sys.exit(f"{path}:{number}: each turn must be [user, assistant] strings")
                if not record["metadata"].get("category"):
                    sys.exit(f"{path}:{number}: metadata.category missing")
                records.append(record)
        single = [r for r in records if not r["turns"]]
        multi = [r for r in records if r["turns"]]
        words = [len(r["response"].split()) for r in records]
        prompts = Counter(r["prompt"].strip().lower() for r in records)
        print(f"{path}: {len(single)} single-turn, {len(multi)} multi-turn")
        if records:
            print(
                f"  response words: median {statistics.median(words):.0f}, "
                f"min {min(words)}, max {max(words)}"
            )
            n = len(records)
            lists = sum(bool(LIST_ITEM.search(r["response"])) for r in records) / n
            bold = sum("**" in r["response"] for r in records) / n
            headings = sum(bool(HEADING.search(r["response"])) for r in records) / n
            print(f"  with a list: {lists:.0%}  bold: {bold:.0%}  headings: {headings:.0%}")
            print(
                "  categories:",
                dict(Counter(r["metadata"]["category"] for r in records).most_common()),
            )
            dupes = [p for p, n in prompts.items() if n > 1]
            if dupes:
                print("  DUPLICATE PROMPTS:", dupes[:5])


if __name__ == "__main__":
    main()
