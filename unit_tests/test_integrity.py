"""Damaged stores and model folders (issue 12, item 3): each says what is damaged, or heals."""

from __future__ import annotations

import json
import logging
import os
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from qdrant_client import QdrantClient

from langchain_icalign import (
    AlignmentDemo,
    DemoStore,
    ModelCorruptedError,
    StoreCorruptedError,
    StoreLockedError,
)
from langchain_icalign.defaults import model_cache as mc
from langchain_icalign.defaults import model_files
from langchain_icalign.defaults import stack as defaults_module
from langchain_icalign.store.integrity import COUNTS_FILE

from .conftest import BagOfWordsEmbeddings, build_byte_tokenizer, build_tiny_lm
from .test_model_cache import write_complete_folder, write_marker, write_weights

# ----------------------------------------------------------------------------- stores


def _storage(folder: Path, name: str = "icalign_demos") -> Path:
    return folder / "collection" / name / "storage.sqlite"


def _recorded(folder: Path) -> dict[str, Any]:
    return json.loads((folder / COUNTS_FILE).read_text())["collections"]


@pytest.fixture
def on_disk(tmp_path: Path, demos: list[AlignmentDemo]) -> Path:
    """A local store folder holding the five demos, closed."""
    folder = tmp_path / "store"
    with DemoStore(BagOfWordsEmbeddings(), path=folder) as store:
        store.add_demos(demos)
    return folder


def _open(folder: Path) -> DemoStore:
    return DemoStore(BagOfWordsEmbeddings(), path=folder)


@pytest.mark.parametrize("damage", ["deleted", "emptied"])
def test_store_that_lost_its_points_says_so_with_both_counts(on_disk: Path, damage: str) -> None:
    storage = _storage(on_disk)
    if damage == "deleted":
        storage.unlink()
    else:
        storage.write_bytes(b"")
    with pytest.raises(StoreCorruptedError) as info:
        _open(on_disk)
    message = str(info.value)
    assert str(on_disk) in message
    assert str(storage) in message
    assert "held 5 when last written, but 0 are left" in message


def test_half_truncated_storage_names_the_file(on_disk: Path) -> None:
    storage = _storage(on_disk)
    data = storage.read_bytes()
    storage.write_bytes(data[: len(data) // 2])
    with pytest.raises(StoreCorruptedError, match="storage.sqlite is damaged") as info:
        _open(on_disk)
    assert str(storage) in str(info.value)
    assert isinstance(info.value.__cause__, sqlite3.DatabaseError)


def test_truncated_meta_json_names_the_file(on_disk: Path) -> None:
    meta = on_disk / "meta.json"
    text = meta.read_text()
    meta.write_text(text[: len(text) // 2])
    with pytest.raises(StoreCorruptedError, match="truncated or not JSON") as info:
        _open(on_disk)
    assert str(meta) in str(info.value)


def test_damaged_point_names_the_file(on_disk: Path) -> None:
    storage = _storage(on_disk)
    with sqlite3.connect(storage) as db:
        db.execute("UPDATE points SET point = ? WHERE rowid = 1", (b"\x80\x04 not a pickle",))
    with pytest.raises(StoreCorruptedError, match="a stored point cannot be read") as info:
        _open(on_disk)
    assert str(storage) in str(info.value)


def test_deleted_meta_json_reads_the_points_back(on_disk: Path) -> None:
    # Qdrant re-creates the collection over its storage file: nothing was lost.
    (on_disk / "meta.json").unlink()
    with _open(on_disk) as store:
        assert store.count() == 5


def test_collection_gone_with_its_files_is_reported(on_disk: Path) -> None:
    (on_disk / "meta.json").unlink()
    _storage(on_disk).unlink()
    with pytest.raises(StoreCorruptedError, match="missing from .*meta.json") as info:
        _open(on_disk)
    assert "held 5 when last written, but 0 are left" in str(info.value)


def test_count_record_follows_adds_and_deletes(tmp_path: Path, demos: list[AlignmentDemo]) -> None:
    folder = tmp_path / "store"
    with DemoStore(BagOfWordsEmbeddings(), path=folder) as store:
        assert _recorded(folder) == {"icalign_demos": {"points": 0}}
        store.add_demos(demos[:3])
        assert _recorded(folder) == {"icalign_demos": {"points": 3}}
        store.delete([demos[0].id])
        assert _recorded(folder) == {"icalign_demos": {"points": 2}}
    assert [p.name for p in folder.iterdir() if "tmp" in p.name] == []  # written atomically
    with DemoStore(BagOfWordsEmbeddings(), path=folder, collection_name="other") as store:
        store.add_demos(demos)
        store.drop_collection("icalign_demos")
    assert _recorded(folder) == {"other": {"points": 5}}


def test_points_removed_by_another_client_are_refused_until_the_record_goes(
    on_disk: Path, demos: list[AlignmentDemo]
) -> None:
    client = QdrantClient(path=str(on_disk))
    client.delete_collection("icalign_demos")
    client.close()
    with pytest.raises(StoreCorruptedError, match=COUNTS_FILE):
        _open(on_disk)
    (on_disk / COUNTS_FILE).unlink()
    with _open(on_disk) as store:
        assert store.count() == 0
    assert _recorded(on_disk) == {"icalign_demos": {"points": 0}}


def test_more_points_than_recorded_is_not_a_loss(on_disk: Path) -> None:
    # A crash between an upsert and its record leaves the record behind the store.
    (on_disk / COUNTS_FILE).write_text(
        json.dumps({"schema": 1, "collections": {"icalign_demos": {"points": 2}}})
    )
    with _open(on_disk) as store:
        assert store.count() == 5
    assert _recorded(on_disk) == {"icalign_demos": {"points": 5}}


def test_unreadable_record_is_rewritten_with_a_warning(
    on_disk: Path, caplog: pytest.LogCaptureFixture
) -> None:
    (on_disk / COUNTS_FILE).write_text('{"schema": 1, "collec')
    with caplog.at_level(logging.WARNING), _open(on_disk) as store:
        assert store.count() == 5
    assert COUNTS_FILE in caplog.text
    assert _recorded(on_disk) == {"icalign_demos": {"points": 5}}


def test_refused_store_leaves_its_folder_unlocked(on_disk: Path) -> None:
    _storage(on_disk).unlink()
    with pytest.raises(StoreCorruptedError) as info:
        _open(on_disk)
    # The traceback keeps the refused store alive, as a caller holding the error would.
    assert info.traceback
    QdrantClient(path=str(on_disk)).close()  # would raise "already accessed"


def test_files_of_a_folder_open_elsewhere_are_not_called_damaged(on_disk: Path) -> None:
    with _open(on_disk):
        meta = on_disk / "meta.json"
        meta.write_text(meta.read_text()[:10])  # as the holder rewriting it would leave it
        with pytest.raises(StoreLockedError, match="already open"):
            _open(on_disk)


# ----------------------------------------------------------------------------- default store


@pytest.fixture
def small_pool(monkeypatch: pytest.MonkeyPatch, demos: list[AlignmentDemo]) -> list[AlignmentDemo]:
    monkeypatch.setattr(defaults_module, "builtin_pool", lambda: demos)
    return demos


def _default_store(folder: Path) -> DemoStore:
    return defaults_module.default_store(BagOfWordsEmbeddings(), folder, show_progress=False)


def _builtin_storage(folder: Path) -> Path:
    (collection,) = (folder / "collection").iterdir()
    return collection / "storage.sqlite"


def _truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


@pytest.mark.parametrize(
    "damage",
    [
        lambda folder: _truncate(_builtin_storage(folder)),
        lambda folder: _builtin_storage(folder).write_bytes(b""),
        lambda folder: _truncate(folder / "meta.json"),
    ],
    ids=["truncated storage", "emptied storage", "truncated meta.json"],
)
def test_damaged_default_store_is_rebuilt_with_a_warning(
    tmp_path: Path, small_pool: list[AlignmentDemo], caplog: pytest.LogCaptureFixture, damage: Any
) -> None:
    folder = tmp_path / "store"
    _default_store(folder).close()
    damage(folder)
    with caplog.at_level(logging.WARNING):
        store = _default_store(folder)
    try:
        assert store.count() == len(small_pool)
        assert store.search("bake bread sourdough", k=1)[0][0] == small_pool[0]
    finally:
        store.close()
    assert "default demo store is damaged" in caplog.text
    assert not list(tmp_path.glob("store.damaged-*"))


def test_damaged_default_folder_holding_other_collections_is_moved_aside(
    tmp_path: Path, small_pool: list[AlignmentDemo]
) -> None:
    folder = tmp_path / "store"
    _default_store(folder).close()
    with DemoStore(BagOfWordsEmbeddings(), path=folder, collection_name="mine") as mine:
        mine.add_demos(small_pool[:2])
    _truncate(folder / "meta.json")
    with _default_store(folder) as store:
        assert store.count() == len(small_pool)
    (aside,) = tmp_path.glob("store.damaged-*")
    assert (aside / "collection" / "mine" / "storage.sqlite").is_file()


# ----------------------------------------------------------------------------- converted model


@pytest.fixture
def converted(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> list[Path]:
    """A fake conversion (calls recorded) and a first, complete default model folder."""
    calls: list[Path] = []

    def convert(out_dir: Path, *, show_progress: bool) -> dict[str, Any]:
        calls.append(out_dir)
        write_complete_folder(out_dir, marker=False)
        return {"format_version": mc.FORMAT_VERSION}

    monkeypatch.setattr(mc, "_check_conversion_dependencies", lambda: None)
    monkeypatch.setattr(mc, "convert_default_gguf", convert)
    mc.ensure_default_model(tmp_path, show_progress=False)
    return calls


def _hashes(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    hashed: list[Path] = []
    real = model_files.sha256_of

    def counting(path: Path) -> str:
        hashed.append(path)
        return real(path)

    monkeypatch.setattr(model_files, "sha256_of", counting)
    return hashed


def _later(path: Path) -> None:
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 2_000_000_000))


def test_truncated_weights_are_converted_again_with_a_warning(
    tmp_path: Path, converted: list[Path], caplog: pytest.LogCaptureFixture
) -> None:
    weights = mc.default_model_dir(tmp_path) / "model.safetensors"
    size = weights.stat().st_size
    _truncate(weights)
    assert not mc.is_model_complete(weights.parent)
    with caplog.at_level(logging.WARNING):
        mc.ensure_default_model(tmp_path, show_progress=False)
    assert len(converted) == 2
    assert f"{weights} has {size // 2} bytes, but {size} when it was written" in caplog.text
    assert "converting it again" in caplog.text
    assert weights.stat().st_size == size


def test_changed_bytes_of_the_same_size_are_converted_again(
    tmp_path: Path, converted: list[Path], caplog: pytest.LogCaptureFixture
) -> None:
    weights = mc.default_model_dir(tmp_path) / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-8:] = os.urandom(8)
    weights.write_bytes(bytes(data))
    _later(weights)  # as any write does, on a filesystem with coarse times too
    with caplog.at_level(logging.WARNING):
        mc.ensure_default_model(tmp_path, show_progress=False)
    assert len(converted) == 2
    assert "sha256 differs" in caplog.text


def test_unchanged_folder_is_checked_without_hashing(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, converted: list[Path]
) -> None:
    hashed = _hashes(monkeypatch)
    for _ in range(3):
        assert mc.ensure_default_model(tmp_path, show_progress=False)
    assert hashed == []
    assert len(converted) == 1


def test_copied_files_are_hashed_once_and_the_marker_takes_their_times(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, converted: list[Path]
) -> None:
    target = mc.default_model_dir(tmp_path)
    weights = target / "model.safetensors"
    _later(weights)
    hashed = _hashes(monkeypatch)
    assert mc.ensure_default_model(tmp_path, show_progress=False) == target
    assert mc.ensure_default_model(tmp_path, show_progress=False) == target
    assert hashed == [weights]
    assert len(converted) == 1
    marker = json.loads((target / ".complete").read_text())
    assert marker["files"]["model.safetensors"]["mtime_ns"] == weights.stat().st_mtime_ns


def test_unwritable_marker_still_hashes_a_moved_file_once_per_process(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, converted: list[Path]
) -> None:
    weights = mc.default_model_dir(tmp_path) / "model.safetensors"
    _later(weights)
    monkeypatch.setattr(mc, "_update_marker", lambda folder, info: None)  # a read-only cache
    hashed = _hashes(monkeypatch)
    for _ in range(3):
        mc.ensure_default_model(tmp_path, show_progress=False)
    assert hashed == [weights]


def test_marker_without_checksums_gets_them_once(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    target = mc.default_model_dir(tmp_path)
    write_complete_folder(target, marker=False)
    write_marker(target, files=False)  # as releases before the checksums wrote it
    monkeypatch.setattr(mc, "convert_default_gguf", None)  # must not convert
    hashed = _hashes(monkeypatch)
    mc.ensure_default_model(tmp_path, show_progress=False)
    assert len(hashed) == 4
    mc.ensure_default_model(tmp_path, show_progress=False)
    assert len(hashed) == 4
    marker = json.loads((target / ".complete").read_text())
    assert (
        marker["files"]["model.safetensors"]["size"]
        == (target / "model.safetensors").stat().st_size
    )


def test_marker_without_checksums_and_truncated_weights_is_not_complete(tmp_path: Path) -> None:
    target = mc.default_model_dir(tmp_path)
    write_complete_folder(target, marker=False)
    write_marker(target, files=False)
    assert mc.is_model_complete(target)
    _truncate(target / "model.safetensors")
    assert not mc.is_model_complete(target)


def test_safetensors_layout_check(tmp_path: Path) -> None:
    weights = tmp_path / "w.safetensors"
    write_weights(weights)
    assert model_files.safetensors_problem(weights) is None
    data = weights.read_bytes()
    weights.write_bytes(data + b"\0")
    assert "header describes" in str(model_files.safetensors_problem(weights))
    weights.write_bytes(data[:-1])
    assert "header describes" in str(model_files.safetensors_problem(weights))
    weights.write_bytes(data[:20])
    assert "truncated" in str(model_files.safetensors_problem(weights))
    weights.write_bytes(b"1234")
    assert "too few" in str(model_files.safetensors_problem(weights))


def _tiny_model_folder(folder: Path, *, poison: float | None, marker: bool) -> Path:
    import torch
    from safetensors.torch import load_file, save_file

    tokenizer = build_byte_tokenizer()
    build_tiny_lm(tokenizer, n_positions=64).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    if poison is not None:
        weights = load_file(folder / "model.safetensors")
        weights["transformer.h.0.mlp.c_fc.weight"][3, 5] = torch.tensor(poison)
        save_file(weights, folder / "model.safetensors", metadata={"format": "pt"})
    if marker:
        write_marker(folder)
    return folder


@pytest.mark.parametrize("poison", [float("nan"), float("inf"), float("-inf")])
def test_nan_or_inf_weights_are_an_error_naming_the_file(tmp_path: Path, poison: float) -> None:
    folder = _tiny_model_folder(tmp_path / "m", poison=poison, marker=True)
    assert mc.is_model_complete(folder)  # the marker was written after the damage
    with pytest.raises(ModelCorruptedError) as info:
        mc.load_causal_lm(folder)
    message = str(info.value)
    assert str(folder / "model.safetensors") in message
    assert "'transformer.h.0.mlp.c_fc.weight' holds NaN or infinite values" in message
    assert "The next start converts the model again" in message
    assert not (folder / ".complete").exists()
    assert not mc.is_model_complete(folder)


def test_nan_weights_of_another_model_say_to_fetch_it_again(tmp_path: Path) -> None:
    folder = _tiny_model_folder(tmp_path / "m", poison=float("nan"), marker=False)
    with pytest.raises(ModelCorruptedError, match="Download or convert the model again"):
        mc.load_causal_lm(folder)


def test_finite_tiny_model_loads(tmp_path: Path) -> None:
    folder = _tiny_model_folder(tmp_path / "m", poison=None, marker=True)
    model, _ = mc.load_causal_lm(folder)
    assert model_files.nonfinite_parameter(model) is None
    assert (folder / ".complete").exists()


@pytest.mark.parametrize("dtype", ["float16", "bfloat16", "float32", "float64"])
def test_nonfinite_check_of_each_dtype(dtype: str) -> None:
    import torch

    layer = torch.nn.Linear(100, 100).to(getattr(torch, dtype))
    with torch.no_grad():
        layer.weight.fill_(60000.0 if dtype == "float16" else 1e30)  # sums past fp16's range
    assert model_files.nonfinite_parameter(layer) is None
    with torch.no_grad():
        layer.bias[7] = float("nan")
    assert model_files.nonfinite_parameter(layer) == "bias"
