"""What the gateway reports about each call; the event log stores these verbatim."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, model_validator

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
    #: False only for an answer from another run's cache (a replay, a fork's past): what budgets and cost count.
    #: The run's own answers, served again by a resume, stay paid.
    paid: bool = True
    retries: int
    latency_s: float

    @model_validator(mode="before")
    @classmethod
    def _paid_in_older_logs(cls, data: Any) -> Any:
        """Logs from before `paid` existed: a cached answer is taken as not paid for."""
        if isinstance(data, dict) and "paid" not in data and "cached" in data:
            data = {**data, "paid": not data["cached"]}
        return data


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
