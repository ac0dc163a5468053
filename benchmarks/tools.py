"""Tool calling on the default base model: 30 tasks written for this benchmark.

For each task the model gets the same six tools and one question; we record whether it
wrote a parsable call, called the right tool, and filled the right arguments. Two
conditions: tool_choice="auto" (the model decides) and tool_choice="any" (a call is
forced; the tool name is still the model's choice).

Run: .venv/bin/python benchmarks/tools.py [--limit N] [--max-tokens 1000]
Writes benchmarks/results/tools.json.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

from langchain_core.tools import tool

RESULTS = Path(__file__).parent / "results" / "tools.json"


@tool
def get_weather(city: str) -> str:
    """Current weather for a city."""
    return "sunny"


@tool
def convert_currency(amount: float, from_currency: str, to_currency: str) -> float:
    """Convert an amount of money between currencies given as ISO codes (USD, EUR, ...)."""
    return amount


@tool
def calculator(expression: str) -> float:
    """Evaluate an arithmetic expression such as '12 * (3 + 4)'."""
    return 0.0


@tool
def search_flights(origin: str, destination: str, date: str) -> list[str]:
    """Find flights between two cities on a date (YYYY-MM-DD)."""
    return []


@tool
def set_reminder(text: str, time: str) -> str:
    """Set a reminder with a text at a time (HH:MM, 24-hour)."""
    return "ok"


@tool
def define_word(word: str) -> str:
    """Dictionary definition of an English word."""
    return ""


TOOLS = [get_weather, convert_currency, calculator, search_flights, set_reminder, define_word]

# (question, tool, expected arguments: each must match, strings case-insensitively)
TASKS: list[tuple[str, str, dict[str, Any]]] = [
    ("Is it raining in Dublin at the moment?", "get_weather", {"city": "Dublin"}),
    ("What's the temperature in Nairobi right now?", "get_weather", {"city": "Nairobi"}),
    ("Tell me the current weather in Osaka.", "get_weather", {"city": "Osaka"}),
    ("Should I take an umbrella in Vancouver today?", "get_weather", {"city": "Vancouver"}),
    ("How windy is it in Chicago now?", "get_weather", {"city": "Chicago"}),
    (
        "How many euros is 250 US dollars?",
        "convert_currency",
        {"amount": 250, "from_currency": "USD", "to_currency": "EUR"},
    ),
    (
        "Convert 80 British pounds to Japanese yen.",
        "convert_currency",
        {"amount": 80, "from_currency": "GBP", "to_currency": "JPY"},
    ),
    (
        "What is 1200 Swiss francs in US dollars?",
        "convert_currency",
        {"amount": 1200, "from_currency": "CHF", "to_currency": "USD"},
    ),
    (
        "I have 45 euros. How much is that in Canadian dollars?",
        "convert_currency",
        {"amount": 45, "from_currency": "EUR", "to_currency": "CAD"},
    ),
    (
        "Change 10 USD into Mexican pesos.",
        "convert_currency",
        {"amount": 10, "from_currency": "USD", "to_currency": "MXN"},
    ),
    ("What is 348 times 29?", "calculator", {}),
    ("Compute (17 + 58) / 5.", "calculator", {}),
    ("What do I get if I divide 9876 by 12?", "calculator", {}),
    ("Calculate 2 to the power of 20.", "calculator", {}),
    ("What's 15% of 640?", "calculator", {}),
    (
        "Find me a flight from Madrid to Rome on 2026-12-14.",
        "search_flights",
        {"origin": "Madrid", "destination": "Rome", "date": "2026-12-14"},
    ),
    (
        "Are there flights from Boston to Denver on 2027-01-03?",
        "search_flights",
        {"origin": "Boston", "destination": "Denver", "date": "2027-01-03"},
    ),
    (
        "Search flights Sydney to Auckland, 2026-12-20.",
        "search_flights",
        {"origin": "Sydney", "destination": "Auckland", "date": "2026-12-20"},
    ),
    (
        "I need to fly from Cairo to Athens on 2027-02-11.",
        "search_flights",
        {"origin": "Cairo", "destination": "Athens", "date": "2027-02-11"},
    ),
    (
        "Look up flights leaving Lima for Bogota on 2026-12-31.",
        "search_flights",
        {"origin": "Lima", "destination": "Bogota", "date": "2026-12-31"},
    ),
    (
        "Remind me to call the dentist at 09:30.",
        "set_reminder",
        {"text": "call the dentist", "time": "09:30"},
    ),
    (
        "Set a reminder at 18:00 to water the plants.",
        "set_reminder",
        {"text": "water the plants", "time": "18:00"},
    ),
    (
        "At 07:15 remind me to take my vitamins.",
        "set_reminder",
        {"text": "take my vitamins", "time": "07:15"},
    ),
    (
        "Please remind me at 21:45 to lock the back door.",
        "set_reminder",
        {"text": "lock the back door", "time": "21:45"},
    ),
    (
        "Create a reminder for 12:00: lunch with Sam.",
        "set_reminder",
        {"text": "lunch with Sam", "time": "12:00"},
    ),
    ("What does the word 'ephemeral' mean?", "define_word", {"word": "ephemeral"}),
    ("Define 'gregarious'.", "define_word", {"word": "gregarious"}),
    ("What's the meaning of 'ubiquitous'?", "define_word", {"word": "ubiquitous"}),
    ("Look up the definition of 'serendipity'.", "define_word", {"word": "serendipity"}),
    ("I keep hearing 'laconic'. What does it mean?", "define_word", {"word": "laconic"}),
]


def arguments_match(expected: dict[str, Any], actual: dict[str, Any]) -> bool:
    for key, value in expected.items():
        got = actual.get(key)
        if isinstance(value, str):
            if not isinstance(got, str) or got.strip().lower() != value.lower():
                return False
        elif isinstance(value, (int, float)) and (
            not isinstance(got, (int, float)) or float(got) != float(value)
        ):
            return False
    return True


def run_condition(
    chat: Any, tool_choice: str, tasks: list[tuple[str, str, dict[str, Any]]]
) -> dict:
    bound = chat.bind_tools(TOOLS, tool_choice=tool_choice)
    rows = []
    for question, expected_tool, expected_args in tasks:
        started = time.perf_counter()
        message = bound.invoke(question)
        calls = message.tool_calls
        parsable = bool(calls) or any(
            c.get("name") for c in message.invalid_tool_calls
        )  # JSON parsed, even if the arguments were wrong
        right_tool = bool(calls) and calls[0]["name"] == expected_tool
        rows.append(
            {
                "question": question,
                "expected_tool": expected_tool,
                "called": bool(calls),
                "parsable": parsable,
                "right_tool": right_tool,
                "right_arguments": right_tool and arguments_match(expected_args, calls[0]["args"]),
                "tool_calls": calls,
                "invalid_tool_calls": message.invalid_tool_calls,
                "content": message.content[:200],
                "seconds": round(time.perf_counter() - started, 1),
            }
        )
        print(
            f"  [{tool_choice}] {question[:50]:<50} -> {calls[0]['name'] if calls else '-'}",
            flush=True,
        )
    n = len(rows)
    return {
        "tool_choice": tool_choice,
        "tasks": n,
        "parsable_call_share": sum(r["parsable"] for r in rows) / n,
        "right_tool_share": sum(r["right_tool"] for r in rows) / n,
        "right_arguments_share": sum(r["right_arguments"] for r in rows) / n,
        "rows": rows,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--limit", type=int, default=len(TASKS))
    parser.add_argument("--max-tokens", type=int, default=1000, help="retrieved-demo budget")
    parser.add_argument("--conditions", default="any,auto")
    args = parser.parse_args()
    from langchain_icalign import ChatICAlign

    chat = ChatICAlign.from_defaults(
        temperature=0, max_new_tokens=64, selector_kwargs={"max_tokens": args.max_tokens}
    )
    tasks = TASKS[: args.limit]
    results = []
    for choice in args.conditions.split(","):
        results.append(run_condition(chat, choice, tasks))
        write(results, args.max_tokens)  # a long run keeps what it has measured
    print(
        f"\n{'tool_choice':<12} {'tasks':>5} {'parsable':>9} {'right tool':>11} {'right args':>11}"
    )
    for r in results:
        print(
            f"{r['tool_choice']:<12} {r['tasks']:>5} {r['parsable_call_share']:>9.0%} "
            f"{r['right_tool_share']:>11.0%} {r['right_arguments_share']:>11.0%}"
        )
    write(results, args.max_tokens)
    print(f"wrote {RESULTS}")


def write(results: list[dict], max_tokens: int) -> None:
    """Write the results, keeping conditions of an earlier run at the same budget not rerun."""
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    if RESULTS.is_file():
        earlier = json.loads(RESULTS.read_text(encoding="utf-8"))
        if earlier.get("retrieved_demo_budget") == max_tokens:
            rerun = {r["tool_choice"] for r in results}
            kept = [r for r in earlier["conditions"] if r["tool_choice"] not in rerun]
            results = sorted([*kept, *results], key=lambda r: r["tool_choice"])
    RESULTS.write_text(
        json.dumps(
            {
                "benchmark": "tools",
                "command": f"python benchmarks/tools.py --max-tokens {max_tokens}",
                "model": "google/gemma-3-270m (base), greedy, max_new_tokens=64",
                "retrieved_demo_budget": max_tokens,
                "conditions": results,
            },
            indent=2,
        )
        + "\n",
        encoding="utf-8",
    )


if __name__ == "__main__":
    main()
