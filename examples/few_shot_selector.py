"""AlignmentExampleSelector inside LangChain's FewShotChatMessagePromptTemplate.

The selector retrieves demos for the question from Qdrant and packs them under a token
budget measured with the model's tokenizer, most relevant last. Any chat model can then
consume the messages; here ChatICAlign renders them for the base model zero-shot (the
few-shot messages are already in the chat).

Run: .venv/bin/python examples/few_shot_selector.py
"""

import os

from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate, FewShotChatMessagePromptTemplate

from langchain_icalign import AlignmentExampleSelector, ChatICAlign
from langchain_icalign.defaults import default_store

MAX_NEW_TOKENS = int(os.environ.get("ICALIGN_MAX_NEW_TOKENS", "128"))

chat = ChatICAlign.from_defaults(max_new_tokens=MAX_NEW_TOKENS, seed=0, demo_mode="none")
selector = AlignmentExampleSelector(
    store=default_store(),
    token_counter=chat.backend.tokenizer,  # the generating model's tokenizer
    max_k=20,
    max_tokens=1500,
    max_demo_tokens=500,
)
few_shot = FewShotChatMessagePromptTemplate(
    example_selector=selector,
    example_prompt=ChatPromptTemplate.from_messages([("human", "{input}"), ("ai", "{output}")]),
    input_variables=["input"],
)
prompt = ChatPromptTemplate.from_messages([few_shot, ("human", "{input}")])

question = {"input": "What should I pack for a weekend hiking trip?"}
messages = prompt.invoke(question).to_messages()
print(f"{len(messages) // 2} demos selected; the last one, next to the question:")
print("  ", messages[-3].content[:100])
print()
print((prompt | chat | StrOutputParser()).invoke(question))
