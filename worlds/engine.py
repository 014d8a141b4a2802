"""The tick loop: agents move, meet and talk; independent conversations think concurrently."""

from __future__ import annotations

import asyncio
import hashlib
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from agents.conversation import Setting, next_line
from agents.gateway import ModelGateway, ModelUnavailableError, call_scope
from agents.gateway.records import GatewayRecord
from agents.persona import Persona
from worlds.eventlog import EventWriter
from worlds.events import (
    ConversationEnded,
    ConversationStarted,
    Error,
    EventBase,
    Moved,
    RunEnded,
    TickCompleted,
    Utterance,
    from_gateway_record,
)
from worlds.places import World
from worlds.scenario import Scenario

NIGHT_HOURS = set(range(22, 24)) | set(range(0, 7))


def stable_int(*parts: object) -> int:
    """A seed from any parts, equal across processes (unlike hash())."""
    return int.from_bytes(hashlib.sha256("|".join(map(str, parts)).encode()).digest()[:8], "big")


@dataclass
class Conversation:
    """A conversation in progress between agents at one place."""

    id: str
    place: str
    participants: list[str]
    history: list[tuple[str, str]] = field(default_factory=list)


class Engine:
    """Advances a scenario tick by tick, writing every event to the log in a fixed order."""

    def __init__(self, scenario: Scenario, gateway: ModelGateway, writer: EventWriter) -> None:
        self.scenario = scenario
        self.gateway = gateway
        self.writer = writer
        self.world = World(scenario)
        self.clock = scenario.clock
        self.personas: dict[str, Persona] = {a.name: a for a in scenario.agents}
        self.positions: dict[str, str] = {a.name: a.home for a in scenario.agents}
        self.active: dict[str, Conversation] = {}
        self.last_talk: dict[frozenset[str], datetime] = {}
        self.stop_requested = False

    def request_stop(self) -> None:
        """Ask the loop to stop at the next tick boundary (Ctrl-C)."""
        self.stop_requested = True

    async def run(
        self, until: datetime, on_tick: Callable[[int, datetime, list[EventBase]], None] | None = None
    ) -> RunEnded:
        """Run ticks up to `until`; the returned RunEnded is already in the log."""
        total = self.clock.ticks_until(until)
        tick = 0
        status = "completed"
        try:
            for tick in range(total):
                if self.stop_requested:
                    status = "interrupted"
                    break
                now = self.clock.time_of(tick)
                events = await self.step(tick, now)
                events.append(TickCompleted(tick=tick, sim_time=now, positions=dict(self.positions)))
                self.writer.write(events)
                self.writer.sync()
                if on_tick is not None:
                    on_tick(tick, now, events)
            else:
                tick = total
        except Exception as exc:
            self._finish(tick, "failed", f"{type(exc).__name__}: {exc}")
            raise
        return self._finish(tick, status, "")

    def _finish(self, ticks: int, status: str, detail: str) -> RunEnded:
        now = self.clock.time_of(ticks)
        events: list[EventBase] = []
        for conv in sorted(self.active.values(), key=lambda c: c.id):
            events.append(self._end(conv, ticks, now, "run_ended"))
        ended = RunEnded(tick=ticks, sim_time=now, status=status, ticks=ticks, detail=detail)
        self.writer.write([*events, ended])
        self.writer.sync()
        return ended

    async def step(self, tick: int, now: datetime) -> list[EventBase]:
        """One tick: moves, new conversations, then every conversation advances at once."""
        events: list[EventBase] = self._move(tick, now)
        events += self._meet(tick, now)
        batches = await asyncio.gather(
            *(self._advance(conv, tick, now) for conv in sorted(self.active.values(), key=lambda c: c.id))
        )
        for batch in batches:
            events += batch
        return events

    def _busy(self) -> set[str]:
        return {name for conv in self.active.values() for name in conv.participants}

    def _move(self, tick: int, now: datetime) -> list[EventBase]:
        busy = self._busy()
        moves: list[EventBase] = []
        options = self.world.public_places()
        for name in sorted(self.personas):
            if name in busy:
                continue
            here, home = self.positions[name], self.world.homes[name]
            rng = random.Random(stable_int(self.scenario.seed, "move", tick, name))
            if now.hour in NIGHT_HOURS:
                there = home
            elif rng.random() < self.scenario.conversation.move_chance:
                there = rng.choice([*options, home])
            else:
                there = here
            if there != here:
                self.positions[name] = there
                moves.append(Moved(tick=tick, sim_time=now, agents=[name], origin=here, destination=there))
        return moves

    def _meet(self, tick: int, now: datetime) -> list[EventBase]:
        busy = self._busy()
        cooldown = self.scenario.conversation.cooldown
        started: list[EventBase] = []
        by_place: dict[str, list[str]] = {}
        for name in sorted(self.personas):
            if name not in busy:
                by_place.setdefault(self.positions[name], []).append(name)
        for place in sorted(by_place):
            free = by_place[place]
            random.Random(stable_int(self.scenario.seed, "meet", tick, place)).shuffle(free)
            while len(free) >= 2:
                a = free.pop()
                partner = next(
                    (b for b in free if now - self.last_talk.get(frozenset((a, b)), datetime.min) >= cooldown), None
                )
                if partner is None:
                    continue
                free.remove(partner)
                conv = Conversation(id=f"c{tick:05d}-{len(started)}", place=place, participants=[a, partner])
                self.active[conv.id] = conv
                started.append(
                    ConversationStarted(
                        tick=tick, sim_time=now, agents=list(conv.participants), conversation_id=conv.id, place=place
                    )
                )
        return started

    def _setting(self, conv: Conversation, speaker: str, now: datetime) -> Setting:
        listeners = [p for p in conv.participants if p != speaker]
        relationships = {p: label for p in listeners if (label := self.world.relationship(speaker, p))}
        return Setting(
            place=conv.place, area=self.world.area_of(conv.place), objects=self.world.objects_at(conv.place),
            time=now, listeners=listeners, relationships=relationships,
        )

    async def _advance(self, conv: Conversation, tick: int, now: datetime) -> list[EventBase]:
        """Say this tick's lines of one conversation; its events are buffered so log order is fixed."""
        events: list[EventBase] = []

        def sink(record: GatewayRecord) -> None:
            events.append(from_gateway_record(record, tick, now))

        limits = self.scenario.conversation
        for _ in range(limits.lines_per_tick):
            speaker = conv.participants[len(conv.history) % len(conv.participants)]
            seed = stable_int(self.scenario.seed, conv.id, len(conv.history))
            with call_scope(agent=speaker, seed=seed, sink=sink):
                try:
                    said = await next_line(self.gateway, self.personas[speaker], self._setting(conv, speaker, now), conv.history)
                except ModelUnavailableError as exc:
                    events.append(Error(tick=tick, sim_time=now, agents=[speaker], message="no line from the model", detail=str(exc)))
                    events.append(self._end(conv, tick, now, "model_unavailable"))
                    return events
            conv.history.append((speaker, said.line))
            events.append(
                Utterance(
                    tick=tick, sim_time=now, agents=list(conv.participants), conversation_id=conv.id,
                    speaker=speaker, place=conv.place, text=said.line,
                )
            )
            if said.end_conversation and len(conv.history) >= limits.min_lines:
                events.append(self._end(conv, tick, now, "farewell"))
                break
            if len(conv.history) >= limits.max_lines:
                events.append(self._end(conv, tick, now, "max_lines"))
                break
        return events

    def _end(self, conv: Conversation, tick: int, now: datetime, reason: str) -> ConversationEnded:
        del self.active[conv.id]
        self.last_talk[frozenset(conv.participants)] = now
        return ConversationEnded(
            tick=tick, sim_time=now, agents=list(conv.participants), conversation_id=conv.id,
            place=conv.place, reason=reason, lines=len(conv.history),
        )
