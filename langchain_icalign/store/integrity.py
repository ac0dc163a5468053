"""A local store folder's integrity: its recorded demo counts, and which file is damaged.

Qdrant's local mode opens a collection whose `storage.sqlite` was deleted or emptied as an
empty collection, without a word. `CountRecord` keeps each collection's point count in
`icalign_counts.json` inside the store folder (so it moves, and goes, with the folder);
`DemoStore` checks it on open. When Qdrant cannot open a folder at all, `find_damage`
names the file that broke it, and `open_client` says so (or that the folder is locked).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import pickle
import sqlite3
import threading
import uuid
from pathlib import Path
from typing import Any

from qdrant_client import QdrantClient

from langchain_icalign.errors import StoreCorruptedError, StoreLockedError

__all__ = [
    "COUNTS_FILE",
    "CountRecord",
    "collection_storage",
    "find_damage",
    "is_locked_elsewhere",
    "meta_file",
    "open_client",
]

logger = logging.getLogger(__name__)

COUNTS_FILE = "icalign_counts.json"
"""Name of the count record inside a local store folder."""

_SCHEMA = 1
_META_FILE = "meta.json"  # Qdrant local mode's list of collections
_STORAGE_FILE = "storage.sqlite"  # Qdrant local mode's points, one file per collection
_LOCK_FILE = ".lock"  # Qdrant local mode's folder lock
_write_lock = threading.Lock()


def meta_file(folder: Path) -> Path:
    """The file listing a local store's collections."""
    return folder / _META_FILE


def collection_storage(folder: Path, collection_name: str) -> Path:
    """The SQLite file holding a local collection's points."""
    return folder / "collection" / collection_name / _STORAGE_FILE


class CountRecord:
    """Point counts per collection of a local store folder, in `icalign_counts.json`.

    Written atomically (temporary file, fsync, rename) after each add and delete.

    Args:
        folder: The local store folder.
    """

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.path = folder / COUNTS_FILE

    def refuse_lost(self, collection_name: str) -> None:
        """Refuse to make anew a collection that held demos and whose files are gone.

        Raises:
            StoreCorruptedError: Naming what is missing.
        """
        recorded = self.points(collection_name)
        storage = collection_storage(self.folder, collection_name)
        if recorded and not storage.exists():
            cause = f"the collection is missing from {meta_file(self.folder)}, and {storage}"
            raise StoreCorruptedError(self._lost(collection_name, recorded, 0, cause))

    def check(self, collection_name: str, found: int) -> None:
        """Refuse a collection holding fewer demos than recorded; record a new count.

        Raises:
            StoreCorruptedError: When demos were lost.
        """
        recorded = self.points(collection_name)
        if recorded is not None and found < recorded:
            storage = collection_storage(self.folder, collection_name)
            cause = f"{storage} was deleted, emptied or replaced"
            raise StoreCorruptedError(self._lost(collection_name, recorded, found, cause))
        if recorded != found:
            self.write(collection_name, found)

    def _lost(self, collection_name: str, recorded: int, found: int, cause: str) -> str:
        return (
            f"the demo store at {self.folder} has lost demos: collection "
            f"{collection_name!r} held {recorded} when last written, but {found} are left "
            f"({cause}). Restore the folder from a backup, or delete it and index the demos "
            f"again; if another client removed them on purpose, delete {self.path} to "
            "accept the store as it is"
        )

    def read(self) -> dict[str, int]:
        """The recorded counts by collection name (empty when nothing is recorded)."""
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return {}
        try:
            collections = json.loads(text)["collections"]
            return {str(name): int(entry["points"]) for name, entry in collections.items()}
        except (ValueError, KeyError, TypeError, AttributeError) as error:
            # The record only guards the data; losing it must not lock the user out.
            logger.warning("%s cannot be read (%s); recording the counts anew", self.path, error)
            return {}

    def points(self, collection_name: str) -> int | None:
        """The recorded count of a collection, or None."""
        return self.read().get(collection_name)

    def write(self, collection_name: str, points: int) -> None:
        """Record a collection's count (a failure to write is logged, not raised)."""
        with _write_lock:
            counts = self.read()
            counts[collection_name] = points
            self._save(counts)

    def forget(self, collection_name: str) -> None:
        """Drop a collection's count."""
        with _write_lock:
            counts = self.read()
            if counts.pop(collection_name, None) is not None:
                self._save(counts)

    def _save(self, counts: dict[str, int]) -> None:
        record = {
            "schema": _SCHEMA,
            "collections": {name: {"points": n} for name, n in sorted(counts.items())},
        }
        tmp = self.path.with_name(f".{COUNTS_FILE}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}")
        try:
            with open(tmp, "w", encoding="utf-8") as handle:
                json.dump(record, handle, indent=1)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, self.path)
        except OSError as error:
            # The demos are written already; failing the call now would misreport it.
            tmp.unlink(missing_ok=True)
            logger.warning("cannot record the store's counts in %s: %s", self.path, error)


def find_damage(folder: Path) -> str | None:
    """Which file of a local store folder is damaged, and how; None if none looks damaged.

    Reads `meta.json` and every collection's `storage.sqlite` (integrity check, then each
    stored point as Qdrant reads it). Meant for after Qdrant failed to open the folder.
    """
    meta = meta_file(folder)
    if meta.is_file():
        try:
            listed = json.loads(meta.read_text(encoding="utf-8"))
        except (ValueError, UnicodeDecodeError) as error:
            return f"{meta} is truncated or not JSON ({error})"
        if not isinstance(listed, dict) or not isinstance(listed.get("collections"), dict):
            return f"{meta} does not list the store's collections"
    for storage in sorted(folder.glob(f"collection/*/{_STORAGE_FILE}")):
        problem = _storage_problem(storage)
        if problem is not None:
            return f"{storage} is damaged ({problem})"
    return None


def _storage_problem(storage: Path) -> str | None:
    try:
        db = sqlite3.connect(f"{storage.resolve().as_uri()}?mode=ro", uri=True)
    except sqlite3.Error as error:
        return str(error)
    with contextlib.closing(db):
        try:
            (verdict,) = db.execute("PRAGMA quick_check").fetchone()
            if verdict != "ok":
                return str(verdict)
            tables = db.execute("SELECT name FROM sqlite_master WHERE name = 'points'").fetchall()
            if not tables:
                return None
            for (blob,) in db.execute("SELECT point FROM points"):
                pickle.loads(blob)  # noqa: S301 - the same rows Qdrant unpickles on open
        except sqlite3.DatabaseError as error:
            return str(error)
        except Exception as error:  # a damaged pickle fails in many ways
            return f"a stored point cannot be read: {type(error).__name__}: {error}"
    return None


def is_locked_elsewhere(folder: Path) -> bool:
    """Whether another client or process holds a local store folder's lock."""
    import portalocker  # as Qdrant does: it checks for writable folders on import

    lock = folder / _LOCK_FILE
    try:
        handle = open(lock, "r+")  # noqa: SIM115 - closed below, after unlocking
    except OSError:
        return False
    with handle:
        try:
            portalocker.lock(
                handle, portalocker.LockFlags.EXCLUSIVE | portalocker.LockFlags.NON_BLOCKING
            )
        except portalocker.exceptions.LockException:
            return True
        portalocker.unlock(handle)
    return False


def open_client(
    location: str | None,
    path: str | Path | None,
    url: str | None,
    api_key: str | None,
    timeout: int | None,
    client_kwargs: dict[str, Any],
) -> QdrantClient:
    """A Qdrant client for one of `location`, `path` or `url` (in memory when none).

    Raises:
        ValueError: For more than one of them.
        StoreLockedError: When another client or process holds a local folder.
        StoreCorruptedError: When a local folder's files are damaged (naming which).
    """
    if sum(v is not None for v in (location, path, url)) > 1:
        msg = "pass only one of location=, path= or url="
        raise ValueError(msg)
    if location is None and path is None and url is None:
        location = ":memory:"
    try:
        return QdrantClient(
            location=location,
            path=str(path) if path is not None else None,
            url=url,
            api_key=api_key,
            timeout=timeout,
            **client_kwargs,
        )
    except Exception as error:
        locked = (
            f"the local Qdrant store at {path} is already open in another client or "
            "process; close it first, or use a Qdrant server for shared access"
        )
        if isinstance(error, RuntimeError) and "already accessed" in str(error):
            raise StoreLockedError(locked) from error
        if path is None:
            raise
        # Qdrant reads the files before it takes the lock: the holder may be writing them.
        if is_locked_elsewhere(Path(path)):
            raise StoreLockedError(locked) from error
        damage = find_damage(Path(path))
        if damage is None:
            raise
        msg = (
            f"the local Qdrant store at {path} cannot be opened: {damage}. Restore the "
            "folder from a backup, or delete it and index the demos again"
        )
        raise StoreCorruptedError(msg) from error
