"""Quickstart: a base model answers like a chat model, offline (invoke and stream).

Run: .venv/bin/python examples/quickstart.py
The first run converts the default model (about a minute) and indexes the built-in demos.
"""

import os

from langchain_icalign import ChatICAlign

MAX_NEW_TOKENS = int(os.environ.get("ICALIGN_MAX_NEW_TOKENS", "128"))

chat = ChatICAlign.from_defaults(max_new_tokens=MAX_NEW_TOKENS, seed=0)

# invoke: one answer, with the demos that shaped it in the metadata.
message = chat.invoke("How can I get better at remembering people's names?")
print(message.content)
print("\nfinish reason:", message.response_metadata["finish_reason"])
print("usage:", message.usage_metadata)
for demo in message.response_metadata["demos"][-3:]:
    print(f"demo {demo['id']}  score {demo['score']:.2f}  tokens {demo['tokens']}")

# stream: tokens as they come; the stop string is never shown.
print("\nstreaming:")
for chunk in chat.stream("Give me three ideas for a rainy Sunday."):
    print(chunk.content, end="", flush=True)
print()
