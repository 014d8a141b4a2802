"""Self-* loop sessions become training records, each loop in the shape its data is used in."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel

from agents.loops.answers import final_answer, normalise
from agents.loops.base import PLACEHOLDER
from worlds.events import SessionEnded, SessionMessage, SessionStarted

HarvestFormat = Literal["openai", "sharegpt"]


class LoopHarvestOptions(BaseModel):
    """Choices a corpus maker has over loop records."""

    with_thoughts: bool = False  # Self-Align: keep the principle-naming thoughts before the answer
    min_p_true: float | None = None  # Self-Eval: keep answers the model itself rates at least this likely
    failing_code: bool = False  # Self-Debug: keep sessions whose code never passed its tests too


#: Ends that leave nothing worth training on: the session broke off or never had its model.
FAILED_ENDS = {"model_failure", "context_limit", "interrupted", "run_ended"}



def chat_record(system: str, pairs: list[tuple[str, str]], fmt: HarvestFormat) -> dict:
    """Messages in the chosen format: `pairs` are (user|assistant, text) after the system prompt."""
    if fmt == "openai":
        return {"messages": [{"role": "system", "content": system}]
                + [{"role": role, "content": text} for role, text in pairs]}
    return {"system": system,
            "conversations": [{"from": "gpt" if role == "assistant" else "human", "value": text} for role, text in pairs]}


def _dialogue(turns: list[SessionMessage]) -> list[tuple[str, str]]:
    """The loop as a conversation (task, draft, feedback, draft ...), ending on the actor's last word."""
    pairs = [(t.role, t.content) for t in turns]
    while pairs and pairs[-1][0] == "user":
        pairs.pop()
    return pairs


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
        p_true = result.get("p_true")
        if options.min_p_true is not None and (p_true is None or p_true < options.min_p_true):
            return []
        return [[("user", task), ("assistant", result["answer"])]] if result.get("answer") not in (None, "", PLACEHOLDER) \
            else []
    if start.loop == "self_align":
        answer = result.get("answer", "")
        shown = f"Thoughts: {result['thoughts']}\n\nAnswer: {answer}" if options.with_thoughts and result.get(
            "thoughts") else answer
        return [[("user", task), ("assistant", shown)]] if answer and answer != PLACEHOLDER else []
    if start.loop == "self_instruct":
        return [[("user", f"{t['instruction']}\n\n{i['input']}".strip()), ("assistant", i["output"])]
                for t in result.get("pool", []) for i in t["instances"]]
    return []


def loop_records(start: SessionStarted, turns: list[SessionMessage], end: SessionEnded, fmt: HarvestFormat,
                 options: LoopHarvestOptions, metadata: dict[str, Any] | None) -> list[dict]:
    """Corpus records for one loop session; the system prompt names the actor's role."""
    # Self-Instruct's data is for a general assistant, not for the role that wrote it.
    role = "assistant" if start.loop == "self_instruct" else start.assistant_role.lower()
    system = f"You are {start.assistant_agent or 'a helpful ' + role}."
    records = []
    for pairs in loop_pairs(start, turns, end, options):
        record = chat_record(system, pairs, fmt)
        if metadata is not None:
            scores = {k: end.result[k] for k in ("p_true", "agreement", "passed", "correct", "iterations", "tries")
                      if k in end.result}
            record["metadata"] = {**metadata, "kind": start.loop, "loop_result": scores}
        records.append(record)
    return records
