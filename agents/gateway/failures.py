"""Sorting exceptions into retryable kinds and spacing the retries out."""

from __future__ import annotations

import asyncio
import re
from typing import Literal

from agents.gateway.errors import ModelSpecError, PermanentModelError
from agents.seeding import stable_int

RetryReason = Literal["error", "timeout", "rate_limit"]

_PERMANENT_STATUS = {400, 401, 403, 404, 422}
_PERMANENT_NAMES = {"authenticationerror", "permissiondeniederror", "notfounderror", "badrequesterror"}


def classify(exc: BaseException) -> RetryReason | None:
    """The retry reason for a failure, or None when trying again cannot help."""
    if isinstance(exc, (PermanentModelError, ModelSpecError)):
        return None
    if isinstance(exc, (asyncio.TimeoutError, TimeoutError)):
        return "timeout"
    name = type(exc).__name__.lower()
    status = getattr(exc, "status_code", None)
    if status == 429 or "ratelimit" in name:
        return "rate_limit"
    if "timeout" in name:
        return "timeout"
    if status in _PERMANENT_STATUS or name in _PERMANENT_NAMES:
        return None
    return "error"


#: How HTTP clients name a connection that was refused, reset or dropped (httpx, openai, aiohttp, requests).
_UNREACHABLE_NAMES = {"connecterror", "apiconnectionerror", "remoteprotocolerror", "readerror", "writeerror",
                      "clientconnectorerror", "serverdisconnectederror", "connectionerror"}


def unreachable(exc: BaseException) -> bool:
    """True when the failure, or one it was raised from, says the server could not be reached at all."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, ConnectionError) or type(current).__name__.lower() in _UNREACHABLE_NAMES:
            return True
        current = current.__cause__  # not __context__: a 5xx raised while handling a dropped connection is a 5xx
    return False


#: How backends say a prompt is longer than the context: llama.cpp, OpenAI and servers that copy them.
_CONTEXT_OVERFLOW = re.compile(
    r"exceed\w* (the )?(available )?context (window|size|length)|context_length_exceeded|exceed_context_size_error"
    r"|max(imum)? context length|context length exceeded", re.I)


def overflows_context(exc: BaseException) -> bool:
    """True when the backend refused the prompt for being longer than the model's context."""
    return bool(_CONTEXT_OVERFLOW.search(f"{getattr(exc, 'code', '')} {exc}"))


def backoff_delay(attempt: int, base_s: float, max_s: float, key: str) -> float:
    """Exponential back-off with jitter drawn from the request, so logs stay reproducible."""
    jitter = stable_int(key, attempt, bits=16) / 65535
    return round(min(max_s, base_s * 2**attempt) * (0.5 + jitter / 2), 3)
