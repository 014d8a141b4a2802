"""Run folders written by hand for the harvest tests: conversations, sessions and loops with known contents."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from tests.conftest import SMALL_TOWN
from worlds.events import (
    ConversationEnded,
    ConversationStarted,
    CriticChose,
    EventBase,
    MemoryRetrievedEvent,
    RunEnded,
    RunStarted,
    SessionEnded,
    SessionMessage,
    SessionStarted,
    TickCompleted,
    Utterance,
)

T0 = datetime(2023, 2, 13, 8)
POSITIONS = {"Ann": "Cafe", "Bob": "Cafe", "Cy": "Cafe"}


def at(tick: int) -> dict[str, Any]:
    return {"tick": tick, "sim_time": T0 + timedelta(minutes=10 * tick)}


def conversation(tick: int, cid: str, lines: list[tuple[str, str]], reason: str = "farewell") -> list[EventBase]:
    """A conversation said within one tick, between whoever speaks in it."""
    agents = list(dict.fromkeys(who for who, _ in lines)) or ["Ann", "Bob"]
    return [
        ConversationStarted(**at(tick), agents=agents, conversation_id=cid, place="Cafe"),
        *(Utterance(**at(tick), agents=agents, conversation_id=cid, speaker=who, place="Cafe", text=text)
          for who, text in lines),
        ConversationEnded(**at(tick), agents=agents, conversation_id=cid, place="Cafe", reason=reason,
                          lines=len(lines)),
    ]


def retrieved(tick: int, agent: str, query: str, memories: list[tuple[str, str]]) -> MemoryRetrievedEvent:
    return MemoryRetrievedEvent(**at(tick), agents=[agent], agent=agent, query=query, k=3, candidates=len(memories),
                                accessed_at=at(tick)["sim_time"], results=[
                                    {"id": mid, "text": text, "recency": 1, "importance": 1, "relevance": 1,
                                     "score": 3} for mid, text in memories])


def session(tick: int, sid: str, turns: list[str], loop: str = "roleplay", reason: str = "max_messages",
            result: dict[str, Any] | None = None, choices: tuple[dict[str, Any], ...] = (),
            task: str = "Plan a picnic") -> list[EventBase]:
    """A session whose turns alternate user, assistant; `choices` are critic choices (index, candidates, chosen)."""
    start = SessionStarted(**at(tick), session_id=sid, loop=loop, assistant_role="Baker", user_role="Host", task=task)
    events: list[EventBase] = [start]
    for index, content in enumerate(turns):
        role = "user" if index % 2 == 0 else "assistant"
        for choice in choices:
            if choice["index"] == index:
                events.append(CriticChose(**at(tick), session_id=sid, role=role, reason="better", **choice))
        events.append(SessionMessage(**at(tick), session_id=sid, index=index, role=role,
                                     speaker="Host" if role == "user" else "Baker", content=content))
    events.append(SessionEnded(**at(tick), session_id=sid, reason=reason, messages=len(turns), tokens=0,
                               result=result or {}))
    return events


def write_run(folder: Path, blocks: list[list[EventBase]], run_id: str | None = None) -> Path:
    """A closed run: each block is one tick (closed by its tick record), then the run's end."""
    folder.mkdir(parents=True)
    (folder / "scenario.yaml").write_text(SMALL_TOWN)
    events: list[EventBase] = [RunStarted(**at(0), run_id=run_id or folder.name, scenario="small-town", seed=3,
                                          model="fake", until=at(50)["sim_time"])]
    for tick, block in enumerate(blocks):
        events += [*block, TickCompleted(**at(tick), positions=POSITIONS)]
    events.append(RunEnded(**at(len(blocks)), status="completed", ticks=len(blocks)))
    lines = [e.model_copy(update={"seq": n}).model_dump_json() + "\n" for n, e in enumerate(events)]
    (folder / "events.jsonl").write_text("".join(lines))
    return folder


def chat(*texts: str, speakers: tuple[str, str] = ("Ann", "Bob")) -> list[tuple[str, str]]:
    """Lines said in turn by two speakers."""
    return [(speakers[number % 2], text) for number, text in enumerate(texts)]
