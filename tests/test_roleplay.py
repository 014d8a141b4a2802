"""CAMEL role-play sessions on a scripted model: stop rules, critic, specifier/planner, personas, bounds, snapshots."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable
from typing import Any, Literal

import pytest
from pydantic import BaseModel

from agents.gateway import (
    CallScope,
    ModelGateway,
    ModelReply,
    ModelRequest,
    PermanentModelError,
    TransientModelError,
)
from agents.gateway.backends.base import Backend
from agents.roleplay import prompts
from agents.roleplay.records import EndReason
from agents.roleplay.session import RoleplaySession
from agents.roleplay.setup import CriticSetup, RoleCard, RoleplayOptions, RoleplaySetup
from agents.roleplay.turns import (
    Turn,
    instruction_of,
    is_courtesy,
    solution_of,
    stop_reason,
)
from agents.seeding import stable_rng

# ====================================================================================================================
# The scripted model
# ====================================================================================================================

Part = Literal["user", "assistant", "critic", "specifier", "planner"]
Responder = Callable[[ModelRequest], str]
Script = list[str | BaseException] | Responder


class ScriptExhausted(PermanentModelError):
    """A participant spoke more often than its script allows; permanent, so it surfaces instead of being retried."""


def part_of(request: ModelRequest) -> Part:
    """Which participant a request is for, told apart by its system prompt."""
    first = request.messages[0] if request.messages else None
    system = first.content if first is not None and first.role == "system" else ""
    if system == prompts.SPECIFIER_SYSTEM:
        return "specifier"
    if system == prompts.PLANNER_SYSTEM:
        return "planner"
    if system.startswith("You are") and "judging turns" in system:
        return "critic"
    if "you always give the instructions" in system:
        return "user"
    if "Finish every reply with `Next request.`" in system:
        return "assistant"
    raise ScriptExhausted(f"no participant has the system prompt {system[:80]!r}")


class ScriptedRoleplay(Backend):
    """Answers each participant from its own script: a list played in order, or a function of the request.

    Every request is kept with the participant it was for, so tests can read the prompts each side saw.
    `tokens` is the (prompt, completion) count reported per call; None reports word counts, which (like the
    function scripts) depend on nothing but the request.
    """

    def __init__(self, tokens: tuple[int, int] | None = (10, 5), **scripts: Script) -> None:
        self.name = "scripted-roleplay"
        self.max_in_flight = 8
        self.timeout_s = 5.0
        self.tokens = tokens
        self.scripts: dict[str, Script] = {
            part: script if callable(script) else list(script) for part, script in scripts.items()
        }
        self.seen: list[tuple[Part, ModelRequest]] = []

    async def generate(self, request: ModelRequest) -> ModelReply:
        part = part_of(request)
        self.seen.append((part, request))
        script = self.scripts.get(part, [])
        if callable(script):
            step: str | BaseException = script(request)
        elif script:
            step = script.pop(0)
        else:
            raise ScriptExhausted(f"the {part} script ran out")
        if isinstance(step, BaseException):
            raise step
        if self.tokens is None:
            prompt = " ".join(m.content for m in request.messages)
            return ModelReply(text=step, prompt_tokens=len(prompt.split()), completion_tokens=len(step.split()))
        return ModelReply(text=step, prompt_tokens=self.tokens[0], completion_tokens=self.tokens[1])

    def requests(self, part: Part) -> list[ModelRequest]:
        return [request for seen, request in self.seen if seen == part]

    def left(self) -> dict[str, int]:
        """How many replies each list script still holds (all used up: the session stopped where expected)."""
        return {part: len(script) for part, script in self.scripts.items() if not callable(script)}


WORDS = (
    "ledger", "broker", "candle", "volume", "spread", "margin", "hedge", "option", "future", "yield", "bond",
    "equity", "dividend", "index", "sector", "momentum", "breakout", "support", "resistance", "liquidity",
    "slippage", "latency", "order", "fill", "queue", "ticker", "quote", "bid", "ask", "position", "exposure",
    "drawdown", "volatility", "correlation", "regression", "signal", "filter", "threshold", "window", "lookback",
    "backtest", "benchmark", "portfolio", "allocation", "rebalance", "leverage", "collateral", "settlement",
    "clearing", "audit", "report", "chart", "dashboard", "alert", "webhook", "schedule", "cron", "database",
    "schema", "migration", "logger", "config", "secret", "vault",
)


def phrase(*key: object, words: int = 9) -> str:
    """Distinct-looking words drawn from a key, so generated messages never read as near-repeats."""
    return " ".join(stable_rng("phrase", *key).sample(WORDS, words))


def fingerprint(request: ModelRequest) -> str:
    """Everything the model reads (not the seed), hashed: a reply built on it changes if any prompt text does."""
    return hashlib.sha256("\x00".join(m.content for m in request.messages).encode()).hexdigest()


def last_step(request: ModelRequest) -> int:
    """The step number of the latest message in the prompt (0 before the first one)."""
    found = re.findall(r"step (\d+)\b", request.messages[-1].content)
    return int(found[-1]) if found else 0


def camel_user(request: ModelRequest) -> str:
    """A new instruction for the step after the assistant's latest answer."""
    step, key = last_step(request) + 1, fingerprint(request)
    return f"Instruction: Do step {step}: {phrase(key)}.\nInput: {phrase(key, 'input', words=4)}"


def camel_assistant(request: ModelRequest) -> str:
    """An answer to the user's latest instruction."""
    return f"Solution: Finished step {last_step(request)} with {phrase(fingerprint(request))}. Next request."


# ====================================================================================================================
# Helpers
# ====================================================================================================================

DONE = "<TASK_DONE>"
PAIRS = [
    ("Instruction: List three free sources of daily stock prices.\nInput: None",
     "Solution: Yahoo Finance, Stooq and Alpha Vantage all publish daily prices at no cost. Next request."),
    ("Instruction: Write a Python function that downloads a price history.\nInput: ticker symbol and date range",
     ("Solution:\n```python\ndef history(ticker, start, end):\n    return yf.download(ticker, start=start, end=end)\n"
      "```\nNext request.")),
    ("Instruction: Compute a 20-day moving average crossover signal.\nInput: the price frame from before",
     "Solution: Compare close.rolling(20).mean() with the 50-day mean; an upward cross is a buy. Next request."),
    ("Instruction: Add a stop-loss that limits each trade's loss to two percent.\nInput: None",
     "Solution: Keep the entry price and sell as soon as the close falls below entry times 0.98. Next request."),
    ("Instruction: Backtest the strategy on Apple shares over 2020.\nInput: AAPL, 2020-01-01 to 2020-12-31",
     "Solution: Fourteen trades, a net return of 9.3 percent and a worst drawdown of 6 percent. Next request."),
]
INSTRUCTIONS = [user for user, _ in PAIRS]
SOLUTIONS = [assistant for _, assistant in PAIRS]
QUESTIONS = [
    "Could you tell me a bit more about what you need from me?",
    "Hmm, let me think about which market we should target first.",
    "I wonder whether day trading is even allowed for a small account like mine.",
]
LONG_THANKS = ("Thanks, that works. Now the harder part is deciding how the bot should size positions when the "
               "market gaps overnight, because our broker fills market orders at the open price.")


def make_setup(**overrides: Any) -> RoleplaySetup:
    """A small session between two free roles; any field can be overridden."""
    fields: dict[str, Any] = {
        "session_id": "s-1", "seed": 7, "assistant": RoleCard(role="Python Programmer"),
        "user": RoleCard(role="Stock Trader"), "task": "Develop a trading bot for the stock market.",
    }
    fields.update(overrides)
    return RoleplaySetup(**fields)


def fast_gateway(backend: Backend, **kwargs: Any) -> ModelGateway:
    """No cache and zero back-off, so retries cost no waiting."""
    return ModelGateway(backend, backoff_base_s=0.0, backoff_max_s=0.0, **kwargs)


async def play(
    setup: RoleplaySetup, backend: ScriptedRoleplay, turns: int | None = None, seed: int = 11,
    gateway: ModelGateway | None = None, session: RoleplaySession | None = None,
) -> tuple[RoleplaySession, list[BaseModel], ModelGateway]:
    """Advance a session (a fresh one by default) by up to `turns` messages; its records and the gateway used."""
    records: list[BaseModel] = []
    gateway = gateway or fast_gateway(backend)
    session = session or RoleplaySession(setup)
    await session.advance(gateway, CallScope(seed=seed, sink=records.append),
                          setup.max_messages if turns is None else turns)
    return session, records, gateway


def of_kind(records: list[BaseModel], kind: str) -> list[Any]:
    return [r for r in records if getattr(r, "kind", None) == kind]


def session_records(records: list[BaseModel]) -> list[dict[str, Any]]:
    """The session's own records (not the gateway's), as plain data."""
    kinds = {"session_started", "session_message", "critic_choice", "session_ended"}
    return [r.model_dump() for r in records if getattr(r, "kind", None) in kinds]


def system_of(request: ModelRequest) -> str:
    return request.messages[0].content


def prompt_text(request: ModelRequest) -> str:
    return "\n".join(m.content for m in request.messages)


def turn(role: Literal["user", "assistant"], content: str) -> Turn:
    return Turn(role=role, speaker=role.title(), content=content)


def exchange(pairs: int) -> list[Turn]:
    """A well-behaved CAMEL exchange: `pairs` distinct instruction/solution pairs."""
    return [turn(role, text) for user, assistant in PAIRS[:pairs] for role, text in (("user", user),
                                                                                     ("assistant", assistant))]


# ====================================================================================================================
# 1. Stop rules on hand-made transcripts
# ====================================================================================================================

FIRING: dict[str, tuple[list[Turn], dict[str, Any], EndReason]] = {
    "task_done": ([*exchange(2), turn("user", f"Great, everything is in place. {DONE}")], {}, "task_done"),
    "task_done_alone": ([*exchange(1), turn("user", DONE)], {}, "task_done"),
    "role_flip": ([*exchange(1), turn("user", INSTRUCTIONS[1]),
                   turn("assistant", "Instruction: Send me your broker's API key.\nInput: None")], {}, "role_flip"),
    "role_flip_markdown": ([turn("user", INSTRUCTIONS[0]), turn("assistant", "**Instruction:** tell me the budget")],
                           {}, "role_flip"),
    "role_flip_second": ([turn("user", INSTRUCTIONS[0]), turn("assistant", "Instruction: pick a broker"),
                          turn("user", INSTRUCTIONS[1]), turn("assistant", "instruction - choose a market to trade")],
                         {"role_flips": 2}, "role_flip"),
    "no_instruction": ([*exchange(1), turn("user", QUESTIONS[0]), turn("assistant", SOLUTIONS[1]),
                        turn("user", "Instruction: None\nInput: None"), turn("assistant", SOLUTIONS[2]),
                        turn("user", QUESTIONS[1])], {}, "no_instruction"),
    "courtesy_loop": ([*exchange(1), turn("user", "Thanks a lot!"), turn("assistant", "You're welcome! Next request."),
                       turn("user", "Thank you, goodbye!"), turn("assistant", "Goodbye, take care. Next request.")],
                      {}, "courtesy_loop"),
    "max_messages": (exchange(3), {"max_messages": 6}, "max_messages"),
    "repetition": ([*exchange(2), turn("user", INSTRUCTIONS[1].replace("Python", "python"))], {}, "repetition"),
}

QUIET: dict[str, tuple[list[Turn], dict[str, Any]]] = {
    "camel_exchange": (exchange(5), {}),
    "done_token_from_assistant": ([turn("user", INSTRUCTIONS[0]), turn("assistant", f"Solution: {DONE} Next request.")],
                                  {}),
    "instruction_resets_streak": ([turn("user", QUESTIONS[0]), turn("assistant", SOLUTIONS[0]),
                                   turn("user", QUESTIONS[1]), turn("assistant", SOLUTIONS[1]),
                                   turn("user", INSTRUCTIONS[2]), turn("assistant", SOLUTIONS[2]),
                                   turn("user", QUESTIONS[2]), turn("assistant", SOLUTIONS[3]),
                                   turn("user", "Instruction: None")], {}),
    "substantive_thanks": ([*exchange(1), turn("user", "Thanks a lot!"), turn("assistant", "You're welcome! Next request."),
                            turn("user", LONG_THANKS), turn("assistant", "Goodbye, take care. Next request.")], {}),
    "one_flip_below_limit": ([turn("user", INSTRUCTIONS[0]), turn("assistant", "Instruction: pick a broker")],
                             {"role_flips": 2}),
    "repetition_switched_off": ([*exchange(2), turn("user", INSTRUCTIONS[1])], {"stop_on_repetition": False}),
}


@pytest.mark.parametrize("case", FIRING.keys())
def test_each_rule_fires_on_the_message_that_breaks_it(case: str) -> None:
    """Every stop rule has its own reason, and fires on the breaking message, never on an earlier one."""
    turns, rules, expected = FIRING[case]
    options = RoleplayOptions(**rules)
    assert stop_reason(turns, options, tokens=0) == expected
    for end in range(len(turns)):
        assert stop_reason(turns[:end], options, tokens=0) is None, f"fired early, after {end} messages"


@pytest.mark.parametrize("case", QUIET.keys())
def test_no_rule_fires_on_a_transcript_that_breaks_none(case: str) -> None:
    """A normal exchange, and near misses of each rule, must not stop a session."""
    turns, rules = QUIET[case]
    options = RoleplayOptions(**rules)
    for end in range(len(turns) + 1):
        assert stop_reason(turns[:end], options, tokens=0) is None, f"fired after {end} messages"


def test_token_limit_fires_at_the_budget_and_not_below() -> None:
    """The token budget stops a session that is otherwise fine, exactly at the limit."""
    options = RoleplayOptions(max_tokens=1000)
    assert stop_reason(exchange(1), options, tokens=999) is None
    assert stop_reason(exchange(1), options, tokens=1000) == "token_limit"
    assert stop_reason([], options, tokens=5000) is None


def test_rules_are_checked_in_a_fixed_order() -> None:
    """When one message breaks several rules, the logged reason is the first in the documented order."""
    done_and_more = [*exchange(2), turn("user", f"Thanks! {DONE}")]
    assert stop_reason(done_and_more, RoleplayOptions(max_messages=5, max_tokens=100), tokens=10_000) == "task_done"
    flip_and_last = [turn("user", INSTRUCTIONS[0]), turn("assistant", "Instruction: pick a broker")]
    assert stop_reason(flip_and_last, RoleplayOptions(max_messages=2), tokens=0) == "role_flip"
    last_and_over = exchange(2)
    assert stop_reason(last_and_over, RoleplayOptions(max_messages=4, max_tokens=100), tokens=500) == "max_messages"


@pytest.mark.parametrize(("text", "expected"), [
    ("Instruction: Write the intro.\nInput: None", "Write the intro."),
    ("**Instruction:** do X", "do X"),
    ("instruction - do X", "do X"),
    ("  - Instruction: do X\nInput: the data", "do X"),
    ("Sure.\n### Instruction: do X", "do X"),
    ("Instruction: None", ""),
    ("Instruction: None.\nInput: None", ""),
    ("**Instruction:** N/A", ""),
    ("Instructions are in the README.", ""),
    ("No label here, just do X.", ""),
])
def test_instruction_labels_are_read_tolerantly(text: str, expected: str) -> None:
    """Small models vary the label's markup; `None` means no instruction at all."""
    assert instruction_of(text) == expected


def test_solutions_and_courtesy_are_recognised() -> None:
    """The summary reads answers without their labels; courtesy is short and gives no instruction."""
    assert solution_of("Solution: Use pandas. Next request.") == "Use pandas."
    assert solution_of("**Solution:** 42\nNext request.") == "42"
    assert is_courtesy("Thanks!") and is_courtesy("You're welcome! Next request.") and is_courtesy("Goodbye.")
    assert not is_courtesy(LONG_THANKS)
    assert not is_courtesy("Instruction: say thanks to the team\nInput: None")
    assert not is_courtesy("Solution: Use pandas. Next request.")


# ====================================================================================================================
# 2. Whole sessions end with each reason
# ====================================================================================================================

SESSION_ENDINGS: dict[str, tuple[dict[str, Script], dict[str, Any], int]] = {
    "task_done": ({"user": [INSTRUCTIONS[0], DONE], "assistant": [SOLUTIONS[0]]}, {}, 3),
    "role_flip": ({"user": [INSTRUCTIONS[0]], "assistant": ["Instruction: Tell me your budget first.\nInput: None"]},
                  {}, 2),
    "no_instruction": ({"user": QUESTIONS, "assistant": SOLUTIONS[:2]}, {}, 5),
    "courtesy_loop": ({"user": [INSTRUCTIONS[0], "Thanks a lot!", "Thank you, goodbye!"],
                       "assistant": [SOLUTIONS[0], "You're welcome! Next request.", "Goodbye, take care. Next request."]},
                      {}, 6),
    "repetition": ({"user": [INSTRUCTIONS[0], INSTRUCTIONS[1], INSTRUCTIONS[0]], "assistant": SOLUTIONS[:2]}, {}, 5),
    "max_messages": ({"user": INSTRUCTIONS[:3], "assistant": SOLUTIONS[:3]}, {"max_messages": 6}, 6),
    "token_limit": ({"user": INSTRUCTIONS[:2], "assistant": SOLUTIONS[:1]}, {"max_tokens": 100}, 3),
}


@pytest.mark.parametrize("reason", SESSION_ENDINGS.keys())
async def test_a_session_ends_with_each_reason_once(reason: str) -> None:
    """A session stops on the message that breaks a rule and logs exactly one end, with the right count."""
    scripts, options, messages = SESSION_ENDINGS[reason]
    backend = ScriptedRoleplay(tokens=(30, 10), **scripts)
    session, records, gateway = await play(make_setup(**options), backend, turns=50)
    ended = of_kind(records, "session_ended")
    assert [(e.reason, e.messages) for e in ended] == [(reason, messages)]
    assert ended[0].tokens == session.progress.tokens == 40 * messages
    assert session.finished and session.progress.reason == reason and len(session.progress.turns) == messages
    assert [m.index for m in of_kind(records, "session_message")] == list(range(messages))
    assert backend.left() == {"user": 0, "assistant": 0}, "the session asked for more turns than it used"
    # A finished session stays finished: no more calls, no second end record.
    await session.advance(gateway, CallScope(seed=11, sink=records.append), 5)
    session.end("interrupted", CallScope(sink=records.append))
    assert len(of_kind(records, "session_ended")) == 1 and len(backend.seen) == messages


@pytest.mark.parametrize("error", [TransientModelError("server hiccup"), RuntimeError("connection reset"),
                                   TimeoutError("read timed out")], ids=lambda e: type(e).__name__)
async def test_a_model_that_keeps_failing_ends_the_session_as_model_failure(error: Exception) -> None:
    """Retryable failures are retried; once attempts run out the session ends cleanly with model_failure."""
    backend = ScriptedRoleplay(user=[INSTRUCTIONS[0]], assistant=[error] * 4)
    session, records, gateway = await play(make_setup(), backend, gateway=fast_gateway(backend, max_attempts=4))
    ended = of_kind(records, "session_ended")
    assert [(e.reason, e.messages) for e in ended] == [("model_failure", 1)]
    assert "4 attempts failed" in ended[0].detail and type(error).__name__ in ended[0].detail
    assert len(of_kind(records, "model_retry")) == 3 == gateway.counters.retries
    assert session.finished and backend.left() == {"user": 0, "assistant": 0}


@pytest.mark.parametrize("error", [
    ValueError("Requested tokens (4200) exceed context window of 4096"),  # llama-cpp-python's words
    RuntimeError("Error code: 400 - {'error': {'code': 'context_length_exceeded'}}"),  # OpenAI's
], ids=["llamacpp", "openai"])
async def test_a_prompt_longer_than_the_context_ends_the_session_as_context_limit(error: Exception) -> None:
    """An overflowing prompt is not retried (the same prompt cannot fit next time) and has its own reason."""
    backend = ScriptedRoleplay(user=[INSTRUCTIONS[0]], assistant=[error])
    session, records, gateway = await play(make_setup(), backend, gateway=fast_gateway(backend, max_attempts=4))
    ended = of_kind(records, "session_ended")
    assert [(e.reason, e.messages) for e in ended] == [("context_limit", 1)]
    assert "context" in ended[0].detail and of_kind(records, "model_retry") == []
    assert gateway.counters.retries == 0 and len(backend.requests("assistant")) == 1


async def test_the_fake_refuses_prompts_past_its_context_like_llamacpp() -> None:
    """`fake?context=N` stands in for a small context window: short prompts pass, a long one ends the session."""
    from agents.gateway import build_backend

    setup = make_setup(max_messages=40, window=1000, no_instruction_turns=1000, role_flips=1000,
                       stop_on_repetition=False)
    session, records, _ = await play(setup, build_backend("fake?context=700&words=40"), turns=40)
    ended = of_kind(records, "session_ended")
    assert [e.reason for e in ended] == ["context_limit"]
    assert 2 <= ended[0].messages < 40, "the first prompts fit; only a grown transcript overflows"


async def test_a_failing_planner_ends_the_session_before_any_message() -> None:
    """The planner has no fallback: when it cannot answer, the session ends with model_failure and no messages."""
    backend = ScriptedRoleplay(planner=[TransientModelError("down")] * 2)
    session, records, _ = await play(make_setup(plan_task=True), backend, gateway=fast_gateway(backend, max_attempts=2))
    assert [(e.reason, e.messages) for e in of_kind(records, "session_ended")] == [("model_failure", 0)]
    assert of_kind(records, "session_started") == [] and session.finished


async def test_a_permanent_error_is_not_retried_and_surfaces() -> None:
    """A permanent error (bad key, replay miss) keeps the gateway's contract: raised at once, never retried."""
    backend = ScriptedRoleplay(user=[INSTRUCTIONS[0]], assistant=[PermanentModelError("bad credentials")])
    with pytest.raises(PermanentModelError, match="bad credentials"):
        await play(make_setup(), backend)
    assert len(backend.requests("assistant")) == 1


async def test_a_message_that_writes_the_other_sides_lines_is_cut_back() -> None:
    """Small models carry on the transcript in the other voice; only the speaker's own part becomes its message."""
    echoing = INSTRUCTIONS[0] + "\nPython Programmer: Solution: Yahoo Finance has them. Next request."
    backend = ScriptedRoleplay(user=[echoing], assistant=[SOLUTIONS[0]])
    session, _, _ = await play(make_setup(max_messages=2), backend)
    assert [t.content for t in session.progress.turns] == [INSTRUCTIONS[0], SOLUTIONS[0]]



async def test_a_user_message_that_answers_its_own_instruction_is_cut_at_the_solution() -> None:
    """The user instructs; a `Solution:` it goes on to write is the assistant's job, so it is dropped."""
    solving = INSTRUCTIONS[0] + "\n**Solution:** I would use Yahoo Finance myself."
    backend = ScriptedRoleplay(user=[solving, "Solution: only an answer, no instruction."], assistant=SOLUTIONS[:2])
    session, _, _ = await play(make_setup(max_messages=3), backend)
    assert [t.content for t in session.progress.turns] == [
        INSTRUCTIONS[0], SOLUTIONS[0], "Solution: only an answer, no instruction."]
    # A done token in the cut-off part still ends the task.
    done_after = f"Instruction: Check the totals.\nInput: None\nSolution: They add up. {DONE}"
    backend = ScriptedRoleplay(user=[done_after])
    session, _, _ = await play(make_setup(max_messages=3), backend)
    assert session.progress.reason == "task_done"
    assert session.progress.turns[0].content == f"Instruction: Check the totals.\nInput: None\n{DONE}"

# ====================================================================================================================
# 3. The critic
# ====================================================================================================================

CRITIC = CriticSetup(candidates=3, judges="assistant")


def drafting_assistant(request: ModelRequest) -> str:
    """Candidates for one prompt differ by their seeds; answers to different prompts differ too."""
    return f"Solution: {phrase(fingerprint(request), request.seed)}. Next request."


async def test_the_critics_choice_becomes_the_message() -> None:
    """A verdict of candidate 2 makes the second draft the message, logged as chosen=1 without fallback."""
    backend = ScriptedRoleplay(user=INSTRUCTIONS[:2], assistant=drafting_assistant,
                               critic=['{"choice": 2, "reason": "the most specific answer"}'] * 2)
    session, records, gateway = await play(make_setup(critic=CRITIC, max_messages=4), backend)
    choices = of_kind(records, "critic_choice")
    messages = of_kind(records, "session_message")
    assert [(c.index, c.role, c.chosen, c.fallback) for c in choices] == [(1, "assistant", 1, False),
                                                                        (3, "assistant", 1, False)]
    for choice in choices:
        assert len(set(choice.candidates)) == 3 and choice.reason == "the most specific answer"
        assert messages[choice.index].content == choice.candidates[1]
    drafts = [r.response for r in of_kind(records, "model_call") if r.purpose == "assistant_turn"]
    assert drafts == [text for c in choices for text in c.candidates], "records keep the candidates' order"
    judged = backend.requests("critic")[0]
    assert "Candidate 2:\n" + choices[0].candidates[1] in prompt_text(judged)
    assert INSTRUCTIONS[0] in prompt_text(judged), "the critic reads the latest exchange"
    assert judged.json_schema is not None and judged.json_schema["title"] == "CriticVerdict3"
    assert gateway.counters.fallbacks == 0 and gateway.counters.retries == 0
    assert session.progress.reason == "max_messages"


@pytest.mark.parametrize("garbage", ["I like the second one best.", '{"choice": 7, "reason": "out of range"}'])
async def test_an_unusable_critic_is_retried_then_a_seeded_pick_stands_in(garbage: str) -> None:
    """Garbage verdicts are re-asked, then a seeded fallback picks the candidate, the same one for the same seed."""

    async def run(seed: int) -> tuple[list[Any], list[BaseModel], ModelGateway]:
        backend = ScriptedRoleplay(user=INSTRUCTIONS[:2], assistant=drafting_assistant, critic=lambda _: garbage)
        _, records, gateway = await play(make_setup(critic=CRITIC, max_messages=4, seed=seed), backend)
        assert len(backend.requests("critic")) == 2 * gateway.max_parse_attempts
        return of_kind(records, "critic_choice"), records, gateway

    choices, records, gateway = await run(seed=5)
    assert [c.fallback for c in choices] == [True, True]
    assert all(c.reason.startswith("fallback") for c in choices)
    retries = of_kind(records, "model_retry")
    assert {(r.purpose, r.reason) for r in retries} == {("critic", "invalid_output")}
    assert len(retries) == gateway.counters.retries == 2 * (gateway.max_parse_attempts - 1)
    assert len(of_kind(records, "model_fallback")) == gateway.counters.fallbacks == 2
    messages = of_kind(records, "session_message")
    assert all(messages[c.index].content == c.candidates[c.chosen] for c in choices)

    again, _, _ = await run(seed=5)
    assert [(c.chosen, c.candidates) for c in again] == [(c.chosen, c.candidates) for c in choices]
    picks = set()
    for seed in range(8):
        picks.update(c.chosen for c in (await run(seed=seed))[0])
    assert len(picks) > 1, "the fallback is drawn from the seed, not fixed"


# ====================================================================================================================
# 4. Specifier and planner
# ====================================================================================================================

SPECIFIED = "Task: Write a momentum bot for Lisbon's PSI index that trades twice a day and reports to Ana by email."
SUBTASKS = ["Pick the PSI data feed", "Code the momentum signal", "Send the daily email report"]


async def test_the_specified_task_and_subtasks_reach_every_turn() -> None:
    """Both sides work on the concrete task and its planned steps; the start record says what they were."""
    backend = ScriptedRoleplay(specifier=[SPECIFIED], planner=[json.dumps({"subtasks": SUBTASKS})],
                               user=INSTRUCTIONS[:2], assistant=SOLUTIONS[:2])
    session, records, _ = await play(make_setup(specify_task=True, specify_words=11, plan_task=True, max_messages=4),
                                     backend)
    specified = "Write a momentum bot for Lisbon's PSI index that trades twice"
    assert session.progress.specified_task == specified and len(specified.split()) == 11
    [started] = of_kind(records, "session_started")
    assert (started.task, started.specified_task, started.subtasks) == (make_setup().task, specified, SUBTASKS)

    [specifying] = backend.requests("specifier")
    assert make_setup().task in prompt_text(specifying) and "at most 11 words" in prompt_text(specifying)
    [planning] = backend.requests("planner")
    assert specified in prompt_text(planning) and planning.json_schema["title"] == "SubtaskPlan"
    turns = backend.requests("user") + backend.requests("assistant")
    assert len(turns) == 4
    for request in turns:
        system = system_of(request)
        assert specified in system and "to Ana" not in system, "the specified task, cut to its word limit"
        assert make_setup().task not in system
        for i, subtask in enumerate(SUBTASKS, 1):
            assert f"{i}. {subtask}" in system


async def test_an_empty_specification_keeps_the_original_task() -> None:
    """A specifier that says nothing useful must not leave the session without a task."""
    backend = ScriptedRoleplay(specifier=["Specified task:   "], user=INSTRUCTIONS[:1], assistant=SOLUTIONS[:1])
    session, _, _ = await play(make_setup(specify_task=True, max_messages=2), backend)
    assert session.progress.specified_task == make_setup().task
    assert make_setup().task in system_of(backend.requests("user")[0])


@pytest.mark.parametrize("answer", [
    "Roles: Accountant will help Actor.\nVague task: Research the industry\nRewritten task: Compare 3 rival studios' prices",
    "**Specified task**: Compare 3 rival studios' prices",
    "Compare 3 rival studios' prices",
])
async def test_labels_the_specifier_copies_back_are_dropped(answer: str) -> None:
    """Small models repeat the prompt's labels; only the rewritten task itself is kept."""
    backend = ScriptedRoleplay(specifier=[answer], user=INSTRUCTIONS[:1], assistant=SOLUTIONS[:1])
    session, _, _ = await play(make_setup(specify_task=True, max_messages=2), backend)
    assert session.progress.specified_task == "Compare 3 rival studios' prices"


# ====================================================================================================================
# 5. World agents and free roles
# ====================================================================================================================

async def test_a_world_agents_persona_and_memories_shape_its_side_only() -> None:
    """An agent's persona and recollections go into its own system prompt, and it speaks under its name."""
    baker = RoleCard(role="Baker", agent="Ann Lee", persona="Ann bakes sourdough bread in Lisbon.",
                     memories=["Ann's oven broke last week.", "Bob owes Ann twenty euros."])
    backend = ScriptedRoleplay(user=INSTRUCTIONS[:2], assistant=SOLUTIONS[:2])
    _, records, _ = await play(make_setup(assistant=baker, user=RoleCard(role="Customer"), max_messages=4), backend)
    for request in backend.requests("assistant"):
        system = system_of(request)
        assert "Ann Lee" in system and "Baker" in system and baker.persona in system
        assert "- My oven broke last week.\n- Bob owes me twenty euros." in system  # in Ann's own words
    for request in backend.requests("user"):
        system = system_of(request)
        assert "Customer" in system and "Ann Lee" in system, "the user knows who works for them"
        assert baker.persona not in system and "oven" not in system and "twenty euros" not in system
    [started] = of_kind(records, "session_started")
    assert (started.assistant_agent, started.user_agent) == ("Ann Lee", None)
    speakers = [(m.role, m.speaker) for m in of_kind(records, "session_message")]
    assert speakers == [("user", "Customer"), ("assistant", "Ann Lee")] * 2


async def test_free_roles_speak_under_their_role_names() -> None:
    """With nobody in particular playing a role, the role name is the speaker and the prompt's identity."""
    backend = ScriptedRoleplay(user=INSTRUCTIONS[:2], assistant=SOLUTIONS[:2])
    session, records, _ = await play(make_setup(max_messages=4), backend)
    assert [t.speaker for t in session.progress.turns] == ["Stock Trader", "Python Programmer"] * 2
    assert "Stock Trader" in system_of(backend.requests("user")[0])
    assert "Python Programmer" in system_of(backend.requests("assistant")[0])
    [started] = of_kind(records, "session_started")
    assert (started.assistant_agent, started.user_agent) == (None, None)


async def test_a_critic_played_by_a_world_agent_judges_in_character() -> None:
    """A critic agent's name and persona frame its judging prompt."""
    critic = CriticSetup(agent="Cy Moss", persona="Cy is a strict editor.", candidates=2)
    backend = ScriptedRoleplay(user=INSTRUCTIONS[:1], assistant=drafting_assistant,
                               critic=['{"choice": 1, "reason": "clearer"}'])
    await play(make_setup(critic=critic, max_messages=2), backend)
    [judged] = backend.requests("critic")
    assert system_of(judged).startswith("You are Cy Moss, judging turns")
    assert "Cy is a strict editor." in system_of(judged) and judged.json_schema["title"] == "CriticVerdict2"


# ====================================================================================================================
# 6. Prompts stay bounded
# ====================================================================================================================

async def test_prompts_stay_bounded_in_a_long_session() -> None:
    """Thirty messages in, each side's prompt is about as long as early on; older steps live in a summary."""
    window = 4
    backend = ScriptedRoleplay(user=camel_user, assistant=camel_assistant)
    session, _, _ = await play(make_setup(max_messages=30, window=window), backend)
    assert session.progress.reason == "max_messages" and len(session.progress.turns) == 30
    contents = [t.content for t in session.progress.turns]
    for part, first_index in (("user", 6), ("assistant", 7)):
        requests = backend.requests(part)
        assert len(requests) == 15
        assert max(len(request.messages) for request in requests) <= window + 2
        sizes = [len(prompt_text(request)) for request in requests]
        sixth = sizes[first_index // 2]  # the side's prompt at message index 6 (user) or 7 (assistant)
        assert sizes[-1] < 2 * sixth, (part, sizes)
        assert max(sizes[-5:]) < 1.2 * min(sizes[-5:]), f"{part} prompts keep growing: {sizes}"
        last, index = prompt_text(requests[-1]), 2 * (len(requests) - 1) + (part == "assistant")
        assert contents[index - 1] in last, "the latest message to answer is shown word for word"
        assert not any(content in last for content in contents[:-2 * window]), "old messages only in brief"
        assert "Do step 3:" not in last and "Do step 12:" in last, "the brief keeps recent steps only"

    last_assistant = prompt_text(backend.requests("assistant")[-1])
    assert "Steps already done" in last_assistant and "earlier steps done" in last_assistant
    assert all(content in last_assistant for content in contents[-window:-1]), "the window is shown word for word"


# ====================================================================================================================
# 7. Snapshots
# ====================================================================================================================

def snapshot_setup() -> RoleplaySetup:
    return make_setup(specify_task=True, plan_task=True, max_messages=12, window=4)


def snapshot_backend() -> ScriptedRoleplay:
    """A model whose every answer depends on the request alone, so a fresh copy answers a resumed session alike."""
    return ScriptedRoleplay(tokens=None, user=camel_user, assistant=camel_assistant, specifier=lambda _: SPECIFIED,
                            planner=lambda _: json.dumps({"subtasks": SUBTASKS}))


@pytest.mark.parametrize("split", [0, 5])
async def test_a_restored_session_carries_on_as_if_never_stopped(split: int) -> None:
    """A snapshot (through JSON) restored in a fresh process continues to the same transcript and records."""
    whole, whole_records, _ = await play(snapshot_setup(), snapshot_backend(), turns=100)
    assert whole.progress.reason == "max_messages"

    first_backend = snapshot_backend()
    first, first_records, _ = await play(snapshot_setup(), first_backend, turns=split)
    assert len(first.progress.turns) == split and not first.finished
    state = json.loads(json.dumps(first.get_state()))
    second_backend = snapshot_backend()
    restored = RoleplaySession.from_state(state)
    _, second_records, _ = await play(restored.setup, second_backend, turns=100, session=restored)

    assert restored.progress == whole.progress
    assert session_records(first_records + second_records) == session_records(whole_records)
    assert {part for part, _ in second_backend.seen} == {"user", "assistant"}, "the task is not settled twice"

    # Against the session advanced in one stretch, even the requests' seeds agree: seeds follow the step.
    single_backend = snapshot_backend()
    await play(snapshot_setup(), single_backend, turns=100)
    assert [r for _, r in first_backend.seen + second_backend.seen] == [r for _, r in single_backend.seen]
