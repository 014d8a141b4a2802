"""The embedded default model (llama.cpp + Qwen2.5-Coder-0.5B) end to end through the gateway."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

import pytest

from agents.gateway import CallScope, ChatMessage, ModelGateway, build_backend
from agents.gateway.backends.base import Backend
from agents.gateway.records import GatewayRecord
from agents.importance import model_importance_scorer
from agents.cognition.reflect import reflect
from agents.roleplay.session import RoleplaySession
from agents.roleplay.setup import RoleCard, RoleplaySetup
from agents.roleplay.turns import instruction_of, solution_of
from memory import InMemoryStore, MemoryStream, build_embedder
from tests.conftest import Verdict, model_calls, rate_strawberry

pytestmark = pytest.mark.model


@pytest.fixture(scope="module")
def embedded() -> Backend:
    """One backend (and so one loaded Llama) for the whole module."""
    return build_backend("embedded")


@pytest.fixture
def gateway(embedded: Backend) -> ModelGateway:
    # Cheap; a fresh one per test keeps its semaphore on the test's own event loop.
    return ModelGateway(embedded)


async def test_chat_reply_has_text_and_token_counts(gateway: ModelGateway) -> None:
    records: list[GatewayRecord] = []
    messages = [
        ChatMessage(role="system", content="You are Ann, a cheerful baker. Answer in one short sentence."),
        ChatMessage(role="user", content="Good morning Ann! What are you baking today?"),
    ]
    text = await gateway.complete(
        messages, purpose="chat", temperature=0.7, max_tokens=32, scope=CallScope("Ann", 7, records.append)
    )
    assert text.strip()
    calls = model_calls(records)
    assert len(calls) == 1
    call = calls[0]
    assert call.model.startswith("embedded:")
    assert call.response == text
    assert call.prompt_tokens > 0
    assert 0 < call.completion_tokens <= 32
    assert call.agent == "Ann" and not call.cached and call.retries == 0


async def test_structured_answer_is_schema_valid(gateway: ModelGateway) -> None:
    verdict, records = await rate_strawberry(gateway, "Bob")
    assert isinstance(verdict, Verdict)
    assert 1 <= verdict.score <= 10
    assert verdict.label.strip()
    calls = model_calls(records)
    assert calls and all(c.structured == "Verdict" for c in calls)
    assert all(r.kind != "model_fallback" for r in records)


async def test_same_seed_gives_same_text(gateway: ModelGateway) -> None:
    messages = [ChatMessage(role="user", content="Invent a name for a small seaside cafe.")]

    async def once() -> tuple[str, int]:
        records: list[GatewayRecord] = []
        scope = CallScope("Cy", 11, records.append)
        text = await gateway.complete(messages, purpose="name", temperature=0.9, max_tokens=24, scope=scope)
        return text, model_calls(records)[0].seed

    first, second = await once(), await once()
    assert first[1] == second[1]  # the scope derives the same per-call seed
    assert first[0] == second[0]
    assert first[0].strip()


async def test_kept_prompt_prefixes_change_no_answer_whatever_the_order(embedded: Backend) -> None:
    from agents.gateway.types import ModelRequest

    persona = ChatMessage(role="system", content="You are Tom, who runs the hardware store. Speak casually, briefly.")
    judge = ChatMessage(role="system", content="You rate how much a memory matters to Ann, from 1 to 10.")
    schema = {"title": "Score", "type": "object", "properties": {"score": {"type": "integer"}}, "required": ["score"]}
    asks = [(persona, "Say hello to Sam.", None), (judge, "Memory: it rained.", schema),
            (persona, "What is new at the store?", None), (judge, "Memory: Ann got married.", schema)]
    requests = [ModelRequest(model="embedded", messages=[system, ChatMessage(role="user", content=text)],
                             temperature=0.9, max_tokens=12, seed=21 + i, json_schema=shape)
                for i, (system, text, shape) in enumerate(asks)]
    afresh = build_backend("embedded?prefix_mb=0")  # the same loaded model, keeping no prefix
    plain = [await afresh.generate(r) for r in requests]
    kept = {i: await embedded.generate(requests[i]) for i in (3, 1, 2, 0)}  # another order, prefixes kept
    assert [r.text for r in plain] == [kept[i].text for i in range(4)]
    assert all(r.prompt_tokens_reused == 0 for r in plain)
    assert kept[1].prompt_tokens_reused > 0 and kept[0].prompt_tokens_reused > 0  # each prefix's second call
    assert all(r.prompt_tokens_reused < r.prompt_tokens for r in kept.values())


async def test_reflection_runs_on_the_embedded_model(gateway: ModelGateway) -> None:
    """Questions, cited insights and batched importance all pass llama.cpp's grammar and validation."""
    stream = MemoryStream("Klaus", InMemoryStore(), build_embedder("fake"), model_importance_scorer(gateway))
    start = datetime(2023, 2, 13, 8)
    for i, text in enumerate([
        "Isabella invited Klaus to a Valentine's Day party at Hobbs Cafe.",
        "Klaus has a crush on Maria.",
        "Maria said she loves parties.",
    ]):
        stream.remember("observation", text, start + timedelta(minutes=i))
    records: list = []
    scope = CallScope("Klaus", 2, records.append)
    await stream.commit(scope)
    # Grammar-constrained decoding holds the batch to one score per memory at the first try; unconstrained,
    # this model copies the one-item example from the prompt and has to be asked again.
    (call,) = model_calls(records)
    assert call.purpose == "importance" and len(json.loads(call.response)["scores"]) == 3
    assert not [r for r in records if r.kind in {"model_retry", "model_repair", "model_fallback"}]
    report = (await reflect(gateway, stream, start + timedelta(hours=1), scope)).report
    assert report is not None and report.questions
    reflections = [r for r in stream.records if r.kind == "reflection"]
    assert reflections and all(r.depth == 1 for r in reflections)
    assert all(stream.get(e) is not None for r in reflections for e in r.evidence)


async def test_inception_prompts_hold_the_small_model_in_its_roles(gateway: ModelGateway) -> None:
    """The user side instructs in CAMEL's format and the assistant answers with a solution, not an instruction."""
    setup = RoleplaySetup(session_id="e-1", seed=3, assistant=RoleCard(role="Chef"), user=RoleCard(role="Student"),
                          task="Plan a cheap, healthy dinner for a student's week.", max_messages=2)
    session = RoleplaySession(setup)
    records: list = []
    await session.advance(gateway, CallScope(seed=3, sink=records.append), 2)
    first, second = session.progress.turns
    assert instruction_of(first.content), first.content
    assert solution_of(second.content) and not instruction_of(second.content), second.content
    assert session.progress.reason == "max_messages"


async def test_p_true_comes_from_llamacpp_logits_and_tracks_the_answer(gateway: ModelGateway) -> None:
    """Self-Eval's P(True) through llama.cpp's own next-token probabilities, for a right and a wrong answer."""
    from agents.loops.evaluate import SelfEval, SelfEvalSetup

    found = {}
    for proposed in ("4", "Paris is the capital of Italy."):
        records: list = []
        loop = SelfEval(SelfEvalSetup(session_id=proposed, task="What is 2 + 2?", proposed=proposed))
        await loop.advance(gateway, CallScope(seed=1, sink=records.append), 10)
        (asked,) = [r for r in model_calls(records) if r.purpose == "eval_p_true"]
        logprobs = json.loads(asked.response)
        assert set(logprobs) == {"True", "False"} and all(v < 0 for v in logprobs.values())
        assert loop.progress.result["method"] == "logprobs"
        found[proposed] = loop.progress.result["p_true"]
    assert all(0.0 < p < 1.0 for p in found.values())
    assert found["4"] > found["Paris is the capital of Italy."], found


async def test_self_debug_runs_the_embedded_models_code_in_the_sandbox(gateway: ModelGateway) -> None:
    """One small problem end to end: the model's code is extracted, run against the tests, and judged."""
    from agents.loops.debug import SelfDebug, SelfDebugSetup
    from agents.loops.sandbox import SandboxLimits

    setup = SelfDebugSetup(session_id="add", task='def add(a: int, b: int) -> int:\n    """Return a + b."""\n',
                           tests="def check(f):\n    assert f(2, 3) == 5\n    assert f(-1, 1) == 0\n",
                           entry_point="add", max_turns=2, limits=SandboxLimits(wall_s=10))
    loop = SelfDebug(setup)
    await loop.advance(gateway, CallScope(seed=2), 10)
    result = loop.progress.result
    assert loop.progress.reason in ("tests_passed", "max_turns") and result["outcomes"]
    assert "def add" in result["code"], result["code"]
    assert loop.progress.reason == "tests_passed", result


async def test_concurrent_calls_share_decode_steps_and_each_gets_its_own_answer() -> None:
    """Four structured calls at once on a four-sequence decoder: fewer steps than rows, every answer schema-valid."""
    import asyncio

    backend = build_backend("embedded?parallel=4&prefix_mb=0")
    before = backend.decoder.counters.model_copy()
    gateway = ModelGateway(backend)
    questions = [f"On a scale from 1 to 10, how tasty is a fresh {fruit}? Give the score and a one-word label."
                 for fruit in ("strawberry", "peach", "cherry", "mango")]
    records: list[GatewayRecord] = []
    verdicts = await asyncio.gather(*(
        gateway.structured([ChatMessage(role="user", content=q)], Verdict, purpose="rate", temperature=0.2,
                           max_tokens=48, scope=CallScope("Ann", i, records.append))
        for i, q in enumerate(questions)))
    after = backend.decoder.counters
    assert all(v.label.strip() for v in verdicts)
    assert all(r.kind != "model_fallback" for r in records)
    assert after.most_in_flight >= 2 and after.shared_steps > before.shared_steps
    assert after.generated_tokens - before.generated_tokens == sum(c.completion_tokens for c in model_calls(records))


async def test_a_call_given_up_frees_its_sequence_for_the_next() -> None:
    """A time-out leaves nothing behind in the decoder: the next call on a one-sequence decoder still answers."""
    import asyncio

    backend = build_backend("embedded?parallel=1&prefix_mb=0")
    request_text = "Write a very long story about a lighthouse keeper and his cat."
    from agents.gateway.types import ModelRequest

    long = ModelRequest(model="embedded", messages=[ChatMessage(role="user", content=request_text)],
                        max_tokens=2000, seed=3)
    before = backend.decoder.counters.abandoned
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(1.0):
            await backend.generate(long)
    short = long.model_copy(update={"max_tokens": 8})
    reply = await asyncio.wait_for(backend.generate(short), timeout=60)
    assert reply.completion_tokens > 0
    assert backend.decoder.counters.abandoned == before + 1


async def test_drafts_from_the_prompt_save_steps_and_keep_what_the_model_would_say() -> None:
    """A reply that copies its prompt: drafted tokens agreed with take no step of their own, the ones the model
    disagrees with leave nothing behind (the greedy answer is the one decoded a token a step)."""
    from agents.gateway.types import ModelRequest

    items = "1. two red apples\n2. a loaf of rye bread\n3. six brown eggs\n4. a jar of plum jam\n5. green tea"
    request = ModelRequest(model="embedded", temperature=0.0, max_tokens=48, seed=5, messages=[
        ChatMessage(role="user", content=f"Copy this shopping list exactly, nothing else:\n{items}")])
    drafting = build_backend("embedded?parallel=1&prefix_mb=0")
    stepwise = build_backend("embedded?parallel=1&prefix_mb=0&draft=0")  # the same decoder, no drafts
    before = drafting.decoder.counters.model_copy()
    drafted = await drafting.generate(request)
    after = drafting.decoder.counters.model_copy()
    assert drafted.text == (await stepwise.generate(request)).text
    assert "rye bread" in drafted.text
    accepted, checked = after.accepted_tokens - before.accepted_tokens, after.drafted_tokens - before.drafted_tokens
    assert accepted >= drafted.completion_tokens // 2, (accepted, drafted.completion_tokens)
    assert after.steps - before.steps < drafted.completion_tokens
    assert checked > accepted  # some guesses were wrong, and the answer is still the greedy one
