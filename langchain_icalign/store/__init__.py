"""`DemoStore`: alignment demos in a Qdrant collection.

`demo_store` holds the class; `collection` opens, checks and writes the collection,
`search` finds the demos nearest a query (`local_search` for a plain local search),
`schema` says how a demo is kept in Qdrant and `integrity` checks a local folder.
"""

from langchain_icalign.store.demo_store import DemoStore
from langchain_icalign.store.schema import DemoFilter, embedding_model_name
from langchain_icalign.store.search import ScoredDemo

__all__ = ["DemoFilter", "DemoStore", "ScoredDemo", "embedding_model_name"]
