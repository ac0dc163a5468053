"""Optional features and the extras that install them; a missing one is named when used.

`pip install langchain-icalign` is the LangChain component alone. The offline default stack,
the command line, evaluation and loading Hugging Face datasets by name each need an extra:

| extra | adds | for |
| --- | --- | --- |
| `defaults` | the default model and embedding packages, sentence-transformers | `from_defaults`, `default_store` |
| `cli` | rich | the `icalign` command |
| `eval` | langchain, rich | `icalign eval`, judges by provider name |
| `loaders` | datasets | Hugging Face datasets by name |
| `all` | all of the above | |
"""  # noqa: E501

from __future__ import annotations

import importlib
from types import ModuleType

__all__ = ["EXTRAS", "MissingExtraError", "require"]

EXTRAS: dict[str, str] = {
    "defaults": "the offline default stack (from_defaults, default_store)",
    "cli": "the icalign command",
    "eval": "evaluation (icalign eval, judges by provider name)",
    "loaders": "Hugging Face datasets by name",
}
"""Each extra and what it is for."""


class MissingExtraError(ImportError):
    """A feature was used whose extra is not installed; the message says what to install."""


def require(module: str, extra: str, feature: str) -> ModuleType:
    """Import `module`, or say which extra installs it.

    Args:
        module: The module to import (`"rich.console"`).
        extra: The extra that installs it (a key of `EXTRAS`).
        feature: What needs it, for the message (`"the icalign command"`).

    Raises:
        MissingExtraError: When `module` cannot be imported: it names the package and the
            `pip install 'langchain-icalign[extra]'` line.
        ValueError: For an unknown extra.
    """
    if extra not in EXTRAS:
        msg = f"unknown extra {extra!r}; extras are {sorted(EXTRAS)}"
        raise ValueError(msg)
    try:
        return importlib.import_module(module)
    except ImportError as error:
        package = module.split(".")[0]
        msg = (
            f"{feature} needs the optional package {package!r}, which is not installed: "
            f"pip install 'langchain-icalign[{extra}]'"
        )
        raise MissingExtraError(msg, name=module) from error
