"""One line (and sometimes a few more) saying what an event was, as a person reads a timeline."""

from __future__ import annotations

from collections.abc import Callable

#: Events that make a timeline unreadable and say nothing a person asked for, unless asked by `--kind`.
QUIET_KINDS = {"tick", "model_call", "memory_retrieved", "batch_unit", "importance_scored"}


def _plan(e: dict) -> str:
    items = e.get("items", [])
    shown = "; ".join(f"{i['start'][11:16]} {i['description']} @ {i['place']}" for i in items[:4])
    more = f" (+{len(items) - 4} more)" if len(items) > 4 else ""
    return f"{e['level']} plan: {shown}{more}"


def _forked(origin: dict | None) -> str:
    if not origin:
        return ""
    edits = "; ".join(origin["edits"]) or "no edits"
    return f", forked from {origin['parent_run']} at {origin['at'][:16].replace('T', ' ')} ({edits})"


def _memory(e: dict) -> str:
    m = e["memory"]
    return f"remembers [{m['kind']}, importance {m['importance']}]: {m['text']}"


def _reflection(e: dict) -> str:
    lines = [f"reflects ({len(e['insights'])} insights from {len(e['questions'])} questions)"]
    lines += [f"  • {i['text']}  ← cites {', '.join(i['evidence']) or 'nothing'}" for i in e["insights"]]
    return "\n".join(lines)


_DESCRIBE: dict[str, Callable[[dict], str]] = {
    "run_started": lambda e: f"run {e['run_id']} of {e['scenario']} on {e['model']}" + _forked(e.get("fork")),
    "run_ended": lambda e: f"run {e['status']} after {e['ticks']} ticks {e.get('detail') or ''}".rstrip(),
    "tick": lambda e: "tick closed",
    "move": lambda e: f"walks from {e['origin']} to {e['destination']}",
    "activity_started": lambda e: f"starts {e['activity']}: {e['description']} @ {e['place']}",
    "activity_ended": lambda e: f"ends {e['activity']} ({e['outcome']})",
    "object_state": lambda e: f"{e['object']} @ {e['place']} is now {e['state']}",
    "plan": _plan,
    "reaction": lambda e: f"notices {e['other']}: {e['decision']} — {e.get('reason', '')}".rstrip(" —"),
    "relationship": lambda e: f"about {e['other']}: {e['summary']}",
    "probe_answer": lambda e: f"asked \"{e['question']}\" answers: {e['answer']}",
    "conversation_started": lambda e: f"conversation {e['conversation_id']} starts @ {e['place']}",
    "utterance": lambda e: f"{e['speaker']}: {e['text']}",
    "conversation_ended": lambda e: f"conversation {e['conversation_id']} ends ({e['reason']}, {e['lines']} lines)",
    "model_call": lambda e: f"model call {e['purpose']} ({e['prompt_tokens']}+{e['completion_tokens']} tokens)",
    "model_retry": lambda e: f"model retry {e['purpose']} #{e['attempt'] + 1}: {e['reason']} {e['detail']}",
    "model_repair": lambda e: f"model output repaired ({e['purpose']})",
    "model_fallback": lambda e: f"model fallback {e['purpose']}: {e['reason']}",
    "memory_added": _memory,
    "importance_scored": lambda e: f"scored {len(e['scores'])} memories: {e['scores']}",
    "memory_retrieved": lambda e: f"recalls {len(e['results'])} of {e['candidates']} for \"{e['query']}\"",
    "reflection": _reflection,
    "session_started": lambda e: f"{e.get('loop', 'roleplay')} {e['session_id']} starts: {e['task']}",
    "session_message": lambda e: f"{e['speaker']} ({e['role']}{', ' + e['part'] if e.get('part') else ''}): "
                                 f"{e['content']}",
    "critic_choice": lambda e: f"critic picks candidate {e['chosen'] + 1} of {len(e['candidates'])}: {e['reason']}",
    "session_ended": lambda e: f"{e['session_id']} ends ({e['reason']}, {e['messages']} messages)",
    "tasks_brainstormed": lambda e: f"tasks for {e['assistant_role']} × {e['user_role']}: {len(e['tasks'])}",
    "batch_unit": lambda e: f"unit {e['unit']} written",
    "warning": lambda e: f"warning: {e['message']}",
    "error": lambda e: f"error: {e['message']}",
}


KNOWN_KINDS = frozenset(_DESCRIBE)


def describe(event: dict) -> str:
    """What happened, in words; an unknown kind (a newer log) shows its kind and fields."""
    known = _DESCRIBE.get(event.get("kind", ""))
    try:
        return known(event) if known else f"{event.get('kind')}: {event}"
    except (KeyError, TypeError, IndexError):
        return f"{event.get('kind')}: {event}"
