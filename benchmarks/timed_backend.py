"""Shared by the benchmarks: a backend wrapper that adds up the seconds spent inside the model."""

from __future__ import annotations

import time

from agents.gateway.backends.base import Backend
from agents.gateway.types import ModelReply, ModelRequest


class Timed(Backend):
    """Wraps a backend and adds up the seconds spent inside it, so engine time can be told apart."""

    def __init__(self, inner: Backend) -> None:
        self.inner = inner
        self.name = inner.name
        self.max_in_flight = inner.max_in_flight
        self.timeout_s = inner.timeout_s
        self.enforces_schema = inner.enforces_schema
        self.seconds = 0.0

    async def generate(self, request: ModelRequest) -> ModelReply:
        started = time.perf_counter()
        try:
            return await self.inner.generate(request)
        finally:
            self.seconds += time.perf_counter() - started
