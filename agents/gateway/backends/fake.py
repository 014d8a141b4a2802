"""A deterministic offline test double: schema-valid answers, optional latency and injected faults."""

from __future__ import annotations

import asyncio
import json
import random
from collections import Counter
from typing import Any

from agents.gateway.backends.base import Backend
from agents.gateway.errors import TransientModelError
from agents.gateway.schema_walk import Schema, walk
from agents.gateway.types import ModelReply, ModelRequest
from agents.seeding import stable_rng

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


def _sentence(rng: random.Random) -> str:
    return f"{rng.choice(_OPENERS)} {rng.choice(_TOPICS)}.{rng.choice(_CLOSERS)}".strip()


class SchemaSampler:
    """Random leaves from a seeded RNG within the schema's bounds: any enum value, 1-3 items, sentences."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng

    def pick(self, values: list[Any]) -> Any:
        return self.rng.choice(values)

    def count(self, node: Schema) -> int:
        low = node.get("minItems", min(1, node.get("maxItems", 1)))
        high = max(low, min(node.get("maxItems", 3), low + 2))
        return self.rng.randint(low, high)

    def scalar(self, kind: str, node: Schema) -> Any:
        if kind == "integer":
            low = int(node.get("minimum", node.get("exclusiveMinimum", -1) + 1))
            high = int(node.get("maximum", node.get("exclusiveMaximum", max(low, 10) + 1) - 1))
            return self.rng.randint(low, high)
        if kind == "number":
            low = node.get("minimum", 0.0)
            return round(self.rng.uniform(low, node.get("maximum", max(low, 1.0))), 3)
        if kind == "boolean":
            return self.rng.random() < 0.25
        text = _sentence(self.rng)
        while len(text) < node.get("minLength", 0):
            text += " " + _sentence(self.rng)
        return text[: node["maxLength"]] if "maxLength" in node else text


class FakeChatBackend(Backend):
    """Answers instantly from a hash of the request; never a default, only for tests and benchmarks."""

    gives_logprobs = True

    def __init__(
        self,
        latency: float = 0.0,
        error_rate: float = 0.0,
        malformed_rate: float = 0.0,
        garbage_rate: float = 0.0,
        max_in_flight: int = 64,
        timeout_s: float = 30.0,
        words: int = 0,
        context: int = 0,
    ) -> None:
        self.name = "fake"
        self.latency = latency
        self.error_rate = error_rate
        self.malformed_rate = malformed_rate
        self.garbage_rate = garbage_rate
        #: Free-text replies run to about this many words (0: one sentence), to stand in for longer answers.
        self.words = words
        #: A context window in words (0: none): longer prompts are refused as llama.cpp refuses them.
        self.context = context
        self.max_in_flight = max_in_flight
        self.timeout_s = timeout_s
        self._attempts: Counter[str] = Counter()
        self.in_flight = 0
        self.peak_in_flight = 0

    async def generate(self, request: ModelRequest) -> ModelReply:
        key = request.key()
        attempt = self._attempts[key]
        self._attempts[key] += 1
        fault = stable_rng(key, attempt, "fault").random()
        self.in_flight += 1
        self.peak_in_flight = max(self.peak_in_flight, self.in_flight)
        try:
            if self.latency:
                await asyncio.sleep(self.latency)
        finally:
            self.in_flight -= 1
        prompt_tokens = sum(len(m.content.split()) for m in request.messages)
        if self.context and prompt_tokens >= self.context:  # llama-cpp-python's rule (it shortens the reply)
            raise ValueError(f"Requested tokens ({prompt_tokens}) exceed context window of {self.context}")
        if fault < self.error_rate:
            raise TransientModelError(f"fake: injected transient failure (attempt {attempt})")
        rng = stable_rng(key, "answer")
        if request.options is not None:  # any log-probabilities, drawn from the request's seed
            text = json.dumps({o: round(-rng.uniform(0.05, 6.0), 4) for o in request.options})
            return ModelReply(text=text, prompt_tokens=prompt_tokens, completion_tokens=0)
        text = self._answer(request, rng, fault - self.error_rate)
        return ModelReply(text=text, prompt_tokens=prompt_tokens, completion_tokens=len(text.split()))

    def _answer(self, request: ModelRequest, rng: random.Random, roll: float) -> str:
        if request.json_schema is None:
            text = _sentence(rng)
            while len(text.split()) < self.words:
                text += " " + _sentence(rng)
            return text
        if roll < self.garbage_rate:
            return "Sorry, I would rather just chat than fill in forms."
        payload = json.dumps(walk(request.json_schema, SchemaSampler(rng)))
        if roll < self.garbage_rate + self.malformed_rate:
            # Prose around the object and a trailing comma: broken, but mendable.
            return f"Sure! Here it is:\n```json\n{payload[:-1]},}}\n```"
        return payload
