"""How each probe's fact spread: who knew it when asked, and where the log shows each agent first met it."""

from __future__ import annotations

import math
from bisect import bisect_right
from datetime import datetime, timedelta
from typing import Literal

from pydantic import BaseModel, computed_field

from worlds.events import Event, MemoryAddedEvent, ProbeAnswered, Utterance
from worlds.scenario import Probe

HOUR = timedelta(hours=1)

#: How an answer stands against the probe's `expect` words and the log.
Verdict = Literal["seeded", "heard", "source not in log", "did not know", "not checked"]


class Exposure(BaseModel):
    """The first time the log shows an agent with the fact: given at the start, or told by someone else."""

    source: Literal["seeded", "heard"]
    sim_time: datetime
    speaker: str | None = None
    conversation_id: str | None = None


class ProbeAnswerReport(BaseModel):
    """One agent's answer to a probe, whether it shows the fact, and how the agent came by it."""

    agent: str
    answer: str
    #: Whether the answer contains an `expect` word; None when the probe has none.
    knew: bool | None = None
    #: The agent's first exposure before it answered; None if the log shows none (or nothing is checked).
    exposure: Exposure | None = None

    @computed_field  # type: ignore[prop-decorator]
    @property
    def verdict(self) -> Verdict:
        if self.knew is None:
            return "not checked"
        if not self.knew:
            return "did not know"
        return self.exposure.source if self.exposure else "source not in log"


class SpreadPoint(BaseModel):
    """How many agents had met the fact (seeded or heard) by `at`."""

    at: datetime
    heard: int


class ProbeDiffusion(BaseModel):
    """One probe: its question, each answer, and hour by hour how far its fact had spread."""

    probe: int
    question: str
    expect: list[str]
    answers: list[ProbeAnswerReport]
    #: One point per simulated hour from the start; empty when the probe has no `expect` words.
    spread: list[SpreadPoint]


class _ProbeTrack:
    """What one probe needs from the stream: first exposures per agent, and the answers."""

    def __init__(self, number: int, probe: Probe) -> None:
        self.number = number
        self.probe = probe
        self.words = [word.lower() for word in probe.expect]
        self.first: dict[str, Exposure] = {}
        self.answers: list[ProbeAnswerReport] = []

    def mentions(self, lowered: str) -> bool:
        return any(word in lowered for word in self.words)

    def expose(self, agent: str, exposure: Exposure) -> None:
        self.first.setdefault(agent, exposure)

    def answer(self, event: ProbeAnswered) -> None:
        """Judge the answer against what the agent had met by now; later exposures do not explain it."""
        agent = event.agents[0]
        checked = bool(self.words)
        self.answers.append(ProbeAnswerReport(
            agent=agent, answer=event.answer,
            knew=self.mentions(event.answer.lower()) if checked else None,
            exposure=self.first.get(agent) if checked else None,
        ))

    def spread(self, start: datetime, end: datetime) -> list[SpreadPoint]:
        if not self.words:
            return []
        times = sorted(exposure.sim_time for exposure in self.first.values())
        moments = (start + hour * HOUR for hour in range(math.ceil((end - start) / HOUR) + 1))
        return [SpreadPoint(at=at, heard=bisect_right(times, at)) for at in moments]

    def report(self, start: datetime, end: datetime) -> ProbeDiffusion:
        return ProbeDiffusion(probe=self.number, question=self.probe.question, expect=self.probe.expect,
                              answers=self.answers, spread=self.spread(start, end))


class DiffusionTracker:
    """Follows every probe's fact through a log fed one event at a time; it keeps per agent, never per event."""

    def __init__(self, probes: list[Probe]) -> None:
        self._tracks = {number: _ProbeTrack(number, probe) for number, probe in enumerate(probes)}
        self._checked = [track for track in self._tracks.values() if track.words]

    def observe(self, event: Event) -> None:
        """Take the next event of the log; answers to probes the tracker was not given are passed over."""
        if isinstance(event, ProbeAnswered) and event.probe in self._tracks:
            self._tracks[event.probe].answer(event)
        elif isinstance(event, Utterance):
            self._heard(event)
        elif isinstance(event, MemoryAddedEvent) and self._is_seed(event):
            lowered = event.memory.text.lower()
            for track in self._checked:
                if track.mentions(lowered):
                    track.expose(event.agent, Exposure(source="seeded", sim_time=event.sim_time))

    def _is_seed(self, event: MemoryAddedEvent) -> bool:
        """A memory given from outside the simulation: an observation no event caused, which is the scenario's
        (in the run's first tick) or a fork's edit (at the fork's tick); every perception cites its event."""
        memory = event.memory
        return memory.kind == "observation" and memory.source_event is None

    def _heard(self, line: Utterance) -> None:
        """Every other participant hears a line; the speaker does not learn from its own words."""
        lowered = line.text.lower()
        listeners = [agent for agent in line.agents if agent != line.speaker]
        heard = Exposure(source="heard", sim_time=line.sim_time, speaker=line.speaker,
                         conversation_id=line.conversation_id)
        for track in self._checked:
            if track.mentions(lowered):
                for agent in listeners:
                    track.expose(agent, heard)

    def report(self, start: datetime, end: datetime) -> list[ProbeDiffusion]:
        """Every probe in scenario order; the spread runs hourly from `start` to the first hour at or past `end`."""
        return [track.report(start, end) for track in self._tracks.values()]
