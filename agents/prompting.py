"""Prompts assembled from labelled sections that an agent's parts contribute (persona, memories, plan…)."""

from __future__ import annotations

from pydantic import BaseModel

from agents.gateway import ChatMessage


class Section(BaseModel):
    """One labelled block of a prompt; an empty section is left out."""

    label: str
    text: str

    def block(self) -> str:
        return f"{self.label}:\n{self.text.strip()}"


def assemble(system: str, sections: list[Section], ask: str) -> list[ChatMessage]:
    """A system turn, then every non-empty section under its label, then the request."""
    body = [s.block() for s in sections if s.text.strip()]
    return [
        ChatMessage(role="system", content=system),
        ChatMessage(role="user", content="\n\n".join([*body, ask])),
    ]


def bullet_list(lines: list[str]) -> str:
    return "\n".join(f"- {line}" for line in lines)
