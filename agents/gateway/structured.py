"""Turns model text into a pydantic object: strict first, then mended, else a readable reason."""

from __future__ import annotations

import json
from typing import Any, TypeVar

import json_repair
from pydantic import BaseModel, ValidationError

from agents.gateway.types import ChatMessage

T = TypeVar("T", bound=BaseModel)


class ParseOutcome(BaseModel):
    """The parsed value (if any), whether it needed mending, and the mended JSON or the error."""

    value: Any = None
    repaired: bool = False
    repaired_text: str = ""
    error: str = ""


def schema_instruction(schema: dict[str, Any]) -> str:
    """Our words asking for bare JSON; kept beside the schema so weak models see the shape."""
    return (
        "Answer with a single JSON object and nothing else: no prose, no code fences. "
        f"It must validate against this JSON Schema:\n{json.dumps(schema, separators=(',', ':'))}"
    )


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
        return ParseOutcome(error=_describe(exc))
    return ParseOutcome(value=value, repaired=True, repaired_text=json.dumps(mended))
