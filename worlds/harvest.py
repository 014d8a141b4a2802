"""Conversations from run logs become training records: OpenAI chat JSONL or ShareGPT."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Literal

from pydantic import BaseModel

from agents.persona import Persona
from worlds.runfolder import RunFolder

HarvestFormat = Literal["openai", "sharegpt"]


class HarvestedConversation(BaseModel):
    """A finished conversation as read back from the log."""

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
    """Every conversation in a run's log, in the order they ended (open ones at a crash last)."""
    run = scenario = model = ""
    open_: dict[str, HarvestedConversation] = {}
    for record in folder.reader().raw():
        kind = record["kind"]
        if kind == "run_started":
            run, scenario, model = record["run_id"], record["scenario"], record["model"]
        elif kind == "conversation_started":
            open_[record["conversation_id"]] = HarvestedConversation(
                run=run, scenario=scenario, model=model, conversation_id=record["conversation_id"],
                place=record["place"], participants=record["agents"], sim_start=record["sim_time"], lines=[],
            )
        elif kind == "utterance" and record["conversation_id"] in open_:
            open_[record["conversation_id"]].lines.append((record["speaker"], record["text"]))
        elif kind == "conversation_ended" and record["conversation_id"] in open_:
            done = open_.pop(record["conversation_id"])
            done.sim_end, done.end_reason = datetime.fromisoformat(record["sim_time"]), record["reason"]
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
    system = f"{personas[assistant].describe()} You are at {conv.place}, talking with {others}."
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


def harvest(
    folders: list[RunFolder], fmt: HarvestFormat, out: Path, min_turns: int = 2, with_metadata: bool = True
) -> int:
    """Write every conversation with at least `min_turns` lines; return how many were written."""
    written = 0
    partial = out.with_name(out.name + ".partial")
    with partial.open("w", encoding="utf-8") as handle:
        for folder in folders:
            personas = {p.name: p for p in folder.scenario().agents}
            for conv in read_conversations(folder):
                if len(conv.lines) < min_turns or len(set(who for who, _ in conv.lines)) < 2:
                    continue
                handle.write(json.dumps(to_record(conv, fmt, personas, with_metadata), ensure_ascii=False) + "\n")
                written += 1
    partial.replace(out)
    return written
