"""`simulacra inspect`: a run's timeline in the terminal, per agent or all together, or its events as JSONL."""

from __future__ import annotations

import json
import sys
from datetime import datetime

from rich.console import Console
from rich.markup import escape
from rich.rule import Rule

from memory.errors import InputError
from worlds.runfolder import RunFolder
from worlds.scenario import Scenario, load_any
from worlds.clock import Clock
from worlds.timeline.describe import KNOWN_KINDS, QUIET_KINDS, describe
from worlds.timeline.select import EventFilter, select

_COLOURS = {"utterance": "cyan", "session_message": "cyan", "plan": "green", "memory_added": "magenta",
            "reflection": "bold magenta", "probe_answer": "bold yellow", "reaction": "blue", "warning": "yellow",
            "error": "red", "model_retry": "red", "model_fallback": "red", "model_repair": "yellow"}


def checked_filter(folder: RunFolder, agents: list[str], kinds: list[str], start: str | None, end: str | None,
                   grep: str | None, dialogue: str | None) -> EventFilter:
    """The filter, with its names and times checked against the run (an unknown agent or a time outside: exit 2)."""
    scenario = load_any(folder.scenario_path)
    if isinstance(scenario, Scenario):
        known = {p.name for p in scenario.agents}
        for name in agents:
            if name not in known:
                raise InputError(f"--agent: no agent {name!r} in this run; its agents are {', '.join(sorted(known))}")
    unknown = sorted(set(kinds) - KNOWN_KINDS)
    if unknown:
        raise InputError(f"--kind: no event kind {', '.join(map(repr, unknown))}; kinds are {', '.join(sorted(KNOWN_KINDS))}")
    clock = scenario.clock if isinstance(scenario, Scenario) else None
    times = [None if value is None else run_moment(option, value, clock)
             for option, value in (("--from", start), ("--to", end))]
    return EventFilter(agents=agents, kinds=kinds, start=times[0], end=times[1], grep=grep, dialogue=dialogue)


def run_moment(option: str, value: str, clock: Clock | None) -> datetime:
    """An ISO time given on the command line, in the run's own terms (its time zone, inside its clock)."""
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise InputError(f"{option}: {value!r} is not an ISO time such as 2023-02-13T09:00") from None
    if clock is None:
        return moment
    if (moment.utcoffset() is None) != (clock.start.utcoffset() is None):
        zone = "with a time zone" if clock.start.utcoffset() is not None else "without a time zone"
        raise InputError(f"{option}: {value} must be given {zone}, as the run's clock is")
    if not clock.start <= moment <= clock.stop:
        raise InputError(f"{option}: {value} is outside the run ({clock.start} to {clock.stop})")
    return moment


def inspect_run(folder: RunFolder, chosen: EventFilter, as_json: bool, show_all: bool, out: Console,
                err: Console) -> int:
    """Print the chosen events; returns how many. Skipped lines are reported on `err` by number."""
    path = folder.events_path

    def skipped(number: int, why: str) -> None:
        err.print(f"[yellow]{path}:{number}: skipped: {why}[/yellow]", highlight=False)

    def shown(event: dict) -> bool:
        return show_all or bool(chosen.kinds) or event["kind"] not in QUIET_KINDS

    count = 0
    if as_json:
        try:
            for event in select(path, chosen, skipped):
                sys.stdout.write(json.dumps(event, ensure_ascii=False) + "\n")
                count += 1
        except BrokenPipeError:  # the reader (`head`, say) has all it wanted
            sys.stderr.close()
        return count
    groups = [[name] for name in chosen.agents] or [[]]
    for agents in groups:  # one pass per agent: a timeline each, and memory stays flat
        if agents:
            out.print(Rule(f"[bold]{escape(agents[0])}[/bold]"))
        per = chosen.model_copy(update={"agents": agents})
        for event in select(path, per, skipped if agents == groups[0] else lambda *_: None):
            if not shown(event):
                continue
            count += 1
            who = "" if agents else f" [dim]{escape(', '.join(event.get('agents') or []))}[/dim]"
            colour = _COLOURS.get(event["kind"], "white")
            when = (event.get("sim_time") or "")[:16].replace("T", " ")
            out.print(f"[dim]{when}[/dim]{who} [{colour}]{escape(describe(event))}[/{colour}]", highlight=False)
    if count == 0:
        err.print("[yellow]no event matches[/yellow]")
    return count
