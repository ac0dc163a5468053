"""The offline defaults as parts: cache paths, the default models, the built-in pool, settings.

- `paths`: the cache folder (`$ICALIGN_HOME`) and where each default model lives.
- `model_cache`, `gguf_conversion`, `model_files`: the default GGUF converted once into a
  Hugging Face folder (locked, atomic, with a progress display), checked on every use.
- `loading`: `load_causal_lm` for any causal LM.
- `builtin_demos`: the shipped pool, its vectors, the URIAL set and the tool-call demos.
- `stack`: `DEFAULT_SETTINGS`, the default embeddings and store, the base model.

Nothing here builds a chat model: `ChatICAlign.from_defaults` (`chat_models.assembly`)
assembles these parts.
"""

from __future__ import annotations

import importlib
import warnings
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from langchain_icalign.defaults.loading import load_causal_lm
    from langchain_icalign.defaults.model_cache import ensure_default_model
    from langchain_icalign.defaults.paths import default_gguf_path, icalign_home
    from langchain_icalign.defaults.stack import (
        DEFAULT_SETTINGS,
        DefaultSettings,
        DemoMode,
        default_embeddings,
        default_store,
        load_base_model,
        pipeline_llm,
    )

__all__ = [
    "DEFAULT_SETTINGS",
    "DefaultSettings",
    "DemoMode",
    "default_embeddings",
    "default_gguf_path",
    "default_store",
    "ensure_default_model",
    "icalign_home",
    "load_base_model",
    "load_causal_lm",
    "pipeline_llm",
]

# Each name's module, imported on first use: `defaults.paths` stays cheap to import (the
# store reads the default embeddings' folder from it without loading the default stack).
_HOMES = {
    "DEFAULT_SETTINGS": "stack",
    "DefaultSettings": "stack",
    "DemoMode": "stack",
    "default_embeddings": "stack",
    "default_store": "stack",
    "load_base_model": "stack",
    "pipeline_llm": "stack",
    "default_gguf_path": "paths",
    "icalign_home": "paths",
    "ensure_default_model": "model_cache",
    "load_causal_lm": "loading",
}


def __getattr__(name: str) -> Any:
    if name in _HOMES:
        module = importlib.import_module(f"{__name__}.{_HOMES[name]}")
        return getattr(module, name)
    # Deprecated for one release: the chat model is assembled in `chat_models`, which
    # imports this package (never the other way round).
    if name == "build_chat_model":
        warnings.warn(
            "langchain_icalign.defaults.build_chat_model is deprecated; use "
            "ChatICAlign.from_model_id / from_defaults or "
            "langchain_icalign.chat_models.build_chat_model",
            DeprecationWarning,
            stacklevel=2,
        )
        chat_models = importlib.import_module("langchain_icalign.chat_models")
        return chat_models.build_chat_model
    msg = f"module {__name__!r} has no attribute {name!r}"
    raise AttributeError(msg)


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
