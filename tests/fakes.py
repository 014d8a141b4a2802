"""Test doubles with intent: a model that answers each prompt kind on purpose, and quick agent builders."""

from __future__ import annotations

import json
import re

from agents.agent import Agent
from agents.gateway import ModelGateway
from agents.gateway.backends.base import Backend
from agents.gateway.types import ModelReply, ModelRequest
from agents.importance import model_importance_scorer
from agents.persona import Persona
from memory import FakeHashEmbeddings, InMemoryStore, MemoryStream, build_embedder


def _bullets(text: str, label: str) -> list[str]:
    """The `- ` lines under a prompt section's label."""
    match = re.search(rf"{re.escape(label)}[^\n]*:\n((?:- [^\n]*\n?)+)", text)
    return [line[2:] for line in match.group(1).splitlines()] if match else []


class EchoFake(Backend):
    """A fake model that plans to go to one place, always wants to talk, and says what is on its mind.

    Lines repeat the speaker's retrieved memories and answers repeat the memories given, so a fact
    can be followed from one agent's memory, through a conversation, into another's probe answer.
    """

    def __init__(self, meeting_place: str) -> None:
        self.name = "echo-fake"
        self.max_in_flight = 8
        self.timeout_s = 5.0
        self.meeting_place = meeting_place

    async def generate(self, request: ModelRequest) -> ModelReply:
        prompt = "\n".join(m.content for m in request.messages)
        schema = (request.json_schema or {}).get("title", "")
        if schema:
            text = json.dumps(self._structured(schema, prompt))
        elif " chatting with " in request.messages[0].content:
            text = self._line(request)
        else:
            text = self._free(prompt)
        return ModelReply(text=text, prompt_tokens=len(prompt.split()), completion_tokens=len(text.split()))

    def _structured(self, schema: str, prompt: str) -> dict:
        place = self.meeting_place
        if schema == "DayOutline":
            return {"items": [{"hour": h, "activity": f"spend time at {place}", "place": place} for h in (7, 10, 14, 18)]}
        if schema == "ActionList":
            return {"actions": [{"minutes": 15, "action": "sit and chat", "object": "", "object_state": ""}]}
        if schema == "Reaction":
            return {"decision": "talk", "reason": "a friendly face"}
        if schema == "ConversationDigest":
            said = re.search(r"The conversation:\n(.*?)(\n\n|$)", prompt, re.S)
            summary = " / ".join(said.group(1).splitlines()) if said else "we talked"
            return {"summary": summary[:300], "relationship": "a friend"}
        if schema == "ImportanceScores":
            count = len(re.findall(r"^\d+\. ", prompt, re.M))
            return {"scores": [5] * count}
        if schema == "SalientQuestions":
            return {"questions": ["What matters most?"]}
        if schema == "Insights":
            return {"insights": [{"insight": "Life is busy.", "evidence": [1]}]}
        raise AssertionError(f"EchoFake has no answer for schema {schema!r}")

    def _line(self, request: ModelRequest) -> str:
        """A conversation line: its turn number, then what is on the speaker's mind and not yet said.

        Plans are left out (everyone's look alike, and people seldom recite them); the speaker's own name
        becomes "I", as a speaker would put it.
        """
        system = "\n\n".join(m.content for m in request.messages if m.role == "system")
        history = [m for m in request.messages if m.role != "system"]
        turn = 1 + sum(1 for m in history if not m.content.startswith("("))
        speaker = re.match(r"You are (\S+)", system).group(1).rstrip(",")
        said = "\n".join(m.content for m in history)
        fresh = [b for b in _bullets(system, "On ") if b not in said and " plan" not in b]
        news = re.sub(rf"\b{re.escape(speaker)}\b", "I", " ".join(fresh)) if fresh else "hello there"
        return f"Turn {turn}: {news}"

    def _free(self, prompt: str) -> str:
        return " ".join(_bullets(prompt, "")) or "I don't know."


def make_agent(name: str = "Ann", home: str = "Ann's flat", gateway: ModelGateway | None = None, **persona) -> Agent:
    """An agent over an in-memory store with the hashing embedder."""
    stream = MemoryStream(name, InMemoryStore(), build_embedder(FakeHashEmbeddings()),
                          model_importance_scorer(gateway) if gateway else _flat_scorer)
    return Agent(Persona(name=name, home=home, **persona), stream)


async def _flat_scorer(agent: str, texts: list[str], trace: object) -> list[int]:
    return [3] * len(texts)
