"""Counts over one run's log: events, conversations, calls, tokens and every kind of failure."""

from __future__ import annotations

from collections import Counter, defaultdict

from pydantic import BaseModel, Field

from worlds.eventlog import EventReader


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
    tokens: Tokens = Field(default_factory=Tokens)
    failures: Failures = Field(default_factory=Failures)


class PurposeStats(BaseModel):
    calls: int = 0
    cached: int = 0
    tokens: int = 0
    latency_s: float = 0.0


class RunStats(BaseModel):
    """The `simulacra stats` report; `--json` prints exactly this."""

    run: str = ""
    scenario: str = ""
    model: str = ""
    status: str = "running or crashed"
    ticks: int = 0
    events: dict[str, int] = Field(default_factory=dict)
    conversations: int = 0
    utterances: int = 0
    memories: int = 0
    reflections: int = 0
    retrievals: int = 0
    model_calls: int = 0
    cache_hits: int = 0
    tokens: Tokens = Field(default_factory=Tokens)
    failures: Failures = Field(default_factory=Failures)
    purposes: dict[str, PurposeStats] = Field(default_factory=dict)
    agents: dict[str, AgentStats] = Field(default_factory=dict)


_FAILURE_FIELD = {
    "model_retry": "retries", "model_repair": "repairs", "model_fallback": "fallbacks",
    "error": "errors", "warning": "warnings",
}


_MEMORY_FIELD = {"memory_added": "memories", "reflection": "reflections", "memory_retrieved": "retrievals"}


def _bump(targets: list[BaseModel], field: str) -> None:
    """Count one more `field` on the run total and on each agent the event concerns."""
    for target in targets:
        setattr(target, field, getattr(target, field) + 1)


def _add_tokens(target: Tokens, prompt: int, completion: int) -> None:
    target.prompt += prompt
    target.completion += completion
    target.total += prompt + completion


def compute_stats(reader: EventReader) -> RunStats:
    """One streaming pass over the log."""
    stats = RunStats()
    kinds: Counter[str] = Counter()
    agents: defaultdict[str, AgentStats] = defaultdict(AgentStats)
    purposes: defaultdict[str, PurposeStats] = defaultdict(PurposeStats)
    for record in reader.raw():
        kind = record["kind"]
        kinds[kind] += 1
        if kind == "run_started":
            stats.run, stats.scenario, stats.model = record["run_id"], record["scenario"], record["model"]
        elif kind == "run_ended":
            stats.status = record["status"]
        elif kind == "tick":
            stats.ticks = record["tick"] + 1
        elif kind == "conversation_started":
            stats.conversations += 1
            for name in record["agents"]:
                agents[name].conversations += 1
        elif kind == "utterance":
            stats.utterances += 1
            agents[record["speaker"]].utterances += 1
        elif field := _MEMORY_FIELD.get(kind):
            _bump([stats, *(agents[name] for name in record["agents"])], field)
        elif kind == "model_call":
            stats.model_calls += 1
            stats.cache_hits += record["cached"]
            _add_tokens(stats.tokens, record["prompt_tokens"], record["completion_tokens"])
            purpose = purposes[record["purpose"]]
            purpose.calls += 1
            purpose.cached += record["cached"]
            purpose.tokens += record["prompt_tokens"] + record["completion_tokens"]
            purpose.latency_s = round(purpose.latency_s + record["latency_s"], 4)
            if record["agent"]:
                agent = agents[record["agent"]]
                agent.model_calls += 1
                _add_tokens(agent.tokens, record["prompt_tokens"], record["completion_tokens"])
        if field := _FAILURE_FIELD.get(kind):
            _bump([stats.failures, *(agents[name].failures for name in record["agents"])], field)
    stats.events = dict(sorted(kinds.items()))
    stats.agents = dict(sorted(agents.items()))
    stats.purposes = dict(sorted(purposes.items()))
    return stats
