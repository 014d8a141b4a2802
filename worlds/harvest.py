"""Conversations and role-play sessions from run logs become training records: OpenAI chat JSONL or ShareGPT."""

from __future__ import annotations

import json
from pathlib import Path

from pydantic import BaseModel

from agents.persona import Persona
from worlds.corpus.dialogues import HarvestedConversation, HarvestedSession, read_conversations, read_sessions
from worlds.harvest_loops import HarvestFormat, LoopHarvestOptions, chat_record, loop_records
from worlds.runfolder import RunFolder


def session_record(session: HarvestedSession, fmt: HarvestFormat, personas: dict[str, Persona],
                   with_metadata: bool) -> dict:
    """One corpus record: the assistant's role (and persona) and the task as the system prompt."""
    start = session.start
    persona = personas.get(start.assistant_agent or "")
    described = persona.describe().rstrip(".") if persona else ""
    who = described if persona and start.assistant_role == start.assistant_agent else \
        f"the {start.assistant_role}" + (f", played by {described}" if persona else "")
    task = start.specified_task or start.task
    steps = "".join(f"\n{i}. {s}" for i, s in enumerate(start.subtasks, 1))
    helped = start.user_role if start.user_role == start.user_agent else f"the {start.user_role}"
    system = f"You are {who}. You are helping {helped} with this task: {task}{steps}"
    pairs = [("user" if t.role == "user" else "assistant", t.content) for t in session.turns]
    record = chat_record(system, pairs, fmt)
    if with_metadata:
        record["metadata"] = {**_session_metadata(session), "specified_task": start.specified_task,
                              "subtasks": start.subtasks}
    return record


def _session_metadata(session: HarvestedSession) -> dict:
    """What every session's record says about where it came from and how it ended."""
    start, end = session.start, session.end
    return {
        "run": session.run, "scenario": session.scenario, "model": session.model, "kind": start.loop,
        "session_id": start.session_id, "assistant_role": start.assistant_role, "user_role": start.user_role,
        "assistant_agent": start.assistant_agent, "user_agent": start.user_agent, "task": start.task,
        "sim_start": start.sim_time.isoformat(), "sim_end": end.sim_time.isoformat() if end else None,
        "end_reason": end.reason if end else None, "messages": len(session.turns),
    }


def _roles(conv: HarvestedConversation) -> tuple[str, str]:
    """The first speaker plays the user; the one who answers plays the assistant."""
    first = conv.lines[0][0]
    answerer = next((who for who, _ in conv.lines if who != first), None)
    return first, answerer or next(p for p in conv.participants if p != first)


def _metadata(conv: HarvestedConversation, user: str, assistant: str) -> dict:
    return {
        "run": conv.run, "scenario": conv.scenario, "model": conv.model, "kind": "conversation",
        "conversation_id": conv.conversation_id,
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
    record = chat_record(system, [("assistant" if who == assistant else "user", text) for who, text in conv.lines], fmt)
    if with_metadata:
        record["metadata"] = _metadata(conv, user, assistant)
    return record


class HarvestCounts(BaseModel):
    """What a harvest wrote, and what it left out because the log never saw those dialogues end."""

    written: int = 0
    sessions: int = 0
    loops: int = 0
    #: Loop sessions that ended but gave no record (a failed end, a placeholder, failing code, a filter).
    loops_left_out: int = 0
    unfinished: int = 0


def _worth_keeping(lines: list[str], speakers: set[str], min_turns: int) -> bool:
    return len(lines) >= min_turns and len(speakers) >= 2


def harvest(
    folders: list[RunFolder], fmt: HarvestFormat, out: Path, min_turns: int = 2, with_metadata: bool = True,
    loop_options: LoopHarvestOptions | None = None,
) -> HarvestCounts:
    """Write every ended conversation and session with at least `min_turns` lines from two speakers.

    Conversations come first in the order they ended, then sessions in id order (a batch logs them
    in the order they finished); the unfinished are counted, not written.
    """
    counts = HarvestCounts()
    partial = out.with_name(out.name + ".partial")
    with partial.open("w", encoding="utf-8") as handle:
        for folder in folders:
            personas = {p.name: p for p in folder.personas()}
            for conv in read_conversations(folder):
                if conv.end_reason is None:
                    counts.unfinished += 1
                elif _worth_keeping([t for _, t in conv.lines], {w for w, _ in conv.lines}, min_turns):
                    handle.write(json.dumps(to_record(conv, fmt, personas, with_metadata), ensure_ascii=False) + "\n")
                    counts.written += 1
            for session in sorted(read_sessions(folder), key=lambda s: s.start.session_id):
                if session.end is None:
                    counts.unfinished += 1
                elif session.start.loop != "roleplay":
                    meta = _session_metadata(session) if with_metadata else None
                    records = loop_records(session.start, session.turns, session.end, fmt,
                                           loop_options or LoopHarvestOptions(), meta)
                    counts.loops_left_out += not records
                    for record in records:
                        handle.write(json.dumps(record, ensure_ascii=False) + "\n")
                        counts.written += 1
                        counts.loops += 1
                elif _worth_keeping([t.content for t in session.turns], {t.role for t in session.turns}, min_turns):
                    record = session_record(session, fmt, personas, with_metadata)
                    handle.write(json.dumps(record, ensure_ascii=False) + "\n")
                    counts.written += 1
                    counts.sessions += 1
    partial.replace(out)
    return counts
