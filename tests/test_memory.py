"""The memory stream: scoring formula, recency, weights, batched importance, reflection, stores."""

from __future__ import annotations

import json
import random
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from agents.gateway import CallScope, ModelGateway
from agents.gateway.backends.fake import FakeChatBackend
from agents.importance import NEUTRAL_IMPORTANCE, model_importance_scorer
from agents.cognition.reflect import reflect
from memory import (
    CachedEmbeddings,
    ChromaStore,
    FakeHashEmbeddings,
    InMemoryStore,
    MemoryRecord,
    MemoryStream,
    RetrievalWeights,
    score_memories,
)
from memory.embedders import embed_matrix
from memory.reports import MemoryReport, RetrievedMemory
from memory.scoring import NEUTRAL, normalise
from tests.conftest import Scripted

T0 = datetime(2023, 2, 13, 8, 0)


class Reports:
    """A trace that keeps what the stream reports."""

    def __init__(self) -> None:
        self.items: list[MemoryReport] = []

    def emit(self, report: MemoryReport) -> None:
        self.items.append(report)

    def of(self, kind: str) -> list[MemoryReport]:
        return [r for r in self.items if r.kind == kind]


def fixed_scorer(value: int, calls: list[list[str]] | None = None):
    async def score(agent: str, texts: list[str], trace) -> list[int]:
        if calls is not None:
            calls.append(list(texts))
        return [value] * len(texts)

    return score


def stream_with(
    store=None, scorer=None, threshold: float = 150.0, weights=None, dimensions: int = 384, durable_until=None
) -> MemoryStream:
    return MemoryStream(
        "Ann", store or InMemoryStore(), CachedEmbeddings(FakeHashEmbeddings(dimensions)), scorer or fixed_scorer(5),
        weights=weights, reflection_threshold=threshold, durable_until=durable_until,
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
    reports = Reports()
    stream = stream_with()
    for i, text in enumerate(["Ann baked rye bread.", "Cy wrote a poem about rain.", "Ann sold bread to Bob."]):
        stream.remember("observation", text, T0 + timedelta(hours=i))
    await stream.commit(reports)
    later = T0 + timedelta(hours=30)
    found = await stream.retrieve("bread", later, k=2, trace=reports)
    assert {m.text for m in found} == {"Ann baked rye bread.", "Ann sold bread to Bob."}
    assert all(stream.get(m.id).last_accessed == later for m in found)
    assert stream.get("Ann#1").last_accessed == T0 + timedelta(hours=1)
    retrieved = reports.of("memory_retrieved")[-1]
    assert retrieved.query == "bread" and retrieved.candidates == 3
    assert all(r.score == pytest.approx(r.recency + r.importance + r.relevance) for r in retrieved.results)


@pytest.mark.parametrize("dimensions", [16, 384])
async def test_the_index_takes_its_width_from_the_embedder(dimensions: int):
    only_relevance = RetrievalWeights(recency=0, importance=0, relevance=1)
    stream = stream_with(dimensions=dimensions, weights=only_relevance)
    for i, text in enumerate(["Ann baked rye bread.", "Cy wrote a poem about rain.", "Bob fixed a bike."]):
        stream.remember("observation", text, T0 + timedelta(hours=i))
    await stream.commit()
    assert stream.index.view()[0].shape == (dimensions, 3)
    found = await stream.retrieve("poem about rain", T0 + timedelta(hours=5), k=1)
    assert [m.text for m in found] == ["Cy wrote a poem about rain."]


async def test_rows_after_the_durable_moment_are_dropped_on_load():
    store = InMemoryStore()
    stream = stream_with(store=store, scorer=fixed_scorer(4))
    for i in range(4):
        stream.remember("observation", f"event {i}", T0 + timedelta(hours=i))
    await stream.commit()
    reloaded = stream_with(store=store, durable_until=T0 + timedelta(hours=1))
    assert [r.id for r in reloaded.records] == ["Ann#0", "Ann#1"] and reloaded.index.size == 2
    assert reloaded.importance_since_reflection == 8
    found = await reloaded.retrieve("event", T0 + timedelta(hours=5), k=10)
    assert sorted(m.id for m in found) == ["Ann#0", "Ann#1"]


@pytest.mark.parametrize("store_kind", ["memory", "chroma"])
async def test_set_state_rewinds_to_the_snapshot(store_kind: str, tmp_path: Path):
    store = ChromaStore(tmp_path / "mem") if store_kind == "chroma" else InMemoryStore()
    stream = stream_with(store=store, scorer=fixed_scorer(7))
    for i, text in enumerate(["Ann baked rye bread.", "Cy wrote a poem about rain.", "Bob fixed a bike."]):
        stream.remember("observation", text, T0 + timedelta(hours=i))
    await stream.commit()
    await stream.retrieve("bread", T0 + timedelta(hours=4), k=1)
    stream.remember("observation", "Ann sold bread to Bob.", T0 + timedelta(hours=5))  # still pending
    store.flush()
    state = json.loads(json.dumps(stream.get_state()))  # a snapshot must survive JSON

    async def probe() -> list[list[RetrievedMemory]]:
        moments = [T0 + timedelta(hours=h) for h in (10, 20)]
        return [await stream.retrieve(q, t, k=2) for q in ("bread", "a bike") for t in moments]

    expected = await probe()
    await stream.commit()
    stream.remember("reflection", "Ann likes bread.", T0 + timedelta(hours=30), evidence=["Ann#0"])
    await stream.commit()
    await stream.retrieve("bread", T0 + timedelta(hours=31), k=3)
    store.flush()

    stream.set_state(state)
    assert len(stream.records) == 3 and [p.text for p in stream.pending] == ["Ann sold bread to Bob."]
    assert stream.importance_since_reflection == 21
    assert await probe() == expected


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


async def test_scoring_beside_other_work_changes_nothing_until_applied():
    stream = stream_with(scorer=fixed_scorer(7))
    stream.remember("observation", "the bakery opened early", T0)
    batch = await stream.score_pending()
    assert stream.records == [] and [p.text for p in stream.pending] == ["the bakery opened early"]
    stream.remember("plan", "buy rolls at nine", T0)  # queued while the batch was being scored
    records = stream.apply(batch)
    assert [(r.id, r.text, r.importance) for r in records] == [("Ann#0", "the bakery opened early", 7)]
    assert [p.text for p in stream.pending] == ["buy rolls at nine"]  # waits for the next batch
    assert [m.text for m in await stream.retrieve("bakery", T0)] == ["the bakery opened early"]


async def test_a_batch_applied_after_its_memories_were_taken_is_refused():
    stream = stream_with()
    stream.remember("observation", "rain at noon", T0)
    batch = await stream.score_pending()
    await stream.commit()  # someone else committed the same memories meanwhile
    with pytest.raises(RuntimeError, match="changed while they were being scored"):
        stream.apply(batch)
    assert [r.text for r in stream.records] == ["rain at noon"]


async def test_model_importance_scorer_is_one_call_attributed_to_the_scope():
    records: list = []
    scorer = model_importance_scorer(ModelGateway(FakeChatBackend()))
    scores = await scorer("Ann", ["a", "b", "c", "d"], CallScope("Ann", 1, records.append))
    assert len(scores) == 4
    (call,) = records
    assert call.kind == "model_call" and call.purpose == "importance" and call.agent == "Ann"
    assert call.structured == "ImportanceScores"


async def test_out_of_range_importance_is_clamped_to_the_scale():
    items: list = []
    stream = stream_with(scorer=model_importance_scorer(ModelGateway(Scripted(['{"scores": [0, 14, 7, -3]}']))))
    for text in ["brushed teeth", "won the lottery", "met a friend", "tied a shoe"]:
        stream.remember("observation", text, T0)
    records = await stream.commit(CallScope("Ann", 1, items.append))
    assert [r.importance for r in records] == [1, 10, 7, 1]
    assert [r.kind for r in items] == ["model_call", "importance_scored", *["memory_added"] * 4]
    assert items[1].scores == [1, 10, 7, 1]


async def test_importance_count_mismatch_is_retried_with_a_correction():
    backend = Scripted(['{"scores": [3]}', '{"scores": [3, 9]}'])
    scores = await model_importance_scorer(ModelGateway(backend))("Ann", ["a", "b"], None)
    assert scores == [3, 9] and len(backend.calls) == 2


async def test_importance_that_never_has_the_right_count_falls_back_to_neutral():
    records: list = []
    gateway = ModelGateway(Scripted(['{"scores": [3]}', '{"scores": [3, 9, 4]}', '{"scores": []}']))
    scores = await model_importance_scorer(gateway)("Ann", ["a", "b"], CallScope("Ann", 1, records.append))
    assert scores == [NEUTRAL_IMPORTANCE] * 2
    assert [r.kind for r in records] == [
        "model_call", "model_retry", "model_call", "model_retry", "model_call", "model_fallback",
    ]
    fallback = records[-1]
    assert fallback.agent == "Ann" and fallback.purpose == "importance" and "scores" in fallback.reason
    assert gateway.counters.fallbacks == 1


# --- reflection --------------------------------------------------------------------------------------------


async def test_reflection_triggers_exactly_at_the_threshold():
    stream = stream_with(scorer=fixed_scorer(10), threshold=30)
    for expected in (False, False, True):
        stream.remember("observation", "something happened", T0)
        await stream.commit()
        assert stream.should_reflect() is expected


async def test_reflection_cites_real_records_drops_bad_citations_and_resets():
    reports: list = []
    scope = CallScope("Ann", 0, reports.append)
    stream = stream_with(scorer=fixed_scorer(10), threshold=30)
    for text in ["Ann baked bread for the picnic.", "Bob promised to bring lemonade.", "Cy asked about the picnic."]:
        stream.remember("observation", text, T0)
    await stream.commit(scope)
    assert stream.should_reflect()
    backend = Scripted([
        '{"questions": ["What is Ann preparing for?"]}',
        '{"insights": [{"insight": "Ann is organising a picnic with friends.", "evidence": [1, 2, 99]}]}',
    ])
    report = (await reflect(ModelGateway(backend), stream, T0 + timedelta(hours=1), scope)).report
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
    await reflect(ModelGateway(deeper), stream, T0 + timedelta(hours=2), scope)
    newest = stream.records[-1]
    assert reflection.id in newest.evidence and newest.depth == 2


# --- stores -------------------------------------------------------------------------------------------------

WRITER = """
import asyncio, sys
from datetime import datetime, timedelta
from pathlib import Path
from memory import ChromaStore, MemoryStream, CachedEmbeddings, FakeHashEmbeddings

async def scorer(agent, texts, trace):
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


async def test_cached_embeddings_answer_a_text_alike_on_a_miss_and_a_hit_async_or_not():
    class Precise(FakeHashEmbeddings):
        """Float64 values, as a remote embedder may give; and a count of what reaches it."""

        calls = 0

        def embed_documents(self, texts):
            Precise.calls += 1
            return [[v + 1e-12 for v in vector] for vector in super().embed_documents(texts)]

        async def aembed_documents(self, texts):
            return self.embed_documents(texts)

    cached = CachedEmbeddings(Precise())
    miss = cached.embed_documents(["Ann bakes bread"])[0]
    hit = await cached.aembed_query("Ann bakes bread")
    assert miss == hit == np.asarray(miss, dtype=np.float32).tolist()  # kept and answered as float32
    assert Precise.calls == 1 and cached.hits == 1


def test_the_in_memory_store_keeps_vectors_apart_and_gives_them_back_on_load():
    store = InMemoryStore()
    vector = FakeHashEmbeddings().embed_query("Ann bakes bread")
    made = datetime(2023, 2, 13, 8)
    record = MemoryRecord(id="Ann#0", agent="Ann", kind="observation", text="Ann bakes bread", created=made,
                          last_accessed=made, importance=3)
    store.add([record], np.asarray([vector], dtype=np.float32))
    assert store.records["Ann#0"] is record and record.embedding is None  # held once, no list of floats
    loaded = store.load("Ann")[0]
    assert loaded.embedding == vector and loaded is not record  # the vector goes back on a copy
    store.touch(["Ann#0"], made + timedelta(hours=1))
    assert record.last_accessed == made + timedelta(hours=1)
    with pytest.raises(ValueError):
        store.add([record], np.zeros((0, 384), dtype=np.float32))  # a record without its vector
    store.discard(["Ann#0"])
    assert store.load("Ann") == [] and store.vectors == {}


def test_cached_embeddings_are_safe_under_threads():
    class Slow(FakeHashEmbeddings):
        """Sleeps while embedding, so other threads evict and insert in the meantime."""

        def embed_documents(self, texts):
            time.sleep(0.0005)
            return super().embed_documents(texts)

    texts = [f"word{i} topic{i % 3}" for i in range(10)]
    expected = dict(zip(texts, FakeHashEmbeddings(16).embed_documents(texts)))
    cached = CachedEmbeddings(Slow(16), max_entries=3)

    def hammer(seed: int) -> int:
        rng = random.Random(seed)
        for _ in range(200):
            batch = rng.sample(texts, 3)
            assert cached.embed_documents(batch) == [expected[t] for t in batch]
        return 200 * 3

    with ThreadPoolExecutor(max_workers=8) as pool:
        served = sum(pool.map(hammer, range(16)))
    assert cached.hits + cached.misses == served and cached.hits > 0
    assert len(cached._cache) <= 3


@pytest.mark.model
async def test_minilm_embeds_offline_with_meaning():
    from memory.embedders import MiniLMEmbeddings

    model = MiniLMEmbeddings()
    texts = ["a party at the cafe", "a celebration in a coffee shop", "a lecture on quantum physics"]
    party, celebration, physics = np.asarray(model.embed_documents(texts))
    assert party.shape == (384,) and np.linalg.norm(party) == pytest.approx(1.0, abs=1e-3)
    assert party @ celebration > party @ physics + 0.2
    matrix = await embed_matrix(model, texts)  # the stream's path: float32 straight from the model
    assert matrix.dtype == np.float32 and np.allclose(matrix, [party, celebration, physics], atol=1e-6)


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


async def test_a_failed_reflection_keeps_its_trigger_and_says_why():
    from agents.gateway import TransientModelError

    stream = stream_with(scorer=fixed_scorer(10), threshold=20)
    for text in ["Ann baked bread.", "Bob fixed a bike."]:
        stream.remember("observation", text, T0)
    await stream.commit()
    failing = Scripted([TransientModelError("down")] * 4)
    gateway = ModelGateway(failing, backoff_base_s=0.0)
    outcome = await reflect(gateway, stream, T0, CallScope("Ann", 0))
    assert outcome.report is None and "no usable questions" in outcome.skipped
    assert stream.should_reflect(), "the trigger survives a failed call and fires again next tick"

    # Questions come back, but the insight call for one of them fails: it is named, the others kept.
    half = Scripted([
        '{"questions": ["What is Ann doing?", "What is Bob doing?"]}',
        '{"insights": [{"insight": "Ann bakes.", "evidence": [1]}]}',
        *[TransientModelError("down")] * 4,
    ])
    outcome = await reflect(ModelGateway(half, backoff_base_s=0.0), stream, T0, CallScope("Ann", 1))
    assert outcome.failed_questions == ["What is Bob doing?"]
    assert [i.text for i in outcome.report.insights] == ["Ann bakes."] and not stream.should_reflect()


async def test_reflecting_on_nothing_is_reported_as_such():
    stream = stream_with(threshold=1)
    stream.importance_since_reflection = 5
    outcome = await reflect(ModelGateway(Scripted([])), stream, T0, CallScope("Ann", 0))
    assert outcome.skipped == "no recent memories to reflect on" and not stream.should_reflect()


async def test_embed_matrix_gives_the_rows_the_lists_give_and_keeps_a_subclass_own_answers():
    texts = ["Ann bakes bread", "Bob fixes the roof", "Ann bakes bread"]
    plain = FakeHashEmbeddings()
    cached = CachedEmbeddings(FakeHashEmbeddings())
    for embedder in (plain, cached):
        matrix = await embed_matrix(embedder, texts)
        assert matrix.dtype == np.float32 and matrix.shape == (3, 384)
        assert matrix.tolist() == np.asarray(plain.embed_documents(texts), dtype=np.float32).tolist()

    class Shifted(FakeHashEmbeddings):
        """A subclass whose lists differ from the hashing: the matrix must come from them."""

        def embed_documents(self, texts):
            return [[v + 1.0 for v in vector] for vector in super().embed_documents(texts)]

    shifted = await embed_matrix(Shifted(), texts[:1])
    assert shifted[0].tolist() == np.asarray(Shifted().embed_documents(texts[:1]), dtype=np.float32)[0].tolist()
    assert (await embed_matrix(cached, [])).shape[0] == 0


async def test_an_embedder_short_of_vectors_loses_no_memory_and_says_so():
    class Short(FakeHashEmbeddings):
        """Answers one vector fewer than asked, as a broken remote embedder might."""

        async def aembed_documents(self, texts):
            return self.embed_documents(texts)[:-1]

    store = InMemoryStore()
    stream = MemoryStream("Ann", store, Short(), fixed_scorer(5))
    stream.remember("observation", "Ann bakes bread", datetime(2023, 2, 13, 8))
    stream.remember("observation", "Bob fixes the roof", datetime(2023, 2, 13, 8))
    with pytest.raises(ValueError, match="1 vectors for 2 memories"):
        await stream.commit()
    assert len(stream.pending) == 2 and stream.records == [] and store.records == {}


async def test_a_raw_embedder_keeps_its_own_query_path():
    class Asymmetric(FakeHashEmbeddings):
        """Embeds queries apart from documents, as some retrieval models do."""

        async def aembed_query(self, text):
            return self.embed_query("query: " + text)

    stream = MemoryStream("Ann", InMemoryStore(), Asymmetric(), fixed_scorer(5))
    stream.remember("observation", "query: Ann bakes bread", datetime(2023, 2, 13, 8))
    stream.remember("observation", "Ann bakes bread", datetime(2023, 2, 13, 8))
    await stream.commit()
    (best, *_) = await stream.retrieve("Ann bakes bread", datetime(2023, 2, 13, 9), k=2)
    assert best.text == "query: Ann bakes bread" and best.relevance == 1.0


def test_a_checked_record_equals_a_validated_one_and_shares_its_field_set():
    made = datetime(2023, 2, 13, 8)
    fields = dict(id="Ann#0", agent="Ann", kind="observation", text="Ann bakes bread", created=made,
                  last_accessed=made, importance=3, evidence=[], depth=0, source_event=7)
    checked, other = MemoryRecord.checked(**fields), MemoryRecord.checked(**{**fields, "id": "Ann#1"})
    assert checked == MemoryRecord(**fields) and checked.model_dump_json() == MemoryRecord(**fields).model_dump_json()
    assert checked.__pydantic_fields_set__ is other.__pydantic_fields_set__
    shared = set(checked.__pydantic_fields_set__)
    checked.last_accessed = made + timedelta(hours=1)  # marked accessed in place, as retrieval does
    assert checked.__pydantic_fields_set__ == shared and other.last_accessed == made
