"""The request and reply records that cross the gateway boundary (and key the cache)."""

from __future__ import annotations

import hashlib
import json
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class ChatMessage(BaseModel):
    """One chat turn as every backend understands it."""

    model_config = ConfigDict(frozen=True)

    role: Literal["system", "user", "assistant"]
    content: str


class ModelRequest(BaseModel):
    """Everything that determines a model's answer; its hash is the cache key."""

    model: str
    messages: list[ChatMessage]
    temperature: float = 0.8
    max_tokens: int = 256
    seed: int = 0
    json_schema: dict[str, Any] | None = None
    #: Asks for the log-probability of each option as the next token instead of text (P(True) and the like).
    options: list[str] | None = None

    def key(self) -> str:
        """Stable SHA-256 of the canonical JSON form, so equal requests share a cache entry."""
        data = self.model_dump(mode="json")
        if data["options"] is None:  # keys of text requests stay what they were before options existed
            del data["options"]
        canonical = json.dumps(data, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()


class ModelReply(BaseModel):
    """A backend's raw answer with the token counts used for accounting."""

    text: str
    prompt_tokens: int = Field(ge=0)
    completion_tokens: int = Field(ge=0)
    #: Of the prompt tokens, those restored from a kept prefix state instead of evaluated.
    prompt_tokens_reused: int = Field(default=0, ge=0)


def joined_system_turns(messages: list[ChatMessage]) -> list[ChatMessage]:
    """The leading system turns as one, in order: for chat templates and servers that take a single one."""
    leading = 0
    while leading < len(messages) and messages[leading].role == "system":
        leading += 1
    if leading < 2:
        return messages
    joined = ChatMessage(role="system", content="\n\n".join(m.content for m in messages[:leading]))
    return [joined, *messages[leading:]]
