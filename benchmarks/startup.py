"""Cold and warm start of `icalign chat` on the default stack.

Cold: a fresh cache folder ($ICALIGN_HOME), so the default model is converted and the
built-in pool indexed. Warm: the same command again. Targets (issue 3): cold under 5 minutes
including the conversion; warm with 64 new tokens under 60 s on this machine.

Run: .venv/bin/python benchmarks/startup.py [--max-new-tokens 64] [--keep-home]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RESULTS = Path(__file__).parent / "results" / "startup.json"
QUESTION = "How do I make a good cup of tea?"


def run_chat(home: Path, max_new_tokens: int) -> tuple[float, str]:
    env = {**os.environ, "ICALIGN_HOME": str(home), "HF_HUB_OFFLINE": "1"}
    command = [
        sys.executable,
        "-m",
        "langchain_icalign.cli",
        "chat",
        QUESTION,
        "--max-new-tokens",
        str(max_new_tokens),
        "--seed",
        "0",
    ]
    started = time.perf_counter()
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=True)
    return time.perf_counter() - started, done.stdout.strip()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--max-new-tokens", type=int, default=64)
    parser.add_argument("--keep-home", action="store_true", help="keep the fresh cache folder")
    args = parser.parse_args()
    home = Path(tempfile.mkdtemp(prefix="icalign-bench-home-"))
    try:
        cold, _ = run_chat(home, args.max_new_tokens)
        warm, answer = run_chat(home, args.max_new_tokens)
    finally:
        if not args.keep_home:
            shutil.rmtree(home, ignore_errors=True)
    rows = [
        ("cold start (convert + index + answer)", cold, 300.0),
        (f"warm icalign chat, {args.max_new_tokens} new tokens", warm, 60.0),
    ]
    print(f"{'measure':<45} {'seconds':>8} {'target':>8}  met")
    for name, seconds, target in rows:
        print(f"{name:<45} {seconds:8.1f} {target:8.0f}  {'yes' if seconds <= target else 'NO'}")
    result = {
        "benchmark": "startup",
        "command": f"python benchmarks/startup.py --max-new-tokens {args.max_new_tokens}",
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
        "load_average_after": os.getloadavg(),
        "cold_seconds": round(cold, 1),
        "warm_seconds": round(warm, 1),
        "targets": {"cold_seconds": 300, "warm_seconds": 60},
        "answer_sample": answer[:300],
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
