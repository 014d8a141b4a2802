"""Reading turns: is there an instruction, is it only courtesy; and the stop rules, checked after every message."""

from __future__ import annotations

import re
from collections.abc import Callable

from pydantic import BaseModel

from agents.cognition.lines import repeats
from agents.roleplay.records import EndReason, Side
from agents.roleplay.setup import RoleplayOptions

#: A label line such as `Instruction:`, `**Instruction:**` or `- instruction -`, as small models write them.
_LABEL = r"^[\s*#>_-]*{name}[*_]*(?:\s*:|\s+-\s)"
_INSTRUCTION = re.compile(_LABEL.format(name="instruction"), re.I | re.M)
_INPUT = re.compile(_LABEL.format(name="input"), re.I | re.M)
_SOLUTION = re.compile(_LABEL.format(name="solution"), re.I | re.M)
_COURTESY = re.compile(
    r"\b(thanks?|thank you|you'?re welcome|good ?bye|bye|farewell|take care|my pleasure|cheers|"
    r"have a (great|nice|good|wonderful) (day|one)|glad (i|to) (could )?help|happy to help)\b", re.I)
_NEXT_REQUEST = re.compile(r"next request\.?", re.I)
#: A courtesy message says little else.
COURTESY_MAX_WORDS = 20


class Turn(BaseModel):
    """One message of a session's transcript."""

    role: Side
    speaker: str
    content: str
    part: str = ""


def instruction_of(text: str) -> str:
    """The instruction a message gives ("" when none): the text after an `Instruction:` label, up to `Input:`."""
    found = _INSTRUCTION.search(text)
    if found is None:
        return ""
    rest = text[found.end():]
    cut = _INPUT.search(rest)
    body = (rest[: cut.start()] if cut else rest).strip().strip("*").strip()
    return "" if body.lower().rstrip(".") in {"", "none", "n/a"} else body


def solution_of(text: str) -> str:
    """The answer part of an assistant message, without its label and the closing `Next request.`."""
    found = _SOLUTION.search(text)
    body = text[found.end():] if found else text
    return _NEXT_REQUEST.sub("", body).strip().strip("*").strip()


def without_own_answer(text: str, keep: str = "") -> str:
    """A user message up to a `Solution:` label: the user instructs, and small models go on to answer too.

    `keep` (the done token) survives the cut: a user that answers itself and declares the task done has
    still declared it done.
    """
    found = _SOLUTION.search(text)
    if found is None or found.start() == 0:
        return text.strip()
    kept = text[: found.start()].strip()
    return f"{kept}\n{keep}" if keep and keep in text[found.start():] and keep not in kept else kept


def is_courtesy(text: str) -> bool:
    """Thanks, goodbyes and the like with next to nothing else in the message."""
    if instruction_of(text) or not _COURTESY.search(text):
        return False
    return len(_NEXT_REQUEST.sub("", text).split()) <= COURTESY_MAX_WORDS


_FIXED_WORDS = re.compile(r"\b(instruction|input|solution)\s*:|next request\.?|\binput\s*:\s*none\b", re.I)
#: Messages shorter than this (without the fixed labels) are never called repeats: short distinct steps look alike.
REPEAT_MIN_WORDS = 6


def repeats_earlier(turns: list[Turn]) -> bool:
    """The latest message says again what an earlier one said, labels aside (an echo of either side)."""
    said = _FIXED_WORDS.sub(" ", turns[-1].content)
    if len(said.split()) < REPEAT_MIN_WORDS:
        return False
    return repeats(said, [(t.speaker, _FIXED_WORDS.sub(" ", t.content)) for t in turns[:-1]])


def _trailing(turns: list[Turn], test: Callable[[Turn], bool]) -> int:
    """How many of the last turns in a row pass `test`."""
    count = 0
    for turn in reversed(turns):
        if not test(turn):
            break
        count += 1
    return count


def flips_role(turn: Turn) -> bool:
    """An assistant that gives instructions has swapped places with its user (CAMEL's role flipping)."""
    return turn.role == "assistant" and bool(instruction_of(turn.content))


def stop_reason(turns: list[Turn], rules: RoleplayOptions, tokens: int) -> EndReason | None:
    """The rule the transcript has just broken, if any, checked in a fixed order after each message."""
    if not turns:
        return None
    last = turns[-1]
    if last.role == "user" and rules.done_token in last.content:
        return "task_done"
    if rules.stop_on_repetition and repeats_earlier(turns):
        return "repetition"
    flips = sum(1 for t in turns if flips_role(t))
    if flips >= rules.role_flips:
        return "role_flip"
    users = [t for t in turns if t.role == "user"]
    if _trailing(users, lambda t: not instruction_of(t.content)) >= rules.no_instruction_turns:
        return "no_instruction"
    if _trailing(turns, lambda t: is_courtesy(t.content)) >= rules.courtesy_repeats:
        return "courtesy_loop"
    if len(turns) >= rules.max_messages:
        return "max_messages"
    if tokens >= rules.max_tokens:
        return "token_limit"
    return None


def _clip(text: str, words: int) -> str:
    taken = text.split()
    return " ".join(taken[:words]) + (" …" if len(taken) > words else "")


#: Earlier steps the running summary lists; older ones are only counted.
SUMMARY_STEPS = 6
SUMMARY_WORDS = 18


def numbered_brief(items: list[str]) -> str:
    """The last SUMMARY_STEPS items, numbered from the start and clipped; older ones only counted."""
    shown = [f"{i}. {_clip(item, SUMMARY_WORDS)}" for i, item in enumerate(items, 1)][-SUMMARY_STEPS:]
    dropped = len(items) - len(shown)
    return "\n".join(([f"({dropped} earlier)"] if dropped > 0 else []) + shown)


def running_summary(turns: list[Turn]) -> str:
    """Earlier steps in a few words each (instruction, then the answer's first sentence); bounded however long."""
    steps: list[str] = []
    for i, turn in enumerate(turns):
        if turn.role != "user":
            continue
        asked = instruction_of(turn.content) or turn.content
        answer = next((t.content for t in turns[i + 1:i + 2] if t.role == "assistant"), "")
        first = re.split(r"(?<=[.!?])\s", solution_of(answer), maxsplit=1)[0] if answer else "(no answer yet)"
        steps.append(f"- asked: {_clip(asked, SUMMARY_WORDS)} / answered: {_clip(first, SUMMARY_WORDS)}")
    dropped = len(steps) - SUMMARY_STEPS
    shown = steps[-SUMMARY_STEPS:]
    return "\n".join(([f"- ({dropped} earlier steps done)"] if dropped > 0 else []) + shown)
