import langchain_icalign

EXPECTED_ALL = [
    "AlignmentDemo",
    "AlignmentExampleSelector",
    "ChatICAlign",
    "ContextWindowExceededError",
    "Conversation",
    "DemoStore",
    "DemoStoreError",
    "EmbeddingMismatchError",
    "GenerationError",
    "HanFormat",
    "ModelCorruptedError",
    "PreparedPrompt",
    "PromptFormat",
    "SelectedDemo",
    "StoreConnectionError",
    "StoreCorruptedError",
    "StoreLockedError",
    "URIALFormat",
    "__version__",
]


def test_all_imports():
    assert sorted(langchain_icalign.__all__) == sorted(EXPECTED_ALL)
    for name in EXPECTED_ALL:
        assert hasattr(langchain_icalign, name)
