"""Self-* loop sessions become training samples, each loop in the shape its data is used in."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from agents.loops.answers import final_answer, normalise
from agents.loops.base import PLACEHOLDER
from worlds.corpus.samples import Sample
from worlds.events import SessionEnded, SessionMessage, SessionStarted


class LoopHarvestOptions(BaseModel):
    """Choices a corpus maker has over loop records (Self-Eval's P(True) cut is a harvest filter)."""

    with_thoughts: bool = False  # Self-Align: keep the principle-naming thoughts before the answer
    failing_code: bool = False  # Self-Debug: keep sessions whose code never passed its tests too


#: Ends that leave nothing worth training on: the session broke off or never had its model.
FAILED_ENDS = {"model_failure", "context_limit", "interrupted", "run_ended"}
#: The figures a loop's result carries that its records' metadata repeats.
_RESULT_FIGURES = ("p_true", "agreement", "passed", "correct", "iterations", "tries")


def _dialogue(turns: list[SessionMessage]) -> list[tuple[str, str]]:
    """The loop as a conversation (task, draft, feedback, draft ...), ending on the actor's last word."""
    pairs = [(t.role, t.content) for t in turns]
    while pairs and pairs[-1][0] == "user":
        pairs.pop()
    return pairs


def instruct_rows(result: dict[str, Any]) -> list[tuple[str, str, str]]:
    """Self-Instruct's pool as (instruction, input, output), one per instance."""
    return [(task["instruction"], instance["input"], instance["output"])
            for task in result.get("pool", []) for instance in task["instances"]]


def loop_pairs(start: SessionStarted, turns: list[SessionMessage], end: SessionEnded,
               options: LoopHarvestOptions) -> list[list[tuple[str, str]]]:
    """The training conversations one loop session gives (none when its result is not worth keeping)."""
    result: dict[str, Any] = end.result
    task = start.task
    if end.reason in FAILED_ENDS:
        return []
    if start.loop == "self_debug" and not (result.get("passed") or options.failing_code):
        return []
    by_part = {part: [t.content for t in turns if t.part == part] for part in {t.part for t in turns}}
    if start.loop in ("self_refine", "self_debug"):
        dialogue = _dialogue(turns)
        return [dialogue] if len(dialogue) >= 2 and all(text != PLACEHOLDER for _, text in dialogue) else []
    if start.loop == "self_consistency":
        vote = result.get("answer")
        agreeing = [s for s in by_part.get("sample", []) if (a := final_answer(s)) is not None and normalise(a) == vote]
        return [[("user", task), ("assistant", agreeing[0])]] if vote is not None and agreeing else []
    if start.loop == "self_eval":
        return [[("user", task), ("assistant", result["answer"])]] if result.get("answer") not in (None, "", PLACEHOLDER) \
            else []
    if start.loop == "self_align":
        answer = result.get("answer", "")
        shown = f"Thoughts: {result['thoughts']}\n\nAnswer: {answer}" if options.with_thoughts and result.get(
            "thoughts") else answer
        return [[("user", task), ("assistant", shown)]] if answer and answer != PLACEHOLDER else []
    if start.loop == "self_instruct":
        return [[("user", f"{instruction}\n\n{given}".strip()), ("assistant", output)]
                for instruction, given, output in instruct_rows(result)]
    return []


def loop_system(start: SessionStarted) -> str:
    """The system prompt names the actor's role; Self-Instruct's data is for a general assistant."""
    role = "assistant" if start.loop == "self_instruct" else start.assistant_role.lower()
    return f"You are {start.assistant_agent or 'a helpful ' + role}."


def loop_samples(start: SessionStarted, turns: list[SessionMessage], end: SessionEnded,
                 options: LoopHarvestOptions, metadata: dict[str, Any] | None) -> list[Sample]:
    """Training samples for one loop session, each with the loop's result figures in its metadata."""
    system = loop_system(start)
    if metadata is not None:
        metadata = {**metadata, "kind": start.loop,
                    "loop_result": {k: end.result[k] for k in _RESULT_FIGURES if k in end.result}}
    split = instruct_rows(end.result) if start.loop == "self_instruct" and end.reason not in FAILED_ENDS else []
    samples = []
    for number, pairs in enumerate(loop_pairs(start, turns, end, options)):
        samples.append(Sample(system=system, turns=pairs, metadata=metadata,
                              instruction=split[number][:2] if split else None))
    return samples
