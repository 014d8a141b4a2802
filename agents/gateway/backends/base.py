"""The narrow interface every model backend implements."""

from __future__ import annotations

from abc import ABC, abstractmethod

from agents.gateway.types import ModelReply, ModelRequest


class Backend(ABC):
    """Turns a request into a reply; retries, caching and parsing live in the gateway."""

    #: Identity used in cache keys and usage records, e.g. ``embedded:qwen2.5-coder-0.5b``.
    name: str
    #: How many calls may be in flight at once against this backend.
    max_in_flight: int = 4
    #: Seconds one call may take before it counts as a time-out.
    timeout_s: float = 120.0
    #: Whether the backend constrains output to the JSON Schema itself (grammar, json_schema mode...).
    enforces_schema: bool = True
    #: Whether it answers `options` requests: the reply's text is then a JSON object {option: log-probability}.
    gives_logprobs: bool = False

    @abstractmethod
    async def generate(self, request: ModelRequest) -> ModelReply:
        """Answer one request; raise on failure (the gateway decides what to retry)."""
