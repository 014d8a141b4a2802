"""Turns model text into a pydantic object: strict first, then mended, else a readable reason."""

from __future__ import annotations

import json
from typing import Any, TypeVar

import json_repair
from pydantic import BaseModel, ValidationError

from agents.gateway.schema_walk import Schema, walk
from agents.gateway.types import ChatMessage

T = TypeVar("T", bound=BaseModel)


class ParseOutcome(BaseModel):
    """The parsed value (if any), whether it needed mending, and the mended JSON or the error."""

    value: Any = None
    repaired: bool = False
    repaired_text: str = ""
    error: str = ""


class _Placeholders:
    """Skeleton leaves: the first enum value, one array item, and a neutral value per scalar type."""

    def pick(self, values: list[Any]) -> Any:
        return values[0]

    def count(self, node: Schema) -> int:
        return 1

    def scalar(self, kind: str, node: Schema) -> Any:
        return {"integer": 0, "number": 0.0, "boolean": False}.get(kind, "...")


def skeleton(schema: Schema) -> Any:
    """An example value in the schema's shape: small models copy a shape better than they read a schema."""
    return walk(schema, _Placeholders())


def with_schema_instruction(
    messages: list[ChatMessage], schema: dict[str, Any], enforced: bool
) -> list[ChatMessage]:
    """Ask for bare JSON at the end of the last user turn; spell out the schema only if the backend won't enforce it."""
    shape = json.dumps(skeleton(schema))
    ask = f"\n\nReply with only a JSON object shaped like {shape}."
    if not enforced:
        ask += f" It must validate against this JSON Schema: {json.dumps(schema, separators=(',', ':'))}"
    last_user = max((i for i, m in enumerate(messages) if m.role == "user"), default=None)
    if last_user is None:
        return [*messages, ChatMessage(role="user", content=ask.strip())]
    amended = ChatMessage(role="user", content=messages[last_user].content + ask)
    return [*messages[:last_user], amended, *messages[last_user + 1 :]]


def correction(error: str) -> ChatMessage:
    """The follow-up turn sent after unusable output."""
    return ChatMessage(
        role="user",
        content=f"That answer could not be used ({error}). Reply again with only the JSON object the schema describes.",
    )


def _describe(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors()[:3]:
        where = ".".join(str(p) for p in err["loc"]) or "(root)"
        parts.append(f"{where}: {err['msg']}")
    return "; ".join(parts)


def parse_structured(text: str, schema: type[T]) -> ParseOutcome:
    """Validate strictly; failing that, mend the JSON (fences, prose, commas, quotes) and validate again."""
    try:
        return ParseOutcome(value=schema.model_validate_json(text))
    except ValidationError as strict_error:
        first_error = _describe(strict_error)
    mended = json_repair.loads(text)
    if isinstance(mended, list) and len(mended) == 1:
        mended = mended[0]
    if not isinstance(mended, dict) or not mended:
        return ParseOutcome(error=f"no JSON object found ({first_error})")
    try:
        value = schema.model_validate(mended)
    except ValidationError as exc:
        trimmed = _without_unfinished_items(mended, exc)
        if trimmed is None:
            return ParseOutcome(error=_describe(exc))
        try:
            value = schema.model_validate(trimmed)
        except ValidationError:
            return ParseOutcome(error=_describe(exc))
        mended = trimmed
    return ParseOutcome(value=value, repaired=True, repaired_text=json.dumps(mended))


def _without_unfinished_items(data: dict[str, Any], error: ValidationError) -> dict[str, Any] | None:
    """A reply cut off by the token limit ends in a half-written list item; drop it if that is all that is wrong.

    Returns None unless every error points into the last item of one top-level list.
    """
    places = {tuple(err["loc"][:2]) for err in error.errors()}
    if len(places) != 1 or len(next(iter(places))) != 2:
        return None
    ((key, index),) = places
    items = data.get(key) if isinstance(key, str) else None
    if not isinstance(items, list) or index != len(items) - 1 or len(items) < 2:
        return None
    return {**data, key: items[:-1]}
