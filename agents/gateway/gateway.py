"""The one door to every model: caching, in-flight limits, retries, repair, fallbacks, accounting."""

from __future__ import annotations

import asyncio
import functools
import json
import math
import time
from typing import TypeVar

from pydantic import BaseModel

from agents.gateway.backends.base import Backend
from agents.gateway.cache import RequestCache
from agents.gateway.errors import ContextLimitError, ModelServerDownError, ModelUnavailableError, PermanentModelError
from agents.gateway.failures import backoff_delay, classify, overflows_context, unreachable
from agents.gateway.records import (
    ModelCallRecord,
    ModelFallbackRecord,
    ModelRepairRecord,
    ModelRetryRecord,
)
from agents.gateway.scope import CallScope
from agents.gateway.structured import (
    correction,
    parse_structured,
    with_schema_instruction,
)
from agents.gateway.types import ChatMessage, ModelReply, ModelRequest

T = TypeVar("T", bound=BaseModel)
V = TypeVar("V")


@functools.lru_cache(maxsize=256)
def json_schema_of(schema: type[BaseModel]) -> dict:
    """A model's JSON Schema, built once: pydantic rebuilds it on every call, and calls are many."""
    return schema.model_json_schema()


class GatewayCounters(BaseModel):
    """Running totals for a live summary; the event log holds the per-call truth."""

    calls: int = 0
    cache_hits: int = 0
    retries: int = 0
    repairs: int = 0
    fallbacks: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0

    def merge(self, other: GatewayCounters) -> None:
        """Add another gateway's totals (a batch's worker) to these."""
        for name in type(self).model_fields:
            setattr(self, name, getattr(self, name) + getattr(other, name))


class ModelGateway:
    """Every model call in simulacra goes through one of these, one per backend."""

    def __init__(
        self,
        backend: Backend,
        cache: RequestCache | None = None,
        max_attempts: int = 4,
        max_parse_attempts: int = 3,
        backoff_base_s: float = 0.5,
        backoff_max_s: float = 20.0,
    ) -> None:
        self.backend = backend
        self.cache = cache
        self.max_attempts = max_attempts
        self.max_parse_attempts = max_parse_attempts
        self.backoff_base_s = backoff_base_s
        self.backoff_max_s = backoff_max_s
        self.counters = GatewayCounters()
        self._in_flight = asyncio.Semaphore(backend.max_in_flight)

    def checkpoint(self) -> None:
        """Make the answers cached so far durable; call before writing the log records that used them."""
        if self.cache is not None:
            self.cache.commit()

    @property
    def model_name(self) -> str:
        return self.backend.name

    async def complete(
        self,
        messages: list[ChatMessage],
        *,
        purpose: str,
        temperature: float = 0.8,
        max_tokens: int = 256,
        fallback: str | None = None,
        scope: CallScope | None = None,
    ) -> str:
        """Free text; after every attempt fails, `fallback` (logged) or ModelUnavailableError."""
        scope = scope or CallScope()
        request = self._request(messages, scope, purpose, temperature, max_tokens, None)
        try:
            return (await self._answer(request, scope, purpose, None)).text
        except ModelUnavailableError as exc:
            return self._fall_back(scope, purpose, str(exc), fallback, exc)

    async def option_probabilities(
        self, messages: list[ChatMessage], options: list[str], *, purpose: str, scope: CallScope | None = None,
    ) -> dict[str, float] | None:
        """How likely each option is as the model's next word, normalised over the options.

        None when the backend cannot say (no log-probabilities): the caller then samples instead.
        """
        if not self.backend.gives_logprobs:
            return None
        scope = scope or CallScope()
        request = self._request(messages, scope, purpose, 0.0, 1, None).model_copy(update={"options": options})
        try:
            reply = await self._answer(request, scope, purpose, None)
            logprobs = {o: float(v) for o, v in json.loads(reply.text).items() if o in options}
        except (ModelUnavailableError, ValueError, AttributeError) as exc:
            self.fall_back(scope, purpose, f"no log-probabilities: {exc}", "sampling instead")
            return None
        if set(logprobs) != set(options):
            self.fall_back(scope, purpose, f"log-probabilities for {sorted(logprobs)} only", "sampling instead")
            return None
        top = max(logprobs.values())
        weights = {o: math.exp(v - top) for o, v in logprobs.items()}
        total = sum(weights.values())
        return {o: weights[o] / total for o in options}

    def fall_back(self, scope: CallScope, purpose: str, reason: str, value: V) -> V:
        """A caller's own fallback (an answer it could not use), logged and counted like the gateway's."""
        self.counters.fallbacks += 1
        shown = value.model_dump_json() if isinstance(value, BaseModel) else str(value)
        scope.emit(
            ModelFallbackRecord(
                agent=scope.agent, purpose=purpose, model=self.model_name, reason=reason[:500], value=shown
            )
        )
        return value

    async def structured(
        self,
        messages: list[ChatMessage],
        schema: type[T],
        *,
        purpose: str,
        default: T | None = None,
        temperature: float = 0.7,
        max_tokens: int = 256,
        scope: CallScope | None = None,
    ) -> T:
        """A validated `schema` instance: constrained decoding, then repair, then re-asking, then `default`."""
        scope = scope or CallScope()
        json_schema = json_schema_of(schema)
        conversation = with_schema_instruction(messages, json_schema, self.backend.enforces_schema)
        reason = "no attempt made"
        for attempt in range(self.max_parse_attempts):
            request = self._request(conversation, scope, purpose, temperature, max_tokens, json_schema)
            try:
                reply = await self._answer(request, scope, purpose, schema.__name__)
            except ModelUnavailableError as exc:
                return self._fall_back(scope, purpose, str(exc), default, exc)
            outcome = parse_structured(reply.text, schema)
            if outcome.value is not None:
                if outcome.repaired:
                    self.note_repair(scope, purpose, schema.__name__, reply.text, outcome.repaired_text)
                return outcome.value
            reason = f"invalid output: {outcome.error}"
            if attempt + 1 < self.max_parse_attempts:
                self.note_retry(scope, purpose, attempt, "invalid_output", outcome.error, 0.0)
                conversation = [
                    *conversation, ChatMessage(role="assistant", content=reply.text), correction(outcome.error)
                ]
        return self._fall_back(scope, purpose, reason, default, None)

    def _request(
        self,
        messages: list[ChatMessage],
        scope: CallScope,
        purpose: str,
        temperature: float,
        max_tokens: int,
        json_schema: dict | None,
    ) -> ModelRequest:
        return ModelRequest(
            model=self.model_name,
            messages=messages,
            temperature=temperature,
            max_tokens=max_tokens,
            seed=scope.next_seed(purpose),
            json_schema=json_schema,
        )

    async def _answer(self, request: ModelRequest, scope: CallScope, purpose: str, structured: str | None) -> ModelReply:
        """Serve from cache, else call the backend under the in-flight limit, retrying passing failures."""
        key = request.key()
        started = time.perf_counter()
        hit = self.cache.get(key) if self.cache is not None else None
        reply, inherited = hit if hit is not None else (None, False)
        cached = reply is not None
        retries = 0
        while reply is None:
            if self.cache is not None and self.cache.mode == "replay":
                raise PermanentModelError(
                    f"replay: no recorded answer for a {purpose!r} call of {scope.agent or 'the run'}; "
                    "the scenario, seed or model differ from the recorded run"
                )
            started = time.perf_counter()
            try:
                async with self._in_flight, asyncio.timeout(self.backend.timeout_s):
                    reply = await self.backend.generate(request)
            except Exception as exc:  # noqa: BLE001 - every backend failure is classified below
                kind = classify(exc)
                detail = f"{type(exc).__name__}: {exc}"[:500]
                if overflows_context(exc):
                    raise ContextLimitError(f"the prompt does not fit the model's context: {detail}") from exc
                if kind is None:
                    raise
                if retries + 1 >= self.max_attempts:
                    if unreachable(exc):
                        raise ModelServerDownError(f"the model server stopped answering ({self.max_attempts} "
                                                   f"attempts): {detail}") from exc
                    raise ModelUnavailableError(f"{self.max_attempts} attempts failed, last: {detail}") from exc
                delay = backoff_delay(retries, self.backoff_base_s, self.backoff_max_s, key)
                self.note_retry(scope, purpose, retries, kind, detail, delay)
                retries += 1
                await asyncio.sleep(delay)
                continue
            if self.cache is not None:
                self.cache.put(key, self.model_name, reply)
        self.counters.calls += 1
        self.counters.cache_hits += cached
        self.counters.prompt_tokens += reply.prompt_tokens
        self.counters.completion_tokens += reply.completion_tokens
        scope.emit(
            ModelCallRecord(
                agent=scope.agent, purpose=purpose, model=self.model_name, request_key=key, seed=request.seed,
                structured=structured, messages=request.messages, response=reply.text,
                prompt_tokens=reply.prompt_tokens, completion_tokens=reply.completion_tokens,
                prompt_tokens_reused=0 if cached else reply.prompt_tokens_reused,
                cached=cached, paid=not inherited, retries=retries, latency_s=round(time.perf_counter() - started, 4),
            )
        )
        return reply

    def note_retry(
        self, scope: CallScope, purpose: str, attempt: int, reason: str, detail: str, delay: float
    ) -> None:
        """Count and log an attempt that will be made again; callers that reject an answer use it too."""
        self.counters.retries += 1
        scope.emit(
            ModelRetryRecord(
                agent=scope.agent, purpose=purpose, model=self.model_name,
                attempt=attempt, reason=reason, detail=detail, backoff_s=delay,
            )
        )

    def note_repair(self, scope: CallScope, purpose: str, what: str, raw: str, repaired: str) -> None:
        """Count and log an answer mended instead of asked again; callers that mend text use it too."""
        self.counters.repairs += 1
        scope.emit(ModelRepairRecord(agent=scope.agent, purpose=purpose, model=self.model_name,
                                     schema_name=what, raw=raw, repaired=repaired))

    def _fall_back(self, scope: CallScope, purpose: str, reason: str, value, cause: Exception | None):
        if value is None:  # the kind of failure survives (a context overflow stays one)
            kind = type(cause) if isinstance(cause, ModelUnavailableError) else ModelUnavailableError
            raise kind(f"{purpose}: {reason}") from cause
        return self.fall_back(scope, purpose, reason, value)
