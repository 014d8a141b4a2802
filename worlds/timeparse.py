"""Durations like `10m`, `1h30m`, `90s` and moments like `+2h`, used by scenarios and the CLI."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Annotated

from pydantic import BeforeValidator, Field, PlainSerializer

_PART = re.compile(r"(\d+(?:\.\d+)?)\s*(d|h|m|s)")
_UNITS = {"d": "days", "h": "hours", "m": "minutes", "s": "seconds"}


def parse_duration(value: object) -> timedelta:
    """Accept `90s`, `10m`, `1h30m`, `2d`, a timedelta, or a number of seconds."""
    if isinstance(value, timedelta):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if not value >= 0:  # negative, or NaN
            raise ValueError(f"{value!r} is not a duration; write it like 90s, 10m, 1h or 1h30m")
        try:
            return timedelta(seconds=value)
        except OverflowError:  # .inf, 1e20
            raise ValueError(f"{value!r} is too long a duration") from None
    text = str(value).strip().lower().replace(" ", "")
    if not text or _PART.sub("", text):
        raise ValueError(f"{value!r} is not a duration; write it like 90s, 10m, 1h or 1h30m")
    total = timedelta()
    try:
        for amount, unit in _PART.findall(text):
            total += timedelta(**{_UNITS[unit]: float(amount)})
    except OverflowError:  # 99999999999d
        raise ValueError(f"{value!r} is too long a duration") from None
    return total


def parse_moment(value: str, start: datetime) -> datetime:
    """An absolute ISO time, or `+DURATION` counted from `start`."""
    text = value.strip()
    if text.startswith("+"):
        return start + parse_duration(text[1:])
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"{value!r} is neither an ISO time (2023-02-13T09:00) nor +DURATION (+2h)") from None


def format_duration(value: timedelta) -> str:
    """The inverse of parse_duration, so resolved scenarios read back the same."""
    seconds = value // timedelta(seconds=1)
    hours, minutes, secs = seconds // 3600, seconds % 3600 // 60, seconds % 60
    # Keep sub-second parts (`1.5s`): dropping them made `0.5s` read back as the invalid `0s`.
    fraction = f"{value.microseconds / 1e6:.6f}".rstrip("0")[1:] if value.microseconds else ""
    parts = ((hours, "h", ""), (minutes, "m", ""), (secs, "s", fraction))
    return "".join(f"{n}{frac}{unit}" for n, unit, frac in parts if n or frac) or "0s"


#: A timedelta written as `10m`, `1h30m` or `90s` in scenario files.
Duration = Annotated[
    timedelta,
    BeforeValidator(parse_duration),
    PlainSerializer(format_duration, return_type=str),
    Field(json_schema_extra={"type": "string", "examples": ["10m", "1h30m", "90s"]}),
]
