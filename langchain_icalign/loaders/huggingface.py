"""Records of a Hugging Face dataset, by name (needs the optional `datasets` package)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from langchain_icalign.loaders.errors import DemoFileError

__all__ = ["HF_PREFIX", "hf_label", "iter_hf_records"]

HF_PREFIX = "hf:"
"""A source that starts with this names a Hugging Face dataset: `hf:OpenAssistant/oasst1`."""

_INSTALL = (
    "loading a Hugging Face dataset by name needs the optional `datasets` package: "
    "pip install 'langchain-icalign[loaders]' (or pip install datasets)"
)


def hf_label(name: str, split: str) -> str:
    """How errors name a dataset split: `hf:name[split]`."""
    return f"{HF_PREFIX}{name}[{split}]"


def iter_hf_records(
    name: str, *, split: str = "train", config: str | None = None
) -> Iterator[tuple[int, Any]]:
    """Yield (row number, record) for each row of a Hugging Face dataset split.

    The dataset comes from the Hub (network) or from the local `datasets` cache; with
    `HF_HUB_OFFLINE=1` (the `icalign` command's default) only a cached copy is used.

    Args:
        name: The dataset's name on the Hub, e.g. `"OpenAssistant/oasst1"`.
        split: The split.
        config: The dataset configuration, if it has several.

    Raises:
        ImportError: When `datasets` is not installed.
        DemoFileError: When the dataset cannot be loaded (no network, unknown name, ...).
    """
    try:
        import datasets
    except ImportError as error:
        raise ImportError(_INSTALL) from error
    label = hf_label(name, split)
    try:
        dataset = datasets.load_dataset(name, config, split=split)
    except Exception as error:  # network, auth and missing-dataset errors have many types
        reason = (
            f"cannot load the dataset ({type(error).__name__}: {error}); it needs network "
            "access to the Hugging Face Hub or a copy in the local datasets cache "
            "(with HF_HUB_OFFLINE=1 only cached datasets load)"
        )
        raise DemoFileError(label, 0, reason) from error
    for number, row in enumerate(dataset, 1):
        yield number, dict(row)
