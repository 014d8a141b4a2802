"""What the gateway reports about each call; the event log stores these verbatim."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel

from agents.gateway.types import ChatMessage


class ModelCallRecord(BaseModel):
    """One answered model call with its usage, so cost and provenance are auditable."""

    kind: Literal["model_call"] = "model_call"
    agent: str | None
    purpose: str
    model: str
    request_key: str
    seed: int
    structured: str | None
    messages: list[ChatMessage]
    response: str
    prompt_tokens: int
    completion_tokens: int
    #: Prompt tokens the backend restored from a kept prefix instead of evaluating (0 when it keeps none).
    prompt_tokens_reused: int = 0
    cached: bool
    retries: int
    latency_s: float


class ModelRetryRecord(BaseModel):
    """A failed attempt that will be tried again: transient error or unusable output."""

    kind: Literal["model_retry"] = "model_retry"
    agent: str | None
    purpose: str
    model: str
    attempt: int
    reason: Literal["error", "timeout", "rate_limit", "invalid_output"]
    detail: str
    backoff_s: float


class ModelRepairRecord(BaseModel):
    """Output that failed strict parsing but was mended into a valid object."""

    kind: Literal["model_repair"] = "model_repair"
    agent: str | None
    purpose: str
    model: str
    schema_name: str
    raw: str
    repaired: str


class ModelFallbackRecord(BaseModel):
    """Attempts ran out and the caller's default was used instead of a model answer."""

    kind: Literal["model_fallback"] = "model_fallback"
    agent: str | None
    purpose: str
    model: str
    reason: str
    value: str


GatewayRecord = ModelCallRecord | ModelRetryRecord | ModelRepairRecord | ModelFallbackRecord
