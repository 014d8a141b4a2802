"""Counts over one run's log: events, conversations, sessions, calls, tokens, every failure, and how facts spread."""

from __future__ import annotations

from collections import Counter, defaultdict

from pydantic import BaseModel, Field, computed_field

from worlds.budget import BudgetSpec, SpendReport
from worlds.corpus.dialogues import dialogues
from worlds.corpus.quality import QualityReport, measure
from worlds.diffusion import HOUR, DiffusionTracker, ProbeDiffusion
from worlds.eventlog import EventReader, SkipHook
from worlds.events import (
    ConversationStarted,
    Error,
    ForkOrigin,
    MemoryAddedEvent,
    MemoryRetrievedEvent,
    ModelCall,
    ModelFallback,
    ModelRepair,
    ModelRetry,
    ReflectionEvent,
    RunEnded,
    RunStarted,
    SessionEnded,
    SessionMessage,
    SessionStarted,
    TickCompleted,
    Utterance,
    Warning_,
)
from worlds.runfolder import RunFolder
from worlds.scenario import Scenario, load_any


class Tokens(BaseModel):
    prompt: int = 0
    completion: int = 0
    total: int = 0


class Failures(BaseModel):
    """Every way a model call went less than perfectly, plus engine warnings and errors."""

    retries: int = 0
    repairs: int = 0
    fallbacks: int = 0
    errors: int = 0
    warnings: int = 0


class AgentStats(BaseModel):
    utterances: int = 0
    conversations: int = 0
    memories: int = 0
    reflections: int = 0
    retrievals: int = 0
    model_calls: int = 0
    #: Model calls per simulated hour of the closed ticks; None without a scenario or before a tick closed.
    calls_per_hour: float | None = None
    tokens: Tokens = Field(default_factory=Tokens)
    failures: Failures = Field(default_factory=Failures)


class PurposeStats(BaseModel):
    calls: int = 0
    cached: int = 0
    tokens: int = 0
    prompt_tokens: int = 0
    prompt_tokens_max: int = 0
    #: Prompt tokens the model did not evaluate: answered from the run's cache, or restored from a kept prefix.
    prompt_tokens_saved: int = 0
    latency_s: float = 0.0

    @computed_field  # type: ignore[prop-decorator]
    @property
    def prompt_tokens_mean(self) -> float:
        """Prompt size per call: what this purpose costs in context."""
        return round(self.prompt_tokens / self.calls, 1) if self.calls else 0.0

    @computed_field  # type: ignore[prop-decorator]
    @property
    def prompt_tokens_evaluated_mean(self) -> float:
        """Prompt tokens the model really evaluated per call: what this purpose costs in time."""
        return round((self.prompt_tokens - self.prompt_tokens_saved) / self.calls, 1) if self.calls else 0.0


class RunStats(BaseModel):
    """The `simulacra stats` report; `--json` prints exactly this."""

    run: str = ""
    scenario: str = ""
    model: str = ""
    status: str = "running or crashed"
    #: The run this one was forked from, where, and with which edits; None for a run that is not a fork.
    forked_from: ForkOrigin | None = None
    ticks: int = 0
    #: Simulated hours the closed ticks cover (ticks × clock step); None without a scenario.
    sim_hours: float | None = None
    #: Events after the last closed tick (a crash cut that tick short): left out of every count.
    incomplete_tail_events: int = 0
    events: dict[str, int] = Field(default_factory=dict)
    conversations: int = 0
    utterances: int = 0
    #: Sessions (role-plays and Self-* loops) that started, their messages, and how the ended ones stopped.
    sessions: int = 0
    #: Sessions by kind: roleplay, or the Self-* loop they ran.
    session_kinds: dict[str, int] = Field(default_factory=dict)
    session_messages: int = 0
    session_ends: dict[str, int] = Field(default_factory=dict)
    memories: int = 0
    reflections: int = 0
    retrievals: int = 0
    model_calls: int = 0
    cache_hits: int = 0
    tokens: Tokens = Field(default_factory=Tokens)
    failures: Failures = Field(default_factory=Failures)
    purposes: dict[str, PurposeStats] = Field(default_factory=dict)
    agents: dict[str, AgentStats] = Field(default_factory=dict)
    #: One entry per scenario probe, in scenario order; empty without a scenario.
    diffusion: list[ProbeDiffusion] = Field(default_factory=list)
    #: How good the ended conversations and role-play sessions are as training data.
    quality: QualityReport = Field(default_factory=QualityReport)
    #: What the run paid for, by agent and purpose, against its budget, and the cost at its prices.
    spend: SpendReport = Field(default_factory=SpendReport)


_FAILURE_FIELD = {
    ModelRetry: "retries", ModelRepair: "repairs", ModelFallback: "fallbacks", Error: "errors", Warning_: "warnings",
}
_MEMORY_FIELD = {MemoryAddedEvent: "memories", ReflectionEvent: "reflections", MemoryRetrievedEvent: "retrievals"}


def _bump(targets: list[BaseModel], field: str) -> None:
    """Count one more `field` on the run total and on each agent the event concerns."""
    for target in targets:
        setattr(target, field, getattr(target, field) + 1)


def _add_tokens(target: Tokens, prompt: int, completion: int) -> None:
    target.prompt += prompt
    target.completion += completion
    target.total += prompt + completion


def _count_call(
    call: ModelCall, stats: RunStats, purposes: defaultdict[str, PurposeStats], agents: defaultdict[str, AgentStats]
) -> None:
    stats.model_calls += 1
    stats.spend.add(call)
    stats.cache_hits += call.cached
    _add_tokens(stats.tokens, call.prompt_tokens, call.completion_tokens)
    purpose = purposes[call.purpose]
    purpose.calls += 1
    purpose.cached += call.cached
    purpose.tokens += call.prompt_tokens + call.completion_tokens
    purpose.prompt_tokens += call.prompt_tokens
    purpose.prompt_tokens_max = max(purpose.prompt_tokens_max, call.prompt_tokens)
    purpose.prompt_tokens_saved += call.prompt_tokens if call.cached else call.prompt_tokens_reused
    purpose.latency_s = round(purpose.latency_s + call.latency_s, 4)
    if call.agent:
        agent = agents[call.agent]
        agent.model_calls += 1
        _add_tokens(agent.tokens, call.prompt_tokens, call.completion_tokens)


def compute_stats(source: RunFolder | EventReader, on_skip: SkipHook | None = None) -> RunStats:
    """Streams the closed part of the log once; the events of a tick a crash cut short are counted, not read.

    A run folder gives every figure; a bare log has no scenario, so no rates per hour and no diffusion.
    `on_skip` hears of each line of a run folder's log that is not a record (a bare log's reader has its own).
    """
    spec = load_any(source.scenario_path) if isinstance(source, RunFolder) else None
    scenario = spec if isinstance(spec, Scenario) else None
    reader = source.reader(on_skip) if isinstance(source, RunFolder) else source
    tracker = DiffusionTracker(scenario.probes if scenario else [])
    extent = reader.extent()
    stats = RunStats(incomplete_tail_events=extent.total - extent.complete)
    kinds: Counter[str] = Counter()
    agents: defaultdict[str, AgentStats] = defaultdict(AgentStats)
    purposes: defaultdict[str, PurposeStats] = defaultdict(PurposeStats)
    ends: Counter[str] = Counter()
    for event in reader.events(complete_ticks_only=True):
        kinds[event.kind] += 1
        tracker.observe(event)
        if isinstance(event, RunStarted):
            stats.run, stats.scenario, stats.model = event.run_id, event.scenario, event.model
            stats.forked_from = event.fork
        elif isinstance(event, RunEnded):
            stats.status = event.status
            stats.spend.stopped = event.detail if event.status == "budget" else ""
        elif isinstance(event, TickCompleted):
            stats.ticks = event.tick + 1
        elif isinstance(event, ConversationStarted):
            stats.conversations += 1
            for name in event.agents:
                agents[name].conversations += 1
        elif isinstance(event, Utterance):
            stats.utterances += 1
            agents[event.speaker].utterances += 1
        elif isinstance(event, SessionStarted):
            stats.sessions += 1
            stats.session_kinds[event.loop] = stats.session_kinds.get(event.loop, 0) + 1
        elif isinstance(event, SessionMessage):
            stats.session_messages += 1
        elif isinstance(event, SessionEnded):
            ends[event.reason] += 1
        elif isinstance(event, ModelCall):
            _count_call(event, stats, purposes, agents)
        elif field := _MEMORY_FIELD.get(type(event)):
            _bump([stats, *(agents[name] for name in event.agents)], field)
        elif field := _FAILURE_FIELD.get(type(event)):
            _bump([stats.failures, *(agents[name].failures for name in event.agents)], field)
    stats.events = dict(sorted(kinds.items()))
    stats.session_ends = dict(sorted(ends.items()))
    stats.agents = dict(sorted(agents.items()))
    stats.purposes = dict(sorted(purposes.items()))
    stats.quality = measure(dialogues(reader))
    stats.spend.close(spec.budget if spec else BudgetSpec())
    if scenario:
        start, covered = scenario.clock.start, scenario.clock.step * stats.ticks
        stats.sim_hours = covered / HOUR
        stats.diffusion = tracker.report(start, start + covered)
        for agent in stats.agents.values():
            agent.calls_per_hour = round(agent.model_calls / stats.sim_hours, 2) if stats.sim_hours else None
    return stats
