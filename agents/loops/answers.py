"""Final answers read out of free text and put in one canonical form, so that equal answers vote together."""

from __future__ import annotations

import re
from collections import Counter

_ANSWER = re.compile(r"(?:final\s+)?answer\s*(?:is)?\s*[:=]\s*(.+)", re.I)
_NUMBER = re.compile(r"[-+]?\$?\d[\d,]*(?:\.\d+)?%?|[-+]?\$?\.\d+%?")


def final_answer(text: str) -> str | None:
    """What follows the last `Answer:` label (its first line), or None when the text gives no final answer."""
    found = _ANSWER.findall(text)
    if not found:
        return None
    answer = found[-1].strip().splitlines()[0].strip().strip("*").strip()
    return answer or None


def normalise(answer: str) -> str:
    """Case, spacing and trailing marks dropped; a short answer with one number becomes that number, canonical."""
    text = " ".join(answer.lower().strip().strip("*`'\"").rstrip(".!").split())
    numbers = _NUMBER.findall(text)
    if len(numbers) == 1 and len(text.split()) <= 4:
        value = float(numbers[0].replace("$", "").replace(",", "").replace("%", ""))
        return str(int(value)) if value.is_integer() else repr(value)
    return text


def majority(answers: list[str]) -> tuple[str, int]:
    """The most common answer and its count; a tie goes to the answer given first (sample order is fixed)."""
    counts = Counter(answers)
    best = max(counts.values())
    return next(a for a in answers if counts[a] == best), best
