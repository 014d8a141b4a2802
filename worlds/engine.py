"""The tick loop: agents move, meet, talk, remember and reflect; independent work runs concurrently."""

from __future__ import annotations

import asyncio
import contextvars
import hashlib
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime

from pydantic import BaseModel

from agents.conversation import Setting, next_line, repeats
from agents.gateway import ModelGateway, ModelUnavailableError, call_scope
from agents.persona import Persona
from agents.reflection import reflect
from memory.stores import MemoryStore
from memory.stream import MemoryStream
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
    Warning_,
    from_report,
)
from worlds.perception import perceive
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


@dataclass
class EventBuffer:
    """Events of one concurrent task; buffers are joined in a fixed order, so logs never depend on timing."""

    tick: int
    now: datetime
    events: list[EventBase] = field(default_factory=list)

    def report(self, record: BaseModel) -> None:
        self.events.append(from_report(record, self.tick, self.now))


_buffer: contextvars.ContextVar[EventBuffer] = contextvars.ContextVar("simulacra_event_buffer")


def report_to_current_buffer(record: BaseModel) -> None:
    """Sink for memory streams: their reports join whichever task is running."""
    _buffer.get().report(record)


class Engine:
    """Advances a scenario tick by tick, writing every event to the log in a fixed order."""

    def __init__(
        self,
        scenario: Scenario,
        gateway: ModelGateway,
        writer: EventWriter,
        memory_store: MemoryStore,
        streams: dict[str, MemoryStream],
    ) -> None:
        self.scenario = scenario
        self.gateway = gateway
        self.writer = writer
        self.memory_store = memory_store
        self.streams = streams
        self.world = World(scenario)
        self.clock = scenario.clock
        self.personas: dict[str, Persona] = {a.name: a for a in scenario.agents}
        self.positions: dict[str, str] = {a.name: a.home for a in scenario.agents}
        self.active: dict[str, Conversation] = {}
        self.ended: dict[str, list[tuple[str, str]]] = {}
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
            await self._seed_memories()
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
        self.memory_store.flush()
        return ended

    async def _each_agent(
        self, tick: int, now: datetime, purpose: str, work: Callable[[str, MemoryStream], Awaitable[None]]
    ) -> list[EventBase]:
        """Run `work` for every agent at once, each in its own buffer and call scope; join in name order."""

        async def one(name: str) -> list[EventBase]:
            buffer = EventBuffer(tick, now)
            _buffer.set(buffer)
            with call_scope(agent=name, seed=stable_int(self.scenario.seed, purpose, tick, name), sink=buffer.report):
                await work(name, self.streams[name])
            return buffer.events

        batches = await asyncio.gather(*(one(name) for name in sorted(self.streams)))
        return [event for batch in batches for event in batch]

    async def _seed_memories(self) -> None:
        """The scenario's starting memories become the first records of each stream (once per run folder)."""
        start = self.clock.start
        for persona in self.scenario.agents:
            stream = self.streams[persona.name]
            if not stream.records:
                for fact in persona.memories:
                    stream.remember("observation", fact, start)
        events = await self._each_agent(0, start, "seed", lambda _, stream: stream.commit())
        self.writer.write(events)
        self.writer.sync()
        self.memory_store.flush()

    async def step(self, tick: int, now: datetime) -> list[EventBase]:
        """One tick: moves, new conversations, talk (concurrent), then memories and reflection."""
        positions_before = dict(self.positions)
        events: list[EventBase] = self._move(tick, now)
        events += self._meet(tick, now)
        batches = await asyncio.gather(
            *(self._advance(conv, tick, now) for conv in sorted(self.active.values(), key=lambda c: c.id))
        )
        for batch in batches:
            events += batch
        self.writer.number(events)
        for seen in perceive(events, positions_before, self.ended):
            self.streams[seen.agent].remember(seen.kind, seen.text, now, source_event=seen.source_event)
        self.ended.clear()
        events += await self._each_agent(tick, now, "commit", lambda _, stream: stream.commit())
        events += await self._each_agent(tick, now, "reflect", self._reflect_if_due)
        self.memory_store.flush()
        return events

    async def _reflect_if_due(self, name: str, stream: MemoryStream) -> None:
        if stream.should_reflect() and await reflect(self.gateway, stream, _buffer.get().now) is None:
            buffer = _buffer.get()
            buffer.events.append(Warning_(tick=buffer.tick, sim_time=buffer.now, agents=[name],
                                          message="reflection skipped: the model gave no usable questions"))

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
            place=conv.place, time=now, listeners=listeners, relationships=relationships,
        )

    async def _recall(self, conv: Conversation, speaker: str, now: datetime) -> list[str]:
        """What the speaker remembers about the company and the last thing said."""
        others = ", ".join(p for p in conv.participants if p != speaker)
        cue = conv.history[-1][1] if conv.history else f"meeting them at {conv.place}"
        found = await self.streams[speaker].retrieve(f"{others}: {cue}", now, k=self.scenario.memory.retrieve_k)
        return [memory.text for memory in found]

    async def _advance(self, conv: Conversation, tick: int, now: datetime) -> list[EventBase]:
        """Say this tick's lines of one conversation; its events are buffered so log order is fixed."""
        buffer = EventBuffer(tick, now)
        _buffer.set(buffer)
        limits = self.scenario.conversation
        for _ in range(limits.lines_per_tick):
            speaker = conv.participants[len(conv.history) % len(conv.participants)]
            seed = stable_int(self.scenario.seed, conv.id, len(conv.history))
            with call_scope(agent=speaker, seed=seed, sink=buffer.report):
                try:
                    recollections = await self._recall(conv, speaker, now)
                    setting = self._setting(conv, speaker, now)
                    said = await next_line(self.gateway, self.personas[speaker], setting, conv.history, recollections)
                except ModelUnavailableError as exc:
                    buffer.events.append(
                        Error(tick=tick, sim_time=now, agents=[speaker], message="no line from the model", detail=str(exc))
                    )
                    buffer.events.append(self._end(conv, tick, now, "model_unavailable"))
                    return buffer.events
            if repeats(said.line, conv.history):
                buffer.events.append(self._end(conv, tick, now, "repetition"))
                break
            conv.history.append((speaker, said.line))
            buffer.events.append(
                Utterance(
                    tick=tick, sim_time=now, agents=list(conv.participants), conversation_id=conv.id,
                    speaker=speaker, place=conv.place, text=said.line,
                )
            )
            if said.end_conversation and len(conv.history) >= limits.min_lines:
                buffer.events.append(self._end(conv, tick, now, "farewell"))
                break
            if len(conv.history) >= limits.max_lines:
                buffer.events.append(self._end(conv, tick, now, "max_lines"))
                break
        return buffer.events

    def _end(self, conv: Conversation, tick: int, now: datetime, reason: str) -> ConversationEnded:
        del self.active[conv.id]
        self.ended[conv.id] = conv.history
        self.last_talk[frozenset(conv.participants)] = now
        return ConversationEnded(
            tick=tick, sim_time=now, agents=list(conv.participants), conversation_id=conv.id,
            place=conv.place, reason=reason, lines=len(conv.history),
        )
