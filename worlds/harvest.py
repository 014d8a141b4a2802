"""Conversations from run logs become training records: OpenAI chat JSONL or ShareGPT."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Literal

from pydantic import BaseModel

from agents.persona import Persona
from worlds.events import ConversationEnded, ConversationStarted, RunStarted, Utterance
from worlds.runfolder import RunFolder

HarvestFormat = Literal["openai", "sharegpt"]
_CONVERSATION_KINDS = {"run_started", "conversation_started", "utterance", "conversation_ended"}


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


def read_conversations(folder: RunFolder) -> Iterator[HarvestedConversation]:
    """Every conversation in the closed part of a run's log, in the order they ended; open ones (no end) last."""
    run = scenario = model = ""
    open_: dict[str, HarvestedConversation] = {}
    for event in folder.reader().events(_CONVERSATION_KINDS, complete_ticks_only=True):
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


def _roles(conv: HarvestedConversation) -> tuple[str, str]:
    """The first speaker plays the user; the one who answers plays the assistant."""
    first = conv.lines[0][0]
    answerer = next((who for who, _ in conv.lines if who != first), None)
    return first, answerer or next(p for p in conv.participants if p != first)


def _metadata(conv: HarvestedConversation, user: str, assistant: str) -> dict:
    return {
        "run": conv.run, "scenario": conv.scenario, "model": conv.model, "conversation_id": conv.conversation_id,
        "participants": conv.participants, "user_agent": user, "assistant_agent": assistant, "place": conv.place,
        "sim_start": conv.sim_start.isoformat(), "sim_end": conv.sim_end.isoformat() if conv.sim_end else None,
        "end_reason": conv.end_reason, "turns": len(conv.lines),
    }


def to_record(
    conv: HarvestedConversation, fmt: HarvestFormat, personas: dict[str, Persona], with_metadata: bool
) -> dict:
    """One corpus record, with the answering agent's persona and setting as the system prompt."""
    user, assistant = _roles(conv)
    others = ", ".join(p for p in conv.participants if p != assistant)
    system = f"You are {personas[assistant].describe()} You are at {conv.place}, talking with {others}."
    if fmt == "openai":
        messages = [{"role": "system", "content": system}] + [
            {"role": "assistant" if who == assistant else "user", "content": text} for who, text in conv.lines
        ]
        record: dict = {"messages": messages}
    else:
        turns = [{"from": "gpt" if who == assistant else "human", "value": text} for who, text in conv.lines]
        record = {"system": system, "conversations": turns}
    if with_metadata:
        record["metadata"] = _metadata(conv, user, assistant)
    return record


class HarvestCounts(BaseModel):
    """What a harvest wrote, and what it left out because the log never saw those conversations end."""

    written: int = 0
    unfinished: int = 0


def harvest(
    folders: list[RunFolder], fmt: HarvestFormat, out: Path, min_turns: int = 2, with_metadata: bool = True
) -> HarvestCounts:
    """Write every ended conversation with at least `min_turns` lines from two speakers; count the unfinished."""
    counts = HarvestCounts()
    partial = out.with_name(out.name + ".partial")
    with partial.open("w", encoding="utf-8") as handle:
        for folder in folders:
            personas = {p.name: p for p in folder.scenario().agents}
            for conv in read_conversations(folder):
                if conv.end_reason is None:
                    counts.unfinished += 1
                    continue
                if len(conv.lines) < min_turns or len(set(who for who, _ in conv.lines)) < 2:
                    continue
                handle.write(json.dumps(to_record(conv, fmt, personas, with_metadata), ensure_ascii=False) + "\n")
                counts.written += 1
    partial.replace(out)
    return counts
