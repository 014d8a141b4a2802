"""Shared fixtures: a small town scenario that runs in a second on the fake model."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from pydantic import BaseModel, Field

from agents.gateway import (
    CallScope,
    ChatMessage,
    ModelCallRecord,
    ModelGateway,
    ModelReply,
    ModelRequest,
)
from agents.gateway.backends.base import Backend
from agents.gateway.records import GatewayRecord
from worlds.events import WALL_CLOCK_FIELDS

SMALL_TOWN = """\
name: small-town
seed: 3
clock: {start: 2023-02-13T08:00, step: 10m, stop: 2023-02-13T20:00}
models: {default: fake, embeddings: fake}
memory: {store: memory}
world:
  places:
    Town:
      Cafe: [counter]
      Park: [bench]
      Ann's flat: [bed]
      Bob's flat: [bed]
      Cy's flat: [bed]
agents:
  - {name: Ann, age: 30, traits: cheerful, persona: Ann bakes bread., home: Ann's flat,
     memories: [Ann is hosting a picnic on Sunday.]}
  - {name: Bob, age: 41, traits: quiet, persona: Bob fixes bicycles., home: Bob's flat}
  - {name: Cy, age: 25, traits: curious, persona: Cy writes poems., home: Cy's flat}
relationships:
  - {a: Ann, b: Bob, label: old friend}
conversation: {max_lines: 4, lines_per_tick: 2, cooldown: 1h}
"""


@pytest.fixture
def small_town(tmp_path: Path) -> Path:
    path = tmp_path / "small-town.yaml"
    path.write_text(SMALL_TOWN)
    return path


def comparable_log(events_path: Path, ignore: frozenset[str] = WALL_CLOCK_FIELDS) -> list[dict]:
    """A log's records without the fields that depend on the machine rather than the simulation."""
    records = []
    for line in events_path.read_text().splitlines():
        record = json.loads(line)
        records.append({k: v for k, v in record.items() if k not in ignore})
    return records


class Scripted(Backend):
    """Plays back a list of replies and exceptions, one per call."""

    def __init__(self, script: list[str | BaseException | float], max_in_flight: int = 4, timeout_s: float = 5.0):
        self.name = "scripted"
        self.script = list(script)
        self.calls: list[ModelRequest] = []
        self.max_in_flight = max_in_flight
        self.timeout_s = timeout_s

    async def generate(self, request: ModelRequest) -> ModelReply:
        self.calls.append(request)
        step = self.script.pop(0)
        if isinstance(step, BaseException):
            raise step
        if isinstance(step, float):
            await asyncio.sleep(step)
            return ModelReply(text="slow", prompt_tokens=1, completion_tokens=1)
        return ModelReply(text=step, prompt_tokens=3, completion_tokens=2)


class Verdict(BaseModel):
    """A small structured answer with a bounded number, for tests against real models."""

    score: int = Field(ge=1, le=10)
    label: str = Field(min_length=1, max_length=40)


def model_calls(records: list[GatewayRecord]) -> list[ModelCallRecord]:
    return [r for r in records if isinstance(r, ModelCallRecord)]


async def rate_strawberry(gateway: ModelGateway, agent: str) -> tuple[Verdict, list[GatewayRecord]]:
    """One small structured request, the same for every real backend under test."""
    records: list[GatewayRecord] = []
    question = "On a scale from 1 to 10, how tasty is a fresh strawberry? Give the score and a one-word label."
    verdict = await gateway.structured(
        [ChatMessage(role="user", content=question)], Verdict, purpose="rate", temperature=0.2, max_tokens=48,
        scope=CallScope(agent, 3, records.append),
    )
    return verdict, records


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """A skipped browser test is one `s` among many dots: repeat why, in yellow, where nobody can miss it."""
    skipped = [report for report in terminalreporter.stats.get("skipped", []) if "browser" in report.keywords]
    if skipped:
        reason = skipped[0].longrepr[2] if isinstance(skipped[0].longrepr, tuple) else str(skipped[0].longrepr)
        terminalreporter.write_sep("!", f"WARNING: {len(skipped)} browser tests skipped", yellow=True, bold=True)
        terminalreporter.write_line(reason, yellow=True)
