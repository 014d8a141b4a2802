"""A run's conversations and sessions read back from its log, for the quality figures and for harvest."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

from pydantic import BaseModel

from worlds.corpus.quality import Dialogue, Line
from worlds.eventlog import EventReader
from worlds.events import (
    ConversationEnded,
    ConversationStarted,
    RunStarted,
    SessionEnded,
    SessionMessage,
    SessionStarted,
    Utterance,
)
from worlds.runfolder import RunFolder

_CONVERSATION_KINDS = {"run_started", "conversation_started", "utterance", "conversation_ended"}
_SESSION_KINDS = {"run_started", "session_started", "session_message", "session_ended"}


class HarvestedConversation(BaseModel):
    """A conversation as read back from the log; `sim_end` and `end_reason` stay unset if it never ended."""

    run: str
    scenario: str
    model: str
    conversation_id: str
    place: str
    participants: list[str]
    sim_start: datetime
    sim_end: datetime | None = None
    end_reason: str | None = None
    lines: list[tuple[str, str]]


def read_conversations(source: RunFolder | EventReader) -> Iterator[HarvestedConversation]:
    """Every conversation in the closed part of a run's log, in the order they ended; open ones (no end) last."""
    run = scenario = model = ""
    open_: dict[str, HarvestedConversation] = {}
    for event in _reader(source).events(_CONVERSATION_KINDS, complete_ticks_only=True):
        if isinstance(event, RunStarted):
            run, scenario, model = event.run_id, event.scenario, event.model
        elif isinstance(event, ConversationStarted):
            open_[event.conversation_id] = HarvestedConversation(
                run=run, scenario=scenario, model=model, conversation_id=event.conversation_id,
                place=event.place, participants=event.agents, sim_start=event.sim_time, lines=[],
            )
        elif isinstance(event, Utterance) and event.conversation_id in open_:
            open_[event.conversation_id].lines.append((event.speaker, event.text))
        elif isinstance(event, ConversationEnded) and event.conversation_id in open_:
            done = open_.pop(event.conversation_id)
            done.sim_end, done.end_reason = event.sim_time, event.reason
            yield done
    yield from open_.values()


class HarvestedSession(BaseModel):
    """A role-play session as read back from the log: roles, tasks, turns and why it stopped."""

    run: str
    scenario: str
    model: str
    start: SessionStarted
    turns: list[SessionMessage]
    end: SessionEnded | None = None


def read_sessions(source: RunFolder | EventReader) -> Iterator[HarvestedSession]:
    """Every role-play session in the closed part of a log, in the order they ended; unended ones last."""
    run = scenario = model = ""
    open_: dict[str, HarvestedSession] = {}
    for event in _reader(source).events(_SESSION_KINDS, complete_ticks_only=True):
        if isinstance(event, RunStarted):
            run, scenario, model = event.run_id, event.scenario, event.model
        elif isinstance(event, SessionStarted):
            open_[event.session_id] = HarvestedSession(run=run, scenario=scenario, model=model, start=event, turns=[])
        elif isinstance(event, SessionMessage) and event.session_id in open_:
            open_[event.session_id].turns.append(event)
        elif isinstance(event, SessionEnded) and event.session_id in open_:
            done = open_.pop(event.session_id)
            done.end = event
            yield done
    yield from open_.values()


def _reader(source: RunFolder | EventReader) -> EventReader:
    return source.reader() if isinstance(source, RunFolder) else source


def conversation_dialogue(conv: HarvestedConversation) -> Dialogue:
    """A conversation as the quality figures see it."""
    return Dialogue(dialogue_id=conv.conversation_id, kind="conversation", end_reason=conv.end_reason,
                    lines=[Line(speaker=who, text=text) for who, text in conv.lines], participants=conv.participants)


def session_dialogue(session: HarvestedSession) -> Dialogue:
    """A session as the quality figures see it: its kind is the loop's; only role-play keeps the CAMEL sides."""
    kind = session.start.loop
    return Dialogue(dialogue_id=session.start.session_id, kind=kind,
                    end_reason=session.end.reason if session.end else None,
                    lines=[Line(speaker=t.speaker, text=t.content, role=t.role if kind == "roleplay" else None)
                           for t in session.turns])


def dialogues(source: RunFolder | EventReader) -> Iterator[Dialogue]:
    """The run's ended conversations, then its ended role-play sessions: what the quality figures measure."""
    for conv in read_conversations(source):
        if conv.end_reason is not None:
            yield conversation_dialogue(conv)
    for session in read_sessions(source):
        if session.end is not None and session.start.loop == "roleplay":
            yield session_dialogue(session)
