"""An agent on a base model: create_agent(model=ChatICAlign.from_defaults(), tools=[...]).

The model learns the tool-call syntax from demonstrations (two calls of each bound tool are
built from its schema); tool_choice is left to the model, and a call it opens is decoded
under a grammar (the name a bound tool's, the arguments its schema's). On this question the
default 270M model calls get_weather, reads the result and answers ("It's light rain,
11 °C."). On harder tool choices it is often wrong (benchmarks/README.md, Tool calling); a
larger base model (ChatICAlign.from_model_id(...)) does far better.

Run: .venv/bin/python examples/agent.py
"""

import os

from langchain.agents import create_agent
from langchain_core.tools import tool

from langchain_icalign import ChatICAlign

MAX_NEW_TOKENS = int(os.environ.get("ICALIGN_MAX_NEW_TOKENS", "96"))


@tool
def get_weather(city: str) -> str:
    """Current weather for a city."""
    forecasts = {"paris": "light rain, 11 °C", "cairo": "sunny, 27 °C"}
    return forecasts.get(city.strip().lower(), "cloudy, 15 °C")


# Han's format: with URIAL's (the default) the 270M model tends to call the tool again after
# its result instead of answering from it (the repeat is refused, and the answer is empty).
model = ChatICAlign.from_defaults(max_new_tokens=MAX_NEW_TOKENS, temperature=0, prompt_format="han")
agent = create_agent(model=model, tools=[get_weather])
result = agent.invoke({"messages": [("human", "What's the weather like in Paris right now?")]})
for message in result["messages"]:
    calls = getattr(message, "tool_calls", None)
    print(f"{message.type}: {message.content or calls}")
