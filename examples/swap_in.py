"""Swap ChatICAlign in where an app used a fine-tuned chat model: the chain stays the same.

An app builds its chain around any `BaseChatModel`. Here the "fine-tuned chat model" is a
stand-in (FakeListChatModel), since no chat model's weights are available offline; in a
real app it would be ChatOpenAI, ChatHuggingFace over Llama-2-7b-chat, and so on.

Run: .venv/bin/python examples/swap_in.py
"""

import os

from langchain_core.language_models import BaseChatModel
from langchain_core.language_models.fake_chat_models import FakeListChatModel
from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.runnables import Runnable

from langchain_icalign import ChatICAlign

MAX_NEW_TOKENS = int(os.environ.get("ICALIGN_MAX_NEW_TOKENS", "128"))


def build_support_bot(model: BaseChatModel) -> Runnable:
    """The app's chain; it knows nothing about which model it runs on."""
    prompt = ChatPromptTemplate.from_messages(
        [
            ("system", "You are a support assistant for a bicycle shop. Be concise."),
            ("human", "{question}"),
        ]
    )
    return prompt | model | StrOutputParser()


question = {"question": "My bike chain keeps slipping. What should I check?"}

fine_tuned = FakeListChatModel(responses=["(stand-in for a fine-tuned chat model's answer)"])
print("fine-tuned chat model:", build_support_bot(fine_tuned).invoke(question))

base_model = ChatICAlign.from_defaults(max_new_tokens=MAX_NEW_TOKENS, seed=0)
print("base model + in-context alignment:", build_support_bot(base_model).invoke(question))
