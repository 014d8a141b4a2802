"""The memory stream: scoring formula, recency, weights, batched importance, reflection, stores."""

from __future__ import annotations

import subprocess
import sys
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from agents.gateway import ModelGateway, call_scope
from agents.gateway.backends.fake import FakeChatBackend
from agents.importance import NEUTRAL_IMPORTANCE, model_importance_scorer
from agents.reflection import reflect
from memory import (
    CachedEmbeddings,
    ChromaStore,
    FakeHashEmbeddings,
    InMemoryStore,
    MemoryStream,
    RetrievalWeights,
    score_memories,
)
from memory.reports import MemoryReport
from memory.scoring import NEUTRAL, normalise
from tests.conftest import Scripted

T0 = datetime(2023, 2, 13, 8, 0)


def fixed_scorer(value: int, calls: list[list[str]] | None = None):
    async def score(agent: str, texts: list[str]) -> list[int]:
        if calls is not None:
            calls.append(list(texts))
        return [value] * len(texts)

    return score


def stream_with(store=None, scorer=None, threshold: float = 150.0, weights=None, reports=None) -> MemoryStream:
    return MemoryStream(
        "Ann", store or InMemoryStore(), CachedEmbeddings(FakeHashEmbeddings()), scorer or fixed_scorer(5),
        weights=weights, reflection_threshold=threshold, sink=None if reports is None else reports.append,
    )


# --- the formula -----------------------------------------------------------------------------------------


def test_score_formula_on_a_hand_computed_case():
    embeddings = np.array([[1, 0], [0, 1], [0.6, 0.8]], dtype=np.float32)
    query = np.array([1, 0], dtype=np.float32)
    importance = np.array([2, 8, 5], dtype=np.float32)
    hours_since = np.array([0, 10, 100], dtype=np.float32)
    scored = score_memories(query, embeddings.T, importance, hours_since, RetrievalWeights(), k=3)
    # recency 0.995**h = 1, 0.95111, 0.60577 -> normalised 1, 0.87600, 0; importance -> 0, 1, 0.5;
    # relevance (cosine) 1, 0, 0.6 -> 1, 0, 0.6.  Totals: 2.0, 1.876, 1.1
    assert scored.indices == [0, 1, 2]
    assert scored.total == pytest.approx([2.0, 1.8760, 1.1], abs=1e-3)
    assert scored.recency == pytest.approx([1.0, 0.8760, 0.0], abs=1e-3)
    assert scored.importance == pytest.approx([0.0, 1.0, 0.5])
    assert scored.relevance == pytest.approx([1.0, 0.0, 0.6], abs=1e-6)


def test_weights_change_the_ranking():
    embeddings = np.array([[1, 0], [0, 1]], dtype=np.float32)
    query = np.array([1, 0], dtype=np.float32)
    importance = np.array([1, 9], dtype=np.float32)
    hours_since = np.array([50, 0], dtype=np.float32)
    only = lambda **w: RetrievalWeights(**{"recency": 0, "importance": 0, "relevance": 0, **w})  # noqa: E731
    columns = embeddings.T
    assert score_memories(query, columns, importance, hours_since, only(relevance=1), 2).indices == [0, 1]
    assert score_memories(query, columns, importance, hours_since, only(importance=1), 2).indices == [1, 0]
    assert score_memories(query, columns, importance, hours_since, only(recency=1), 2).indices == [1, 0]
    heavy = RetrievalWeights(recency=1, importance=1, relevance=3)
    assert score_memories(query, columns, importance, hours_since, heavy, 2).total == pytest.approx([3.0, 2.0])


def test_normalisation_edge_cases():
    assert normalise(np.array([7.0])).tolist() == [NEUTRAL]
    assert normalise(np.array([3.0, 3.0, 3.0])).tolist() == [NEUTRAL] * 3
    assert normalise(np.array([], dtype=np.float32)).size == 0
    assert normalise(np.array([2.0, 4.0, 3.0])).tolist() == [0.0, 1.0, 0.5]
    one = score_memories(np.array([1, 0], dtype=np.float32), np.array([[0], [1]], dtype=np.float32),
                         np.array([4], dtype=np.float32), np.array([5], dtype=np.float32), RetrievalWeights(), k=10)
    assert one.indices == [0] and one.total == pytest.approx([3 * NEUTRAL])


async def test_recently_accessed_memory_outranks_an_identical_old_one():
    stream = stream_with()
    for when in (T0, T0 + timedelta(hours=1)):
        stream.remember("observation", "Bob fixed the bakery's bicycle.", when)
    await stream.commit()
    old, new = stream.records
    # Access the *older* record recently: recency is about last access, not creation.
    stream.index.last_access[0] = stream.index.last_access[1] + 99
    found = stream.retrieve_by_vector("bicycle", np.asarray(FakeHashEmbeddings().embed_query("bicycle")),
                                      T0 + timedelta(hours=100), k=2)
    assert [m.id for m in found] == [old.id, new.id]
    assert found[0].recency > found[1].recency


async def test_retrieval_marks_memories_accessed_and_reports_partial_scores():
    reports: list[MemoryReport] = []
    stream = stream_with(reports=reports)
    for i, text in enumerate(["Ann baked rye bread.", "Cy wrote a poem about rain.", "Ann sold bread to Bob."]):
        stream.remember("observation", text, T0 + timedelta(hours=i))
    await stream.commit()
    later = T0 + timedelta(hours=30)
    found = await stream.retrieve("bread", later, k=2)
    assert {m.text for m in found} == {"Ann baked rye bread.", "Ann sold bread to Bob."}
    assert all(stream.get(m.id).last_accessed == later for m in found)
    assert stream.get("Ann#1").last_accessed == T0 + timedelta(hours=1)
    retrieved = [r for r in reports if r.kind == "memory_retrieved"][-1]
    assert retrieved.query == "bread" and retrieved.candidates == 3
    assert all(r.score == pytest.approx(r.recency + r.importance + r.relevance) for r in retrieved.results)


# --- importance --------------------------------------------------------------------------------------------


async def test_importance_is_one_call_for_the_batch():
    calls: list[list[str]] = []
    stream = stream_with(scorer=fixed_scorer(6, calls))
    for i in range(5):
        stream.remember("observation", f"event number {i}", T0)
    records = await stream.commit()
    assert len(calls) == 1 and len(calls[0]) == 5
    assert [r.importance for r in records] == [6] * 5 and stream.importance_since_reflection == 30
    assert await stream.commit() == [] and len(calls) == 1


async def test_model_importance_scorer_batches_and_falls_back_counted():
    records: list = []
    gateway = ModelGateway(FakeChatBackend())
    with call_scope("Ann", seed=1, sink=records.append):
        scores = await model_importance_scorer(gateway)("Ann", ["a", "b", "c", "d"])
    assert len(scores) == 4 and all(1 <= s <= 10 for s in scores)
    assert [r.kind for r in records] == ["model_call"] and records[0].purpose == "importance"

    broken = ModelGateway(FakeChatBackend(garbage_rate=1.0), backoff_base_s=0.0)
    records.clear()
    with call_scope("Ann", seed=1, sink=records.append):
        scores = await model_importance_scorer(broken)("Ann", ["a", "b"])
    assert scores == [NEUTRAL_IMPORTANCE] * 2
    assert records[-1].kind == "model_fallback" and broken.counters.fallbacks == 1


async def test_importance_count_mismatch_is_retried_with_a_correction():
    backend = Scripted(['{"scores": [3]}', '{"scores": [3, 9]}'])
    scores = await model_importance_scorer(ModelGateway(backend))("Ann", ["a", "b"])
    assert scores == [3, 9] and len(backend.calls) == 2


# --- reflection --------------------------------------------------------------------------------------------


async def test_reflection_triggers_exactly_at_the_threshold():
    stream = stream_with(scorer=fixed_scorer(10), threshold=30)
    for expected in (False, False, True):
        stream.remember("observation", "something happened", T0)
        await stream.commit()
        assert stream.should_reflect() is expected


async def test_reflection_cites_real_records_drops_bad_citations_and_resets():
    reports: list[MemoryReport] = []
    stream = stream_with(scorer=fixed_scorer(10), threshold=30, reports=reports)
    for text in ["Ann baked bread for the picnic.", "Bob promised to bring lemonade.", "Cy asked about the picnic."]:
        stream.remember("observation", text, T0)
    await stream.commit()
    assert stream.should_reflect()
    backend = Scripted([
        '{"questions": ["What is Ann preparing for?"]}',
        '{"insights": [{"insight": "Ann is organising a picnic with friends.", "evidence": [1, 2, 99]}]}',
    ])
    report = await reflect(ModelGateway(backend), stream, T0 + timedelta(hours=1))
    assert report.questions == ["What is Ann preparing for?"] and report.dropped_citations == [99]
    reflection = stream.records[-1]
    assert reflection.kind == "reflection" and reflection.depth == 1
    retrieved = [r for r in reports if r.kind == "memory_retrieved"][-1]
    assert reflection.evidence == [retrieved.results[0].id, retrieved.results[1].id]
    assert all(stream.get(e) is not None for e in reflection.evidence)
    assert report.insights[0].evidence == reflection.evidence
    assert stream.importance_since_reflection == 0 and not stream.should_reflect()
    assert [r.kind for r in reports if r.kind == "reflection"] == ["reflection"]

    # With four memories every one is retrieved, so citing 1-4 cites the reflection too: one level deeper.
    deeper = Scripted([
        '{"questions": ["Who matters to Ann?"]}',
        '{"insights": [{"insight": "Ann\'s friends rally around her plans.", "evidence": [1, 2, 3, 4]}]}',
    ])
    stream.importance_since_reflection = 30
    await reflect(ModelGateway(deeper), stream, T0 + timedelta(hours=2))
    newest = stream.records[-1]
    assert reflection.id in newest.evidence and newest.depth == 2


# --- stores -------------------------------------------------------------------------------------------------

WRITER = """
import asyncio, sys
from datetime import datetime, timedelta
from pathlib import Path
from memory import ChromaStore, MemoryStream, CachedEmbeddings, FakeHashEmbeddings

async def scorer(agent, texts):
    return [(len(t) % 10) + 1 for t in texts]

async def main():
    stream = MemoryStream("Ann", ChromaStore(Path(sys.argv[1])), CachedEmbeddings(FakeHashEmbeddings()), scorer)
    t0 = datetime(2023, 2, 13, 8)
    for i, text in enumerate(sys.argv[2:]):
        stream.remember("observation", text, t0 + timedelta(hours=i), source_event=i)
    await stream.commit()
    stream.remember("reflection", "Ann likes bread.", t0 + timedelta(hours=9), evidence=["Ann#0"])
    await stream.commit()
    stream.remember("chat", "Ann talked with Bob about bikes.", t0 + timedelta(hours=10))
    await stream.commit()
    await stream.retrieve("bread", t0 + timedelta(hours=20), k=2)
    stream.store.flush()

asyncio.run(main())
"""

TEXTS = ["Ann baked bread.", "Bob fixed a bike.", "Cy read a poem.", "Ann sold bread.", "It rained all day."]


def test_chroma_persists_across_a_process_restart(tmp_path: Path):
    subprocess.run([sys.executable, "-c", WRITER, str(tmp_path / "mem"), *TEXTS], check=True)
    stream = stream_with(store=ChromaStore(tmp_path / "mem"))
    assert [r.text for r in stream.records] == [*TEXTS, "Ann likes bread.", "Ann talked with Bob about bikes."]
    assert [r.source_event for r in stream.records[:5]] == [0, 1, 2, 3, 4]
    reflection = stream.records[5]
    assert reflection.kind == "reflection" and reflection.depth == 1 and reflection.evidence == ["Ann#0"]
    assert [r.importance for r in stream.records[:5]] == [(len(t) % 10) + 1 for t in TEXTS]
    accessed = [r for r in stream.records if r.last_accessed == T0 + timedelta(hours=20)]
    assert len(accessed) == 2  # last-access times written by the store's flush survived
    assert stream.importance_since_reflection == stream.records[6].importance  # derived, not stored


async def test_both_stores_give_the_same_top_k(tmp_path: Path):
    rng = np.random.default_rng(0)
    streams = [stream_with(), stream_with(store=ChromaStore(tmp_path / "mem"))]
    words = ["bread", "bike", "poem", "rain", "picnic", "lemonade", "market", "library"]
    for i in range(60):
        text = " ".join(rng.choice(words, size=3))
        for s in streams:
            s.remember("observation", f"{i}: {text}", T0 + timedelta(minutes=10 * i))
    for s in streams:
        await s.commit()
        s.store.flush()
    for query in ["bread and bikes", "a poem in the rain", "market"]:
        now = T0 + timedelta(hours=24)
        ranked = [[m.id for m in await s.retrieve(query, now, k=10)] for s in streams]
        assert ranked[0] == ranked[1]
    streams[1].store.flush()
    reloaded = stream_with(store=ChromaStore(tmp_path / "mem"))
    assert [m.id for m in await reloaded.retrieve("market", now, k=10)] == [
        m.id for m in await streams[0].retrieve("market", now, k=10)
    ]


# --- embeddings ---------------------------------------------------------------------------------------------


def test_fake_embeddings_are_deterministic_unit_vectors():
    a, b = FakeHashEmbeddings().embed_documents(["Ann bakes bread", "Ann bakes bread"])
    assert a == b and len(a) == 384 and np.linalg.norm(a) == pytest.approx(1.0)


def test_cached_embeddings_batch_misses_and_reuse_hits():
    class Counting(FakeHashEmbeddings):
        def __init__(self):
            super().__init__()
            self.batches: list[list[str]] = []

        def embed_documents(self, texts):
            self.batches.append(list(texts))
            return super().embed_documents(texts)

    inner = Counting()
    cached = CachedEmbeddings(inner)
    cached.embed_documents(["a b", "c d", "a b"])
    cached.embed_documents(["c d", "e f"])
    assert inner.batches == [["a b", "c d"], ["e f"]]
    assert cached.hits == 2 and cached.misses == 3


@pytest.mark.model
def test_minilm_embeds_offline_with_meaning():
    from memory.embedders import MiniLMEmbeddings

    model = MiniLMEmbeddings()
    party, celebration, physics = np.asarray(
        model.embed_documents(["a party at the cafe", "a celebration in a coffee shop", "a lecture on quantum physics"])
    )
    assert party.shape == (384,) and np.linalg.norm(party) == pytest.approx(1.0, abs=1e-3)
    assert party @ celebration > party @ physics + 0.2


def test_index_grows_without_losing_or_reordering_memories():
    from memory.index import VectorIndex

    rng = np.random.default_rng(1)
    vectors = rng.standard_normal((7, 4)).astype(np.float32)
    index = VectorIndex(dimensions=4, capacity=2)
    for batch in (vectors[:1], vectors[1:4], vectors[4:]):
        index.append(batch, np.arange(len(batch), dtype=np.float32), np.zeros(len(batch)))
    columns, importance, _ = index.view()
    expected = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    assert columns.shape == (4, 7) and np.allclose(columns.T, expected)
    assert importance.tolist() == [0, 0, 1, 2, 0, 1, 2]
