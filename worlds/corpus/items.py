"""A run read back as harvest items: its conversations, role-play sessions and Self-* loop results, as a stream."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from pydantic import BaseModel

from agents.persona import Persona
from worlds.corpus.dialogues import (
    HarvestedSession,
    conversation_dialogue,
    read_conversations,
    read_sessions,
    session_dialogue,
)
from worlds.corpus.perspective import conversation_samples
from worlds.corpus.preferences import critic_choices, critic_preferences, refine_preferences
from worlds.corpus.provenance import conversation_sources
from worlds.corpus.quality import Dialogue, Line
from worlds.corpus.reading import HarvestReader
from worlds.corpus.samples import Item, Role, Sample
from worlds.events import CriticChose
from worlds.harvest_loops import LoopHarvestOptions, loop_samples
from worlds.runfolder import RunFolder

#: Why an item is left out whatever the options.
UNFINISHED = "unfinished (no end in the log)"
NO_LOOP_RESULT = "no usable loop result"
NOT_A_PARTICIPANT = "assistant not a participant"


class ItemOptions(BaseModel):
    """What the items of a run should carry."""

    assistant: str = "answerer"
    with_metadata: bool = True
    provenance: bool = False
    preferences: bool = False
    loops: LoopHarvestOptions = LoopHarvestOptions()


def run_items(folder: RunFolder, options: ItemOptions) -> Iterator[Item]:
    """Conversations in the order they ended, then sessions in log order; open ones are items left out."""
    personas = {p.name: p for p in folder.personas()}
    reader = HarvestReader(folder.events_path)
    sources = conversation_sources(reader) if options.provenance else None
    for conv in read_conversations(reader):
        if conv.end_reason is None:
            yield Item(run=conv.run, key=conv.conversation_id, dialogue=conversation_dialogue(conv), left_out=UNFINISHED)
            continue
        lines = _joined(sources, conv.conversation_id) if sources is not None else None
        samples = conversation_samples(conv, options.assistant, personas, options.with_metadata, lines)
        yield Item(run=conv.run, key=conv.conversation_id, dialogue=conversation_dialogue(conv), samples=samples,
                   left_out=None if samples or not conv.lines else NOT_A_PARTICIPANT)
    choices = critic_choices(reader) if options.preferences else None
    for session in read_sessions(reader):
        if session.end is None:
            yield Item(run=session.run, key=session.start.session_id, dialogue=session_dialogue(session),
                       left_out=UNFINISHED)
            continue
        picked = _joined(choices, session.start.session_id) if choices is not None else []
        yield from (_roleplay_item(session, personas, options, picked) if session.start.loop == "roleplay"
                    else _loop_items(session, options))


def _joined(stream: Iterator[tuple[str, Any]], dialogue_id: str) -> Any:
    """The next entry of a stream read alongside the dialogues: both follow the log, so their ids agree."""
    found, value = next(stream, (None, None))
    if found != dialogue_id:
        raise ValueError(f"the log's dialogues came out of order ({found} beside {dialogue_id})")
    return value


def session_metadata(session: HarvestedSession) -> dict[str, Any]:
    """What every session's record says about where it came from and how it ended."""
    start, end = session.start, session.end
    return {
        "run": session.run, "scenario": session.scenario, "model": session.model, "kind": start.loop,
        "session_id": start.session_id, "assistant_role": start.assistant_role, "user_role": start.user_role,
        "assistant_agent": start.assistant_agent, "user_agent": start.user_agent, "task": start.task,
        "sim_start": start.sim_time.isoformat(), "sim_end": end.sim_time.isoformat() if end else None,
        "end_reason": end.reason if end else None, "messages": len(session.turns),
    }


def _side(role: str, agent: str | None, personas: dict[str, Persona]) -> str:
    """A CAMEL side as a prompt names it: the agent's persona, or the role (played by the agent, if there is one)."""
    persona = personas.get(agent or "")
    described = persona.describe().rstrip(".") if persona else ""
    if persona and role == agent:
        return described
    return f"the {role}" + (f", played by {described}" if persona else "")


def session_systems(session: HarvestedSession, personas: dict[str, Persona]) -> dict[Role, str]:
    """Each side's system prompt: who it is, who it works with, and the task with its steps."""
    start = session.start
    task = start.specified_task or start.task
    steps = "".join(f"\n{i}. {s}" for i, s in enumerate(start.subtasks, 1))
    helped = start.user_role if start.user_role == start.user_agent else f"the {start.user_role}"
    helper = start.assistant_role if start.assistant_role == start.assistant_agent else f"the {start.assistant_role}"
    return {
        "assistant": f"You are {_side(start.assistant_role, start.assistant_agent, personas)}. "
                     f"You are helping {helped} with this task: {task}{steps}",
        "user": f"You are {_side(start.user_role, start.user_agent, personas)}. "
                f"You are instructing {helper} to complete this task: {task}{steps}",
    }


def _roleplay_item(session: HarvestedSession, personas: dict[str, Persona], options: ItemOptions,
                   choices: list[CriticChose]) -> Iterator[Item]:
    """One sample as the CAMEL assistant, and a preference pair per candidate the critic passed over."""
    start = session.start
    systems = session_systems(session, personas)
    metadata = None
    if options.with_metadata:
        metadata = {**session_metadata(session), "specified_task": start.specified_task, "subtasks": start.subtasks}
    turns: list[tuple[Role, str]] = [("user" if t.role == "user" else "assistant", t.content) for t in session.turns]
    yield Item(run=session.run, key=start.session_id, dialogue=session_dialogue(session),
               samples=[Sample(system=systems["assistant"], turns=turns, metadata=metadata)],
               preferences=critic_preferences(choices, session.turns, systems, metadata))


def _loop_items(session: HarvestedSession, options: ItemOptions) -> Iterator[Item]:
    """A loop session gives one item per record (Self-Instruct one per pooled instance), or one left out."""
    start, end = session.start, session.end
    assert end is not None
    metadata = session_metadata(session) if options.with_metadata else None
    samples = loop_samples(start, session.turns, end, options.loops, metadata)
    preferences = refine_preferences(start, end, metadata)
    p_true = end.result.get("p_true") if start.loop == "self_eval" else None
    if not samples:
        yield Item(run=session.run, key=start.session_id, dialogue=session_dialogue(session), p_true=p_true,
                   preferences=preferences, left_out=None if preferences else NO_LOOP_RESULT)
        return
    names = {"assistant": start.assistant_agent or start.assistant_role, "user": start.user_agent or start.user_role}
    for number, sample in enumerate(samples):
        dialogue = Dialogue(dialogue_id=f"{start.session_id}#{number}", kind=start.loop, end_reason=end.reason,
                            lines=[Line(speaker=names[role], text=text) for role, text in sample.turns])
        yield Item(run=session.run, key=dialogue.dialogue_id if len(samples) > 1 else start.session_id,
                   dialogue=dialogue, samples=[sample], p_true=p_true,
                   preferences=preferences if number == 0 else [])
