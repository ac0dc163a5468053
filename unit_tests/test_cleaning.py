"""Cleaning: length bounds, exact and near duplicates, decontamination, with reasons."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from langchain_icalign import AlignmentDemo
from langchain_icalign.cleaning import (
    CONTAMINATED,
    DUPLICATE,
    NEAR_CONTAMINATED,
    NEAR_DUPLICATE,
    TOO_LONG,
    TOO_SHORT,
    clean_demos,
    decontaminate,
    demo_tokens,
    drop_exact_duplicates,
    drop_near_duplicates,
    embed_matrix,
    filter_token_length,
    match_key,
    max_similarity,
)
from unit_tests.conftest import BagOfWordsEmbeddings, count_words


def _demo(prompt: str, response: str = "An answer.", **kwargs: object) -> AlignmentDemo:
    return AlignmentDemo(prompt=prompt, response=response, **kwargs)  # type: ignore[arg-type]


def test_match_key_ignores_case_spacing_and_punctuation() -> None:
    assert match_key("  Why is the SKY blue?!\r\n") == match_key("why is the sky blue")
    assert match_key("ﬁne") == match_key("fine")  # NFKC
    assert match_key("sky blue") != match_key("blue sky")


def test_exact_duplicates_keep_the_first_and_say_which() -> None:
    first = _demo("What is 2 + 2?", "4.")
    demos = [first, _demo("what is 2+2", "4"), _demo("What is 2 + 3?", "5."), first]
    report = drop_exact_duplicates(demos)
    assert report.kept == [first, demos[2]]
    assert report.counts() == {DUPLICATE: 2}
    assert all(d.detail == f"same as demo {first.id}" for d in report.dropped)


def test_exact_duplicates_compare_turns_too() -> None:
    plain = _demo("And then?", "Then done.")
    with_turns = _demo("And then?", "Then done.", turns=[("Start?", "Started.")])
    assert drop_exact_duplicates([plain, with_turns]).kept == [plain, with_turns]


def test_token_bounds() -> None:
    short = _demo("Hi?", "Hello.")  # 2 words
    mid = _demo("How do I boil an egg?", "Boil it for nine minutes.")  # 11 words
    long = _demo("Tell me everything.", "word " * 50)  # 53 words
    with_turns = _demo("And?", "Yes.", turns=[("one two three", "four five six")])  # 8
    assert demo_tokens(with_turns, count_words) == 8
    report = filter_token_length(
        [short, mid, long, with_turns], count_words, min_tokens=3, max_tokens=20
    )
    assert report.kept == [mid, with_turns]
    assert report.counts() == {TOO_SHORT: 1, TOO_LONG: 1}
    assert report.dropped[0].detail == "2 < 3 tokens"
    assert report.dropped[1].detail == "53 > 20 tokens"
    with pytest.raises(ValueError, match="above max_tokens"):
        filter_token_length([mid], count_words, min_tokens=5, max_tokens=4)


def test_token_bounds_with_a_tokenizer(byte_tokenizer: object) -> None:
    demo = _demo("abc", "de")  # 5 bytes, 5 tokens
    assert demo_tokens(demo, byte_tokenizer) == 5
    assert not filter_token_length([demo], byte_tokenizer, max_tokens=4).kept


def _unit(rows: list[list[float]]) -> np.ndarray:
    matrix = np.asarray(rows, dtype=np.float32)
    return matrix / np.linalg.norm(matrix, axis=1, keepdims=True)


def test_near_duplicates_from_vectors() -> None:
    demos = [_demo(f"Question {i}?") for i in range(4)]
    vectors = _unit([[1, 0, 0], [0.99, 0.1, 0], [0, 1, 0], [0, 0.999, 0.04]])
    report = drop_near_duplicates(demos, threshold=0.95, vectors=vectors, batch_size=2)
    assert report.kept == [demos[0], demos[2]]
    assert report.counts() == {NEAR_DUPLICATE: 2}
    assert report.dropped[0].detail.startswith("similarity 0.99")
    assert report.dropped[0].detail.endswith(f"demo {demos[0].id}")
    assert report.dropped[1].detail.endswith(f"demo {demos[2].id}")


def test_near_duplicates_against_existing_vectors() -> None:
    demos = [_demo("A?"), _demo("B?")]
    vectors = _unit([[1, 0], [0, 1]])
    existing = _unit([[0.999, 0.01]])
    report = drop_near_duplicates(demos, threshold=0.95, vectors=vectors, existing=existing)
    assert report.kept == [demos[1]]
    assert report.dropped[0].detail.endswith("a demo already stored")


def test_near_duplicates_with_embeddings(embeddings: BagOfWordsEmbeddings) -> None:
    demos = [
        _demo("How do I bake sourdough bread at home?"),
        _demo("how do i bake sourdough bread at home"),  # same words: cosine 1
        _demo("What is the capital of France?"),
    ]
    report = drop_near_duplicates(demos, threshold=0.9, embeddings=embeddings)
    assert report.kept == [demos[0], demos[2]]
    with pytest.raises(ValueError, match=r"threshold must be in \(0, 1\]"):
        drop_near_duplicates(demos, threshold=1.5, embeddings=embeddings)
    with pytest.raises(ValueError, match="pass embeddings="):
        drop_near_duplicates(demos, threshold=0.9)


def _naive_greedy(vectors: np.ndarray, threshold: float) -> list[int]:
    kept: list[int] = []
    for i in range(len(vectors)):
        if all(float(vectors[i] @ vectors[j]) < threshold - 1e-6 for j in kept):
            kept.append(i)
    return kept


@settings(max_examples=60, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    n=st.integers(1, 40),
    batch=st.integers(1, 9),
    threshold=st.sampled_from([0.5, 0.8, 0.95]),
)
def test_batched_near_duplicates_match_the_naive_greedy(
    seed: int, n: int, batch: int, threshold: float
) -> None:
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(3, 4))
    vectors = centres[rng.integers(0, 3, n)] + rng.normal(scale=0.3, size=(n, 4))
    vectors = (vectors / np.linalg.norm(vectors, axis=1, keepdims=True)).astype(np.float32)
    demos = [_demo(f"Q{i}?") for i in range(n)]
    report = drop_near_duplicates(demos, threshold=threshold, vectors=vectors, batch_size=batch)
    assert report.kept == [demos[i] for i in _naive_greedy(vectors, threshold)]


def test_max_similarity_in_column_chunks() -> None:
    rng = np.random.default_rng(0)
    queries, keys = rng.normal(size=(5, 8)), rng.normal(size=(50, 8))
    best, where = max_similarity(queries, keys, chunk=7)
    scores = queries @ keys.T
    assert np.allclose(best, scores.max(axis=1))
    assert (where == scores.argmax(axis=1)).all()
    empty_best, empty_where = max_similarity(queries, keys[:0])
    assert np.isneginf(empty_best).all()
    assert (empty_where == -1).all()


def test_embed_matrix_rows_are_unit_length(embeddings: BagOfWordsEmbeddings) -> None:
    matrix = embed_matrix(embeddings, ["a b", "c", "a b c d"], batch_size=2)
    assert matrix.shape == (3, embeddings.size)
    assert np.allclose(np.linalg.norm(matrix, axis=1), 1.0)
    assert embeddings.calls == 2  # in batches


def test_decontaminate_exact_on_any_user_message() -> None:
    clean = _demo("How do I boil an egg?")
    leaked = _demo("Why is the sky blue?!")
    leaked_turn = _demo("Thanks!", turns=[("why is the sky BLUE", "Scattering.")])
    report = decontaminate([clean, leaked, leaked_turn], ["Why is the sky blue?", "  "])
    assert report.kept == [clean]
    assert report.counts() == {CONTAMINATED: 2}
    assert "matches evaluation prompt 'Why is the sky blue?'" in report.dropped[0].detail


def test_decontaminate_near_duplicates(embeddings: BagOfWordsEmbeddings) -> None:
    paraphrase = _demo("Why is the sky blue during the day?")
    other = _demo("How do I bake sourdough bread?")
    report = decontaminate(
        [paraphrase, other], ["why is the sky blue"], threshold=0.8, embeddings=embeddings
    )
    assert report.kept == [other]
    assert report.counts() == {NEAR_CONTAMINATED: 1}
    assert report.dropped[0].detail.startswith("similarity 0.8")
    exact_only = decontaminate([paraphrase, other], ["why is the sky blue"])
    assert exact_only.kept == [paraphrase, other]
    with pytest.raises(ValueError, match="needs embeddings"):
        decontaminate([other], ["x"], threshold=0.8)


def test_clean_demos_runs_every_step_and_embeds_each_text_once(
    embeddings: BagOfWordsEmbeddings,
) -> None:
    demos = [
        _demo("How do I bake sourdough bread at home?", "Feed the starter, then bake."),
        _demo("how do I bake sourdough bread at home", "Feed the starter then bake"),  # dup
        _demo("How do I bake sourdough bread at home, please?", "Mix, proof, bake."),  # near
        _demo("Why is the sky blue?", "Scattering."),  # contaminated
        _demo("Why is the sky so very blue today?", "Scattering again."),  # near-contaminated
        _demo("Hi", "Yo"),  # too short
        _demo("Write a long essay.", "word " * 40),  # too long
        _demo("What is the capital of France?", "Paris is the capital."),
    ]
    report = clean_demos(
        demos,
        token_counter=count_words,
        min_tokens=3,
        max_tokens=30,
        eval_prompts=["why is the sky blue"],
        decontaminate_threshold=0.7,
        dedup_threshold=0.8,
        embeddings=embeddings,
        batch_size=2,
    )
    assert report.kept == [demos[0], demos[7]]
    assert report.counts() == {
        DUPLICATE: 1,
        TOO_SHORT: 1,
        TOO_LONG: 1,
        CONTAMINATED: 1,
        NEAR_CONTAMINATED: 1,
        NEAR_DUPLICATE: 1,
    }
    assert "kept 2" in report.summary()
    assert len(report.kept) + len(report.dropped) == len(demos)


def test_clean_demos_checks_its_options(embeddings: BagOfWordsEmbeddings) -> None:
    demos = [_demo("Hi there?")]
    with pytest.raises(ValueError, match="need a token_counter"):
        clean_demos(demos, max_tokens=3)
    with pytest.raises(ValueError, match="need embeddings"):
        clean_demos(demos, dedup_threshold=0.9)
    assert clean_demos([]).kept == []
    assert clean_demos(demos, dedup_threshold=0.9, embeddings=embeddings).kept == demos
