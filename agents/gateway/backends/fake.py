"""A deterministic offline test double: schema-valid answers, optional latency and injected faults."""

from __future__ import annotations

import asyncio
import hashlib
import json
import random
from collections import Counter
from typing import Any

from agents.gateway.backends.base import Backend
from agents.gateway.errors import TransientModelError
from agents.gateway.types import ModelReply, ModelRequest

_OPENERS = [
    "Honestly,", "You know,", "Well,", "I was just thinking that", "Funny you mention it,",
    "To be fair,", "Between us,", "I heard that", "Right now", "Lately",
]
_TOPICS = [
    "the weather has been lovely", "the cafe is busier than usual", "the park looks great this morning",
    "everyone seems to be planning something", "I should finish my work early today",
    "the new book at the library is worth a look", "we ought to meet up more often",
    "the market had fresh bread today", "I could use a cup of coffee", "the town feels lively lately",
]
_CLOSERS = ["", " What do you think?", " Don't you agree?", " Anyway, how are you?", " Let's talk later."]


def _stable_rng(*parts: object) -> random.Random:
    digest = hashlib.sha256("|".join(map(str, parts)).encode()).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))


def _sentence(rng: random.Random) -> str:
    return f"{rng.choice(_OPENERS)} {rng.choice(_TOPICS)}.{rng.choice(_CLOSERS)}".strip()


class SchemaSampler:
    """Builds a value that satisfies a (pydantic-generated) JSON Schema, drawn from a seeded RNG."""

    def __init__(self, root: dict[str, Any], rng: random.Random) -> None:
        self.root = root
        self.rng = rng

    def sample(self, schema: dict[str, Any] | None = None) -> Any:
        schema = self.root if schema is None else schema
        if "$ref" in schema:
            name = schema["$ref"].rsplit("/", 1)[-1]
            return self.sample(self.root.get("$defs", {})[name])
        if "const" in schema:
            return schema["const"]
        if "enum" in schema:
            return self.rng.choice(schema["enum"])
        for combinator in ("anyOf", "oneOf"):
            if combinator in schema:
                options = [s for s in schema[combinator] if s.get("type") != "null"] or schema[combinator]
                return self.sample(options[0])
        if "allOf" in schema:
            return self.sample(schema["allOf"][0])
        kind = schema.get("type", "string")
        if kind == "object":
            props = schema.get("properties", {})
            return {name: self.sample(sub) for name, sub in props.items()}
        if kind == "array":
            low = schema.get("minItems", 1)
            high = max(low, min(schema.get("maxItems", 3), low + 2))
            return [self.sample(schema.get("items", {})) for _ in range(self.rng.randint(low, high))]
        if kind == "integer":
            return self.rng.randint(int(schema.get("minimum", 0)), int(schema.get("maximum", 10)))
        if kind == "number":
            return round(self.rng.uniform(schema.get("minimum", 0.0), schema.get("maximum", 1.0)), 3)
        if kind == "boolean":
            return self.rng.random() < 0.25
        text = _sentence(self.rng)
        return text[: schema["maxLength"]] if "maxLength" in schema else text


class FakeChatBackend(Backend):
    """Answers instantly from a hash of the request; never a default, only for tests and benchmarks."""

    def __init__(
        self,
        latency: float = 0.0,
        error_rate: float = 0.0,
        malformed_rate: float = 0.0,
        garbage_rate: float = 0.0,
        max_in_flight: int = 64,
        timeout_s: float = 30.0,
    ) -> None:
        self.name = "fake"
        self.latency = latency
        self.error_rate = error_rate
        self.malformed_rate = malformed_rate
        self.garbage_rate = garbage_rate
        self.max_in_flight = max_in_flight
        self.timeout_s = timeout_s
        self._attempts: Counter[str] = Counter()
        self.in_flight = 0
        self.peak_in_flight = 0

    async def generate(self, request: ModelRequest) -> ModelReply:
        key = request.key()
        attempt = self._attempts[key]
        self._attempts[key] += 1
        fault = _stable_rng(key, attempt, "fault").random()
        self.in_flight += 1
        self.peak_in_flight = max(self.peak_in_flight, self.in_flight)
        try:
            if self.latency:
                await asyncio.sleep(self.latency)
        finally:
            self.in_flight -= 1
        if fault < self.error_rate:
            raise TransientModelError(f"fake: injected transient failure (attempt {attempt})")
        rng = _stable_rng(key, "answer")
        text = self._answer(request, rng, fault - self.error_rate)
        prompt_tokens = sum(len(m.content.split()) for m in request.messages)
        return ModelReply(text=text, prompt_tokens=prompt_tokens, completion_tokens=len(text.split()))

    def _answer(self, request: ModelRequest, rng: random.Random, roll: float) -> str:
        if request.json_schema is None:
            return _sentence(rng)
        if roll < self.garbage_rate:
            return "Sorry, I would rather just chat than fill in forms."
        payload = json.dumps(SchemaSampler(request.json_schema, rng).sample())
        if roll < self.garbage_rate + self.malformed_rate:
            # Prose around the object and a trailing comma: broken, but mendable.
            return f"Sure! Here it is:\n```json\n{payload[:-1]},}}\n```"
        return payload
