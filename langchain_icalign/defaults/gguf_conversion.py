"""The one-time conversion of the default GGUF into a Hugging Face folder, with its display.

Loading a GGUF with transformers dequantizes every tensor and takes a minute or two, so
`model_cache.ensure_default_model` has `convert_default_gguf` do it once, into a temporary
folder, and keeps the result as an ordinary Hugging Face folder (float32 safetensors,
tokenizer, generation config) that later loads in seconds. The steps are shown on stderr
(a rich progress display) and logged.
"""

from __future__ import annotations

import json
import logging
import shutil
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, TextIO

from langchain_icalign.defaults.loading import transformers_progress
from langchain_icalign.defaults.paths import (
    DEFAULT_BASE_MODEL,
    FORMAT_VERSION,
    GGUF_MODULE,
    GGUF_PACKAGE,
    require_package,
)

__all__ = ["convert_default_gguf"]

logger = logging.getLogger(__name__)

_SOURCE_SUBDIR = "_gguf_source"


class _Steps:
    """Reports the conversion steps: a rich progress display on stderr, plus log lines."""

    def __init__(self, labels: list[str], *, show: bool) -> None:
        self._labels = labels
        self._show = show
        self._progress: Any = None
        self._task: Any = None
        self._index = 0
        self._started = 0.0
        self._stream: TextIO = sys.stderr

    def __enter__(self) -> _Steps:
        if self._show:
            try:
                from rich.console import Console
                from rich.progress import (
                    BarColumn,
                    MofNCompleteColumn,
                    Progress,
                    SpinnerColumn,
                    TextColumn,
                    TimeElapsedColumn,
                )
            except ImportError:  # pragma: no cover - rich is a dependency
                self._show_plain(
                    f"Converting {DEFAULT_BASE_MODEL} to a local Hugging Face folder "
                    "(one-time, a minute or two)..."
                )
            else:
                console = Console(stderr=True)
                console.print(
                    f"[bold]langchain-icalign[/]: converting {DEFAULT_BASE_MODEL} (GGUF) to a "
                    "local Hugging Face folder. This happens once and takes a minute or two."
                )
                self._progress = Progress(
                    SpinnerColumn(),
                    TextColumn("{task.description}"),
                    BarColumn(),
                    MofNCompleteColumn(),
                    TimeElapsedColumn(),
                    console=console,
                )
                self._progress.start()
                self._task = self._progress.add_task(self._labels[0], total=len(self._labels))
        return self

    def _show_plain(self, text: str) -> None:
        print(text, file=self._stream, flush=True)

    def start(self, index: int) -> None:
        """Mark step `index` (0-based) as running."""
        self._index = index
        self._started = time.monotonic()
        label = self._labels[index]
        logger.info("[%d/%d] %s", index + 1, len(self._labels), label)
        if self._progress is not None:
            self._progress.update(self._task, description=label, completed=index)
        elif self._show:  # pragma: no cover - rich missing
            self._show_plain(f"[{index + 1}/{len(self._labels)}] {label}...")

    def done(self) -> None:
        """Mark the running step as finished."""
        elapsed = time.monotonic() - self._started
        label = self._labels[self._index]
        step = self._index + 1
        logger.info("[%d/%d] %s: done in %.1f s", step, len(self._labels), label, elapsed)
        if self._progress is not None:
            self._progress.update(self._task, completed=self._index + 1)

    def __exit__(self, *exc: object) -> None:
        if self._progress is not None:
            if exc[0] is None:
                self._progress.update(self._task, description="Default model ready")
            self._progress.stop()


def convert_default_gguf(out_dir: Path, *, show_progress: bool) -> dict[str, Any]:
    """Convert the packaged GGUF into a Hugging Face folder at `out_dir` (which exists).

    Returns:
        Metadata for the completion marker.
    """
    gguf_pkg = require_package(GGUF_MODULE, GGUF_PACKAGE, "Converting the default base model")
    import torch
    import transformers
    from transformers import AutoModelForCausalLM, AutoTokenizer

    steps = [
        "Assembling the GGUF file from its chunk packages",
        "Loading and dequantizing the GGUF weights",
        "Saving float32 safetensors and tokenizer",
    ]
    source_dir = out_dir / _SOURCE_SUBDIR
    gguf_name = str(gguf_pkg.MODEL_NAME)
    with _Steps(steps, show=show_progress) as progress, transformers_progress(not show_progress):
        progress.start(0)
        gguf_path = Path(gguf_pkg.assemble(source_dir / gguf_name, overwrite=True))
        progress.done()

        progress.start(1)
        tokenizer = AutoTokenizer.from_pretrained(
            str(source_dir), gguf_file=gguf_path.name, local_files_only=True
        )
        model = AutoModelForCausalLM.from_pretrained(
            str(source_dir),
            gguf_file=gguf_path.name,
            dtype=torch.float32,
            local_files_only=True,
            **_dequantize_kwargs(),
        )
        _strip_gguf_quantization(model)
        _fix_tokenizer(tokenizer, model)
        bad = {str(p.dtype) for p in model.parameters() if p.dtype != torch.float32}
        if bad or any(p.is_meta for p in model.parameters()):
            raise RuntimeError(
                f"Dequantized {DEFAULT_BASE_MODEL} has unexpected parameters (dtypes {bad}, or "
                "weights left on the meta device); not saving it."
            )
        progress.done()

        progress.start(2)
        shutil.rmtree(source_dir)  # the GGUF is not needed any more
        model.save_pretrained(str(out_dir))
        for load_kwarg in ("is_local", "local_files_only", "gguf_file"):
            tokenizer.init_kwargs.pop(load_kwarg, None)  # load options, not tokenizer settings
        tokenizer.save_pretrained(str(out_dir))
        del model
        _validate_saved(out_dir)
        progress.done()

    return {
        "format_version": FORMAT_VERSION,
        "base_model": DEFAULT_BASE_MODEL,
        "source_package": GGUF_PACKAGE,
        "source_package_version": _package_version(GGUF_PACKAGE),
        "source_file": gguf_name,
        "source_sha256": str(gguf_pkg.EXPECTED_SHA256),
        "dtype": "float32",
        "transformers_version": transformers.__version__,
        "torch_version": torch.__version__,
        "created_utc": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }


def _dequantize_kwargs() -> dict[str, Any]:
    """Ask for fully dequantized weights where transformers can keep GGUF blocks packed.

    transformers 5 may keep GGUF weights packed (when the ``kernels`` package is installed
    and the architecture is covered); a packed model cannot be saved as float32.
    """
    try:
        from transformers import GgufConfig
    except ImportError:  # older transformers: GGUF loading always dequantizes
        return {}
    return {"quantization_config": GgufConfig(dequantize=True)}


def _strip_gguf_quantization(model: Any) -> None:
    """Clear the GGUF quantizer state of a model whose weights are already dequantized.

    transformers >= 5 loads GGUF files through a ``GgufHfQuantizer``. For architectures its
    packed-weight path does not cover (gemma3 among them) every tensor is dequantized at load,
    yet the model keeps ``hf_quantizer``, ``is_quantized``, ``quantization_method``,
    ``config.quantization_config`` (``quant_method: gguf``, saved into config.json, which
    would make a later plain load look for a GGUF file) and ``config._is_quantized``, and
    ``save_pretrained`` refuses to save ("quantized with gguf and is not serializable").
    """
    quantizer = getattr(model, "hf_quantizer", None)
    if quantizer is not None and hasattr(quantizer, "remove_quantization_config"):
        # Drops hf_quantizer, config.quantization_config, quantization_method and the
        # GGUF-specific _weight_conversions, and sets is_quantized = False.
        quantizer.remove_quantization_config(model)
    for attr in ("hf_quantizer", "quantization_method", "_weight_conversions"):
        if attr in vars(model):
            delattr(model, attr)
    model.is_quantized = False
    for config in {id(c): c for c in (model.config, model.config.get_text_config())}.values():
        if "quantization_config" in vars(config):
            delattr(config, "quantization_config")
        if getattr(config, "_is_quantized", False):
            config._is_quantized = False
    # The GGUF's "general.name" ("Gemma 3 270m") ends up in the config; record the real id.
    if "_model_name_or_path" in vars(model.config):
        delattr(model.config, "_model_name_or_path")
    model.config.name_or_path = DEFAULT_BASE_MODEL


def _fix_tokenizer(tokenizer: Any, model: Any) -> None:
    """Make sure special tokens match Gemma's: <bos>=2 prepended, <eos>=1, <pad>=0."""
    expected = {"bos_token": "<bos>", "eos_token": "<eos>", "pad_token": "<pad>"}
    for attr, token in expected.items():
        if getattr(tokenizer, attr, None) is None:
            setattr(tokenizer, attr, token)
    # A base Gemma prompt must start with <bos>; without it the model produces garbage.
    if getattr(tokenizer, "add_bos_token", True) is not True:
        tokenizer.add_bos_token = True
    if getattr(tokenizer, "add_eos_token", False):
        tokenizer.add_eos_token = False
    ids = tokenizer("a").input_ids
    if not ids or ids[0] != tokenizer.bos_token_id or ids[-1] == tokenizer.eos_token_id:
        raise RuntimeError(f"GGUF tokenizer special-token handling is off: 'a' -> {ids}")
    generation_config = model.generation_config
    for name in ("bos_token_id", "eos_token_id", "pad_token_id"):
        if getattr(generation_config, name, None) is None:
            setattr(generation_config, name, getattr(tokenizer, name))
        if getattr(model.config, name, None) is None:
            setattr(model.config, name, getattr(tokenizer, name))


def _validate_saved(folder: Path) -> None:
    """Cheap checks of a saved folder: plain config, float32 weights, <bos>-adding tokenizer."""
    from safetensors import safe_open
    from transformers import AutoTokenizer

    config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    if "quantization_config" in config or "quant_method" in json.dumps(config):
        raise RuntimeError(f"Saved config still carries GGUF quantization settings: {folder}")
    for weights in folder.glob("*.safetensors"):
        with safe_open(str(weights), framework="pt") as handle:
            for key in handle.keys():  # noqa: SIM118 - safe_open is not a mapping
                dtype = handle.get_slice(key).get_dtype()
                if dtype != "F32":
                    raise RuntimeError(f"Saved weight {key} is {dtype}, expected F32")
    tokenizer = AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
    ids = tokenizer("Hello").input_ids
    if tokenizer.bos_token_id is None or ids[0] != tokenizer.bos_token_id:
        raise RuntimeError(f"Saved tokenizer does not prepend <bos>: 'Hello' -> {ids}")
    if tokenizer.pad_token_id is None or tokenizer.eos_token_id is None:
        raise RuntimeError("Saved tokenizer lacks a pad or eos token")


def _package_version(name: str) -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(name)
    except PackageNotFoundError:
        return None
