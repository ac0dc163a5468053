"""ChatICAlign inside an LCEL chain: prompt | model | parser.

Run: .venv/bin/python examples/lcel_chain.py
"""

import os

from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate

from langchain_icalign import ChatICAlign

MAX_NEW_TOKENS = int(os.environ.get("ICALIGN_MAX_NEW_TOKENS", "128"))

prompt = ChatPromptTemplate.from_messages(
    [
        ("system", "You are a friendly tutor who explains things simply."),
        ("human", "Explain {topic} in a few sentences."),
    ]
)
chain = (
    prompt | ChatICAlign.from_defaults(max_new_tokens=MAX_NEW_TOKENS, seed=0) | StrOutputParser()
)

print(chain.invoke({"topic": "why the sky is blue"}))
for answer in chain.batch([{"topic": "compound interest"}, {"topic": "what a CPU does"}]):
    print("---")
    print(answer)
