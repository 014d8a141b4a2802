"""The scenario file format, `simulacra validate` and `simulacra schema`.

Every kind of mistake a scenario author can make must exit 2 and name FILE:LINE: field.path, one problem
per line on stderr, never a traceback. Scenarios are small YAML strings written to `tmp_path`; expected
line numbers are computed from the text itself (see `line_of`), never hard-coded.
"""

from __future__ import annotations

import copy
import json
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from datetime import timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from worlds.cli import app
from worlds.scenario import (
    Problem,
    Scenario,
    ScenarioError,
    load_scenario,
    parse_scenario,
)
from worlds.timeparse import format_duration, parse_duration

REPO = Path(__file__).resolve().parent.parent
VALENTINES = REPO / "scenarios" / "valentines.yaml"

#: A minimal valid scenario, one field per line so every field has a line of its own.
BASE = """\
name: tiny-town
seed: 1
clock:
  start: 2023-02-13T08:00
  step: 10m
  stop: 2023-02-13T12:00
world:
  places:
    Town:
      Cafe: [counter]
      Park: [bench]
    Homes:
      Ann's flat: [bed]
      Bob's flat: [bed]
agents:
  - name: Ann
    age: 30
    home: Ann's flat
  - name: Bob
    age: 41
    home: Bob's flat
relationships:
  - a: Ann
    b: Bob
    label: neighbours
sessions:
  - type: self_refine
    at: 2023-02-13T09:00
    agent: Ann
    task: Write a poem
  - type: roleplay
    at: start
    assistant:
      agent: Bob
    user:
      role: customer
      agent: Ann
    task: Sell a bicycle
probes:
  - at: end
    ask: all
    question: How was your day?
"""


# --------------------------------------------------------------------------- helpers


def mutate(text: str, old: str, new: str) -> str:
    """`text` with the single occurrence of `old` replaced; fails loudly if the fixture drifted."""
    assert text.count(old) == 1, f"{old!r} occurs {text.count(old)} times in the scenario"
    return text.replace(old, new)


def line_of(text: str, needle: str, nth: int = 1) -> int:
    """1-based number of the line holding the `nth` occurrence of `needle`."""
    start = -1
    for _ in range(nth):
        start = text.index(needle, start + 1)
    return text[:start].count("\n") + 1


def write(tmp_path: Path, text: str | bytes, name: str = "scenario.yaml") -> Path:
    path = tmp_path / name
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


def validate(path: Path):
    """`simulacra validate PATH` in-process; the result has separate stdout and stderr."""
    result = CliRunner().invoke(app, ["validate", str(path)])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result


def problem_lines(result) -> list[str]:
    return [line for line in result.stderr.splitlines() if line.strip()]


def assert_rejected(result, path: Path, line: int, field: str, message: str = "") -> str:
    """Exit 2, nothing on stdout, and a stderr line `PATH:LINE: FIELD: ...message...`; returns that line."""
    assert result.exit_code == 2, (result.exit_code, result.stdout, result.stderr)
    assert result.stdout == ""
    assert "Traceback" not in result.stderr
    prefix = f"{path}:{line}: {field}: "
    matching = [p for p in problem_lines(result) if p.startswith(prefix)]
    assert matching, f"no problem starting {prefix!r} in:\n{result.stderr}"
    if message:
        assert any(message.lower() in p.lower() for p in matching), f"{message!r} not in {matching}"
    return matching[0]


def rejected_alone(tmp_path: Path, text: str | bytes, line: int, field: str, message: str = "") -> str:
    """Validate `text`; it must fail with exactly one problem, at LINE and FIELD."""
    path = write(tmp_path, text)
    result = validate(path)
    found = assert_rejected(result, path, line, field, message)
    assert problem_lines(result) == [found], result.stderr
    return found


def parse_lines(result, path: Path) -> list[tuple[int, str]]:
    """(line, field) of every problem line, in printed order; each line must be PATH:LINE: field: message."""
    out = []
    for text in problem_lines(result):
        match = re.match(rf"^{re.escape(str(path))}:(\d+): (.+?): .+$", text)
        assert match, f"not FILE:LINE: field: message: {text!r}"
        out.append((int(match.group(1)), match.group(2)))
    return out


# --------------------------------------------------------------------------- valid scenarios


def test_minimal_scenario_validates(tmp_path: Path) -> None:
    path = write(tmp_path, BASE)
    result = validate(path)
    assert result.exit_code == 0, result.stderr
    assert result.stderr == ""
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 1, result.stdout
    assert lines[0].startswith("ok ")
    assert "tiny-town: 2 agents, 4 places, 1 relationships, 2 sessions, 1 probes" in lines[0]
    assert "24 ticks of 10m from 2023-02-13 08:00" in lines[0]


@pytest.mark.parametrize("name", sorted(p.name for p in (REPO / "scenarios").glob("*.yaml")))
def test_every_shipped_scenario_validates(name: str) -> None:
    """Each scenario under scenarios/ loads, its data files included (role lists, inputs, seeds)."""
    result = validate(REPO / "scenarios" / name)
    assert result.exit_code == 0, result.stderr
    assert result.stdout.startswith("ok ") and result.stderr == ""


def test_the_schema_command_prints_each_kind_of_scenario() -> None:
    for kind, field in (("world", "clock"), ("society", "society"), ("loops", "loops")):
        result = CliRunner().invoke(app, ["schema", kind])
        assert result.exit_code == 0 and field in json.loads(result.stdout)["properties"]
    assert CliRunner().invoke(app, ["schema", "galaxy"]).exit_code == 2


def test_shipped_valentines_scenario_validates() -> None:
    result = validate(VALENTINES)
    assert result.exit_code == 0, result.stderr
    assert result.stderr == ""
    assert "valentines-party" in result.stdout
    assert re.search(r"\b5 agents\b", result.stdout), result.stdout
    scenario = load_scenario(VALENTINES)
    assert len(scenario.agents) == 5
    assert f"{len(scenario.agents)} agents" in result.stdout


# --------------------------------------------------------------------------- unknown fields


def test_unknown_top_level_field(tmp_path: Path) -> None:
    text = mutate(BASE, "seed: 1", "sede: 1")
    rejected_alone(tmp_path, text, line_of(text, "sede:"), "sede", "extra inputs are not permitted")


@pytest.mark.parametrize(
    ("old", "new", "needle", "field"),
    [
        ("    age: 41\n", "    aeg: 41\n", "aeg:", "agents[1].aeg"),
        ("  step: 10m\n", "  step: 10m\n  tick: 5m\n", "tick:", "clock.tick"),
        ("    label: neighbours\n", "    label: neighbours\n    since: 2020\n", "since:", "relationships[0].since"),
        ("      agent: Bob\n", "      agent: Bob\n      nmae: Bobby\n", "nmae:", "sessions[1].assistant.nmae"),
        ("    task: Write a poem\n", "    task: Write a poem\n    rounds: 2\n", "rounds:", "sessions[0].rounds"),
        ("    question: How was your day?\n", "    question: How was your day?\n    when: end\n", "when:", "probes[0].when"),
        ("  places:\n", "  areas: {}\n  places:\n", "areas:", "world.areas"),
    ],
    ids=["agent", "clock", "relationship", "session-role", "session", "probe", "world"],
)
def test_unknown_nested_field(tmp_path: Path, old: str, new: str, needle: str, field: str) -> None:
    text = mutate(BASE, old, new)
    rejected_alone(tmp_path, text, line_of(text, needle), field, "extra inputs are not permitted")


def test_typo_of_required_agent_field_reports_the_typo_and_the_missing_field(tmp_path: Path) -> None:
    text = mutate(BASE, "    home: Bob's flat", "    hoem: Bob's flat")
    path = write(tmp_path, text)
    result = validate(path)
    assert_rejected(result, path, line_of(text, "hoem:"), "agents[1].hoem", "extra inputs")
    assert_rejected(result, path, line_of(text, "- name: Bob"), "agents[1].home", "field required")
    assert len(problem_lines(result)) == 2


# --------------------------------------------------------------------------- missing fields


def test_agent_without_home(tmp_path: Path) -> None:
    text = mutate(BASE, "    home: Bob's flat\n", "")
    rejected_alone(tmp_path, text, line_of(text, "- name: Bob"), "agents[1].home", "field required")


def test_clock_without_step(tmp_path: Path) -> None:
    text = mutate(BASE, "  step: 10m\n", "")
    rejected_alone(tmp_path, text, line_of(text, "clock:"), "clock.step", "field required")


def test_clock_without_step_in_flow_style(tmp_path: Path) -> None:
    text = mutate(BASE, "clock:\n  start: 2023-02-13T08:00\n  step: 10m\n  stop: 2023-02-13T12:00\n",
                  "clock: {start: 2023-02-13T08:00, stop: 2023-02-13T12:00}\n")
    rejected_alone(tmp_path, text, line_of(text, "clock:"), "clock.step", "field required")


def test_missing_top_level_section(tmp_path: Path) -> None:
    text = mutate(BASE, "relationships:\n  - a: Ann\n    b: Bob\n    label: neighbours\n", "")
    assert "relationships" not in text  # optional: still valid
    assert validate(write(tmp_path, text, "ok.yaml")).exit_code == 0
    start = text.index("agents:")
    end = text.index("sessions:")
    text = text[:start] + text[end:]
    rejected_alone(tmp_path, text, 1, "agents", "field required")


def test_session_without_task_names_the_field_not_the_union_branch(tmp_path: Path) -> None:
    text = mutate(BASE, "    task: Write a poem\n", "")
    found = rejected_alone(tmp_path, text, line_of(text, "- type: self_refine"), "sessions[0].task", "field required")
    assert "self_refine" not in found.split(": ")[1]


# --------------------------------------------------------------------------- wrong types


def test_age_of_wrong_type(tmp_path: Path) -> None:
    text = mutate(BASE, "    age: 41", '    age: "old"')
    rejected_alone(tmp_path, text, line_of(text, "age: \"old\""), "agents[1].age", "valid integer")


@pytest.mark.parametrize(
    ("old", "new", "needle", "field", "message"),
    [
        ("seed: 1", "seed: lots", "seed:", "seed", "valid integer"),
        ("  start: 2023-02-13T08:00", "  start: soon", "start:", "clock.start", "datetime"),
        ("    age: 30", "    age: 200", "age: 200", "agents[0].age", "less than or equal to 150"),
        ("name: tiny-town", "name: tiny town", "name: tiny", "name", "pattern"),
        ("      Park: [bench]", "      Park: bench", "Park:", "world.places.Town.Park", "valid list"),
        ("    user:\n      role: customer\n      agent: Ann\n", "    user: Ann\n", "user:", "sessions[1].user",
         "valid dictionary"),
    ],
    ids=["seed", "clock-start", "age-range", "name-pattern", "objects", "session-role"],
)
def test_other_wrong_types(tmp_path: Path, old: str, new: str, needle: str, field: str, message: str) -> None:
    text = mutate(BASE, old, new)
    rejected_alone(tmp_path, text, line_of(text, needle), field, message)


def test_agents_not_a_list(tmp_path: Path) -> None:
    start, end = BASE.index("agents:"), BASE.index("relationships:")
    text = BASE[:start] + "agents: Ann and Bob\n" + BASE[end:]
    path = write(tmp_path, text)
    result = validate(path)
    assert_rejected(result, path, line_of(text, "agents:"), "agents", "valid list")


def test_probe_ask_given_a_mapping_names_the_field_not_the_union_branches(tmp_path: Path) -> None:
    text = mutate(BASE, "    ask: all", "    ask: {who: Ann}")
    path = write(tmp_path, text)
    result = validate(path)
    assert_rejected(result, path, line_of(text, "    ask:"), "probes[0].ask")
    assert {field for _, field in parse_lines(result, path)} == {"probes[0].ask"}, result.stderr


def test_session_of_unknown_type(tmp_path: Path) -> None:
    text = mutate(BASE, "  - type: self_refine", "  - type: brainstorm")
    rejected_alone(tmp_path, text, line_of(text, "- type: brainstorm"), "sessions[0]", "'brainstorm'")


# --------------------------------------------------------------------------- names that do not resolve


def test_home_that_names_no_place(tmp_path: Path) -> None:
    text = mutate(BASE, "    home: Bob's flat", "    home: Bobs flat")
    found = rejected_alone(tmp_path, text, line_of(text, "home: Bobs flat"), "agents[1].home", "unknown place 'Bobs flat'")
    assert "Bob's flat" in found  # the message lists the places there are


def test_duplicate_agent_names(tmp_path: Path) -> None:
    text = mutate(BASE, "  - name: Bob", "  - name: Ann")
    path = write(tmp_path, text)
    result = validate(path)
    assert_rejected(result, path, line_of(text, "- name: Ann", nth=2), "agents[1].name", "'Ann' is used twice")


def test_duplicate_agent_names_alone(tmp_path: Path) -> None:
    # A third agent reusing a name, appended to the list so nothing else changes.
    text = mutate(BASE, "relationships:\n", "  - name: Bob\n    home: Cafe\nrelationships:\n")
    rejected_alone(tmp_path, text, line_of(text, "- name: Bob", nth=2), "agents[2].name", "used twice")


def test_relationship_naming_unknown_agent(tmp_path: Path) -> None:
    text = mutate(BASE, "    b: Bob", "    b: Bobby")
    rejected_alone(tmp_path, text, line_of(text, "b: Bobby"), "relationships[0].b", "unknown agent 'Bobby'")


@pytest.mark.parametrize(
    ("old", "new", "needle", "field"),
    [
        ("    agent: Ann\n    task: Write", "    agent: Zed\n    task: Write", "agent: Zed", "sessions[0].agent"),
        ("      agent: Bob", "      agent: Zed", "agent: Zed", "sessions[1].assistant.agent"),
        ("      role: customer\n      agent: Ann", "      role: customer\n      agent: Zed", "agent: Zed",
         "sessions[1].user.agent"),
    ],
    ids=["self-refine", "roleplay-assistant", "roleplay-user"],
)
def test_session_naming_unknown_agent(tmp_path: Path, old: str, new: str, needle: str, field: str) -> None:
    text = mutate(BASE, old, new)
    rejected_alone(tmp_path, text, line_of(text, needle), field, "unknown agent 'Zed'")


def test_probe_asking_unknown_agent(tmp_path: Path) -> None:
    text = mutate(BASE, "    ask: all", "    ask: [Ann, Zed]")
    rejected_alone(tmp_path, text, line_of(text, "    ask:"), "probes[0].ask", "unknown agent 'Zed'")


# --------------------------------------------------------------------------- times


def test_session_at_outside_the_clock(tmp_path: Path) -> None:
    text = mutate(BASE, "    at: 2023-02-13T09:00", "    at: 2023-02-13T13:00")
    rejected_alone(tmp_path, text, line_of(text, "at: 2023-02-13T13:00"), "sessions[0].at", "outside the clock")


def test_session_at_before_the_clock(tmp_path: Path) -> None:
    text = mutate(BASE, "    at: 2023-02-13T09:00", "    at: 2023-02-12T09:00")
    rejected_alone(tmp_path, text, line_of(text, "at: 2023-02-12"), "sessions[0].at", "outside the clock")


def test_probe_at_outside_the_clock(tmp_path: Path) -> None:
    text = mutate(BASE, "  - at: end", "  - at: 2023-02-14T08:00")
    rejected_alone(tmp_path, text, line_of(text, "at: 2023-02-14"), "probes[0].at", "outside the clock")


def test_at_that_is_not_a_time(tmp_path: Path) -> None:
    text = mutate(BASE, "  - at: end", "  - at: tomorrow")
    path = write(tmp_path, text)
    result = validate(path)
    assert_rejected(result, path, line_of(text, "at: tomorrow"), "probes[0].at")
    assert {field for _, field in parse_lines(result, path)} == {"probes[0].at"}, result.stderr


def test_clock_edges_are_inside_the_clock(tmp_path: Path) -> None:
    text = mutate(BASE, "    at: 2023-02-13T09:00", "    at: 2023-02-13T08:00")
    text = mutate(text, "  - at: end", "  - at: 2023-02-13T12:00")
    assert validate(write(tmp_path, text)).exit_code == 0


def test_a_session_due_when_the_clock_stops_would_never_run(tmp_path: Path) -> None:
    """A probe may be asked at the stop time (end probes are), but a session due then never starts: say so."""
    text = mutate(BASE, "    at: 2023-02-13T09:00", "    at: 2023-02-13T12:00")
    path = write(tmp_path, text)
    assert_rejected(validate(path), path, line_of(text, "at: 2023-02-13T12:00"), "sessions[0].at",
                    "a session cannot start when the run ends")


def test_clock_that_runs_backwards(tmp_path: Path) -> None:
    text = mutate(BASE, "  stop: 2023-02-13T12:00", "  stop: 2023-02-13T07:00")
    path = write(tmp_path, text)
    result = validate(path)
    found = assert_rejected(result, path, line_of(text, "stop:"), "clock.stop", "must be after clock.start")
    assert found == problem_lines(result)[0]


def test_clock_that_stops_where_it_starts(tmp_path: Path) -> None:
    text = mutate(BASE, "  stop: 2023-02-13T12:00", "  stop: 2023-02-13T08:00")
    path = write(tmp_path, text)
    result = validate(path)
    assert_rejected(result, path, line_of(text, "stop:"), "clock.stop", "must be after clock.start")


def test_clock_mixing_time_zones_is_a_located_error_not_a_crash(tmp_path: Path) -> None:
    text = mutate(BASE, "  start: 2023-02-13T08:00", "  start: 2023-02-13T08:00+01:00")
    rejected_alone(tmp_path, text, line_of(text, "stop:"), "clock.stop", "time zone")


def test_session_with_time_zone_on_a_clock_without_is_a_located_error(tmp_path: Path) -> None:
    text = mutate(BASE, "    at: 2023-02-13T09:00", "    at: 2023-02-13T09:00Z")
    rejected_alone(tmp_path, text, line_of(text, "at: 2023-02-13T09:00Z"), "sessions[0].at", "time zone")


def test_clock_with_time_zones_throughout_validates(tmp_path: Path) -> None:
    text = mutate(BASE, "  start: 2023-02-13T08:00", "  start: 2023-02-13T08:00+01:00")
    text = mutate(text, "  stop: 2023-02-13T12:00", "  stop: 2023-02-13T12:00+01:00")
    text = mutate(text, "    at: 2023-02-13T09:00", "    at: 2023-02-13T08:30Z")
    assert validate(write(tmp_path, text)).exit_code == 0


# --------------------------------------------------------------------------- durations


@pytest.mark.parametrize(
    "step",
    ["10 minutes", "ten", "1h30", "m", '""', "-5", ".inf", ".nan", "1e20", "99999999999d", "[10m]"],
)
def test_bad_step_duration(tmp_path: Path, step: str) -> None:
    text = mutate(BASE, "  step: 10m", f"  step: {step}")
    rejected_alone(tmp_path, text, line_of(text, "step:"), "clock.step")


def test_bad_step_duration_message_shows_the_accepted_forms(tmp_path: Path) -> None:
    text = mutate(BASE, "  step: 10m", "  step: 10 minutes")
    found = rejected_alone(tmp_path, text, line_of(text, "step:"), "clock.step", "'10 minutes' is not a duration")
    assert "1h30m" in found


@pytest.mark.parametrize("step", ["0m", "0s", "0", "0h0m"])
def test_zero_step(tmp_path: Path, step: str) -> None:
    text = mutate(BASE, "  step: 10m", f"  step: {step}")
    rejected_alone(tmp_path, text, line_of(text, "step:"), "clock.step", "longer than zero")


def test_bad_cooldown_duration(tmp_path: Path) -> None:
    text = mutate(BASE, "relationships:\n", "conversation:\n  cooldown: .inf\nrelationships:\n")
    rejected_alone(tmp_path, text, line_of(text, "cooldown:"), "conversation.cooldown", "too long")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("10m", timedelta(minutes=10)),
        ("1h", timedelta(hours=1)),
        ("90s", timedelta(seconds=90)),
        ("1h30m", timedelta(hours=1, minutes=30)),
        ("1h 30m", timedelta(hours=1, minutes=30)),
        ("2d", timedelta(days=2)),
        ("10M", timedelta(minutes=10)),
        ("0.5s", timedelta(milliseconds=500)),
        ("1.5h", timedelta(minutes=90)),
        (45, timedelta(seconds=45)),
        (0.25, timedelta(milliseconds=250)),
        (timedelta(minutes=3), timedelta(minutes=3)),
    ],
)
def test_durations_that_parse(text: object, expected: timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize(
    "text", ["10 minutes", "", "m", "1h30", "h1", "-5m", -5, float("nan"), True, None, [1]]
)
def test_durations_that_do_not_parse(text: object) -> None:
    with pytest.raises(ValueError, match="not a duration"):
        parse_duration(text)


@pytest.mark.parametrize("text", [float("inf"), 1e20, "99999999999d"])
def test_durations_too_long_are_value_errors(text: object) -> None:
    with pytest.raises(ValueError, match="too long"):
        parse_duration(text)


@pytest.mark.parametrize(
    ("value", "written"),
    [
        (timedelta(minutes=10), "10m"),
        (timedelta(hours=1, minutes=30), "1h30m"),
        (timedelta(seconds=90), "1m30s"),
        (timedelta(days=2), "48h"),
        (timedelta(0), "0s"),
        (timedelta(milliseconds=500), "0.5s"),
        (timedelta(hours=1, seconds=3, milliseconds=250), "1h3.25s"),
        (timedelta(microseconds=1), "0.000001s"),
    ],
)
def test_format_duration_is_the_inverse_of_parse_duration(value: timedelta, written: str) -> None:
    assert format_duration(value) == written
    assert parse_duration(written) == value


# --------------------------------------------------------------------------- world


def test_place_in_two_areas(tmp_path: Path) -> None:
    text = mutate(BASE, "      Ann's flat: [bed]", "      Ann's flat: [bed]\n      Cafe: [sofa]")
    rejected_alone(
        tmp_path, text, line_of(text, "Cafe:", nth=2), "world.places.Homes.Cafe", "'Cafe' appears in more than one area"
    )


def test_world_without_places(tmp_path: Path) -> None:
    start, end = BASE.index("world:"), BASE.index("agents:")
    text = BASE[:start] + "world:\n  places: {}\n" + BASE[end:]
    path = write(tmp_path, text)
    result = validate(path)
    assert_rejected(result, path, line_of(text, "places:"), "world.places", "at least 1")


def test_area_named_like_a_place(tmp_path: Path) -> None:
    text = mutate(BASE, "    Homes:", "    Park:")
    rejected_alone(tmp_path, text, line_of(text, "    Park:\n"), "world.places.Park", "same name as a place")


#: Routes joining all four places of BASE, to be spliced in before `agents:`.
ROUTES = """\
  routes:
    - {a: Cafe, b: Park, minutes: 4}
    - {a: Park, b: Ann's flat, minutes: 6}
    - {a: Ann's flat, b: Bob's flat, minutes: 1}
"""


def with_world(extra: str) -> str:
    """BASE with `extra` lines added to its `world` block."""
    return mutate(BASE, "\nagents:\n", f"\n{extra}agents:\n")


def test_walk_and_routes_validate() -> None:
    scenario = parse_scenario(with_world("  walk: 90s\n" + ROUTES))
    assert scenario.world.walk == timedelta(seconds=90)
    assert [(r.a, r.b, r.minutes) for r in scenario.world.routes][0] == ("Cafe", "Park", 4)
    assert parse_scenario(BASE).world.walk == timedelta(minutes=5)


@pytest.mark.parametrize("walk", ["0s", "25h", "soon"])
def test_bad_walk(tmp_path: Path, walk: str) -> None:
    text = with_world(f"  walk: {walk}\n")
    rejected_alone(tmp_path, text, line_of(text, "walk:"), "world.walk")


@pytest.mark.parametrize(
    ("old", "new", "route", "field", "message"),
    [
        ("{a: Cafe, b: Park,", "{a: Caff, b: Park,", 0, "a", "unknown place 'Caff'"),
        ("b: Bob's flat,", "b: Bobs flat,", 2, "b", "unknown place 'Bobs flat'"),
        ("b: Bob's flat,", "b: Ann's flat,", 2, "b", "must differ from a"),
        ("minutes: 4}", "minutes: 0}", 0, "minutes", "greater than 0"),
        ("minutes: 4}", "minutes: 4, by: bus}", 0, "by", "extra inputs"),
    ],
    ids=["unknown-a", "unknown-b", "loop", "zero-minutes", "unknown-field"],
)
def test_bad_route(tmp_path: Path, old: str, new: str, route: int, field: str, message: str) -> None:
    text = mutate(with_world(ROUTES), old, new)
    path = write(tmp_path, text)
    result = validate(path)
    line = line_of(text, "    - {a: ", nth=route + 1)
    assert_rejected(result, path, line, f"world.routes[{route}].{field}", message)


def test_routes_that_leave_a_place_cut_off_name_it(tmp_path: Path) -> None:
    text = mutate(with_world(ROUTES), "    - {a: Ann's flat, b: Bob's flat, minutes: 1}\n", "")
    rejected_alone(tmp_path, text, line_of(text, "routes:"), "world.routes", "no route reaches \"Bob's flat\" from 'Cafe'")


def test_route_missing_its_minutes(tmp_path: Path) -> None:
    text = mutate(with_world(ROUTES), "b: Park, minutes: 4}", "b: Park}")
    rejected_alone(tmp_path, text, line_of(text, "b: Park}"), "world.routes[0].minutes", "field required")


# --------------------------------------------------------------------------- fields that were removed


def test_removed_move_chance_says_why(tmp_path: Path) -> None:
    text = mutate(BASE, "relationships:\n", "conversation:\n  cooldown: 1h\n  move_chance: 0.3\nrelationships:\n")
    found = rejected_alone(tmp_path, text, line_of(text, "move_chance:"), "conversation.move_chance",
                           "agents now move by their own plans")
    assert "extra inputs" not in found


def test_removed_field_is_reported_with_the_other_problems(tmp_path: Path) -> None:
    text = mutate(BASE, "relationships:\n", "conversation: {move_chance: 0.3, max_lines: 1}\nrelationships:\n")
    text = mutate(text, "    b: Bob", "    b: Bobby")
    path = write(tmp_path, text)
    result = validate(path)
    line = line_of(text, "move_chance:")
    assert parse_lines(result, path) == [(line, "conversation.move_chance"), (line, "conversation.max_lines")]
    # Once the types are right, the removed field still shows beside the cross-check problems.
    result = validate(write(tmp_path, mutate(text, "max_lines: 1", "max_lines: 5")))
    assert parse_lines(result, path) == [(line, "conversation.move_chance"), (line_of(text, "b: Bobby"), "relationships[0].b")]


# --------------------------------------------------------------------------- not a scenario at all


@pytest.mark.parametrize(
    ("old", "new", "needle", "message"),
    [
        ("    age: 41", "    age: 41: years", "age: 41: years", "mapping values are not allowed"),
        ("      Cafe: [counter]", "      Cafe: [counter", "Park:", "expected ','"),
        ("    age: 41", "\tage: 41", "\tage", "'\\t'"),
        ("probes:", "---\nprobes:", "---", "another document"),
    ],
    ids=["mapping-in-value", "unclosed-bracket", "tab", "two-documents"],
)
def test_invalid_yaml_syntax_names_the_line(tmp_path: Path, old: str, new: str, needle: str, message: str) -> None:
    text = mutate(BASE, old, new)
    rejected_alone(tmp_path, text, line_of(text, needle), "(yaml)", message)


def test_control_character_names_its_line_on_one_line(tmp_path: Path) -> None:
    text = mutate(BASE, "    label: neighbours", "    label: neigh\x07bours")
    found = rejected_alone(tmp_path, text, line_of(text, "\x07"), "(yaml)", "#x0007")
    assert found.startswith(f"{tmp_path / 'scenario.yaml'}:")


@pytest.mark.parametrize(
    "text",
    ["- name: Ann\n- name: Bob\n", "just a sentence\n", "42\n", "[1, 2, 3]\n"],
    ids=["list", "string", "number", "flow-list"],
)
def test_top_level_not_a_mapping(tmp_path: Path, text: str) -> None:
    rejected_alone(tmp_path, text, 1, "(root)", "must be a YAML mapping")


@pytest.mark.parametrize("text", ["", "\n\n", "# nothing here yet\n", "---\n", "~\n"],
                         ids=["empty", "blank", "comment", "document-marker", "null"])
def test_empty_file(tmp_path: Path, text: str) -> None:
    rejected_alone(tmp_path, text, 1, "(root)", "must be a YAML mapping")


def test_deeply_nested_yaml_is_a_problem_not_a_crash(tmp_path: Path) -> None:
    rejected_alone(tmp_path, "name: " + "[" * 5000 + "]" * 5000 + "\n", 1, "(yaml)", "nested too deeply")


def test_binary_garbage(tmp_path: Path) -> None:
    rejected_alone(tmp_path, b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\xff\xfe\x00", 1, "(file)", "not UTF-8")


def test_invalid_utf8_names_its_line(tmp_path: Path) -> None:
    raw = mutate(BASE, "    label: neighbours", "    label: neigh@@bours").encode().replace(b"@@", b"\xff\xfe")
    line = raw[: raw.index(b"\xff")].count(b"\n") + 1
    rejected_alone(tmp_path, raw, line, "(file)", "not UTF-8 text")


def test_nul_bytes_in_utf8_text(tmp_path: Path) -> None:
    text = mutate(BASE, "    label: neighbours", "    label: neigh\x00bours")
    rejected_alone(tmp_path, text, line_of(text, "\x00"), "(file)", "binary data")


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nowhere.yaml"
    result = validate(path)
    assert_rejected(result, path, 1, "(file)", "no such file")


def test_directory_instead_of_file(tmp_path: Path) -> None:
    result = validate(tmp_path)
    assert_rejected(result, tmp_path, 1, "(file)")


# --------------------------------------------------------------------------- several problems


def test_several_schema_problems_all_reported_sorted_by_line(tmp_path: Path) -> None:
    text = mutate(BASE, "    age: 41", '    age: "old"')
    text = mutate(text, "seed: 1", "seed: 1\ncolour: blue")
    text = mutate(text, "    home: Ann's flat\n", "")
    text = mutate(text, "  step: 10m", "  step: 10 minutes")
    text = mutate(text, "    question: How was your day?", "    question: How was your day?\n    loud: true")
    path = write(tmp_path, text)
    result = validate(path)
    expected = [
        (line_of(text, "colour:"), "colour"),
        (line_of(text, "step:"), "clock.step"),
        (line_of(text, "- name: Ann"), "agents[0].home"),
        (line_of(text, 'age: "old"'), "agents[1].age"),
        (line_of(text, "loud:"), "probes[0].loud"),
    ]
    assert result.exit_code == 2
    assert parse_lines(result, path) == expected, result.stderr
    assert all(line.startswith(f"{path}:") for line in problem_lines(result))


def test_several_cross_check_problems_all_reported_sorted_by_line(tmp_path: Path) -> None:
    text = mutate(BASE, "  - at: end", "  - at: 2023-02-15T08:00")  # probe, last in the file
    text = mutate(text, "    b: Bob", "    b: Bobby")
    text = mutate(text, "    home: Bob's flat", "    home: Nowhere")
    text = mutate(text, "  stop: 2023-02-13T12:00", "  stop: 2023-02-13T07:00")
    text = mutate(text, "      Park: [bench]", "      Park: [bench]\n      Bob's flat: [sofa]")
    path = write(tmp_path, text)
    result = validate(path)
    lines = parse_lines(result, path)
    assert result.exit_code == 2
    for expected in [
        (line_of(text, "stop:"), "clock.stop"),
        (line_of(text, "Bob's flat:", nth=2), "world.places.Homes.Bob's flat"),
        (line_of(text, "home: Nowhere"), "agents[1].home"),
        (line_of(text, "b: Bobby"), "relationships[0].b"),
        (line_of(text, "at: 2023-02-15"), "probes[0].at"),
    ]:
        assert expected in lines, (expected, result.stderr)
    assert [line for line, _ in lines] == sorted(line for line, _ in lines)
    # The clock runs backwards, so the session at 09:00 is outside it too: reported, not hidden.
    assert (line_of(text, "at: 2023-02-13T09:00"), "sessions[0].at") in lines


def test_scenario_error_carries_located_problems() -> None:
    text = mutate(BASE, "    b: Bob", "    b: Bobby")
    text = mutate(text, "    age: 41", "    age: 41\n    hobby: chess")
    # Schema problems are reported first; this text has one, so only it is listed.
    with pytest.raises(ScenarioError) as caught:
        parse_scenario(text, "town.yaml")
    [problem] = caught.value.problems
    assert (problem.file, problem.line, problem.field) == ("town.yaml", line_of(text, "hobby:"), "agents[1].hobby")
    assert str(caught.value) == str(problem)
    text = mutate(text, "    hobby: chess\n", "")
    with pytest.raises(ScenarioError) as caught:
        parse_scenario(text)
    [problem] = caught.value.problems
    assert (problem.file, problem.line, problem.field) == ("<scenario>", line_of(text, "b: Bobby"), "relationships[0].b")


def test_problem_str_format() -> None:
    problem = Problem(file="s.yaml", line=7, field="agents[1].home", message="unknown place 'x'")
    assert str(problem) == "s.yaml:7: agents[1].home: unknown place 'x'"


# --------------------------------------------------------------------------- schema


def test_schema_command_prints_json_schema() -> None:
    result = CliRunner().invoke(app, ["schema"])
    assert result.exit_code == 0, result.stderr
    schema = json.loads(result.stdout)
    assert {"clock", "agents", "world", "sessions", "probes"} <= set(schema["properties"])
    assert schema["additionalProperties"] is False
    assert {"name", "clock", "world", "agents"} <= set(schema["required"])
    defs = schema["$defs"]
    for record in ("Clock", "Persona", "WorldSpec", "Probe", "RoleplaySession", "SelfRefineSession"):
        assert defs[record]["additionalProperties"] is False, record
    assert defs["Persona"]["required"] == ["name", "home"]
    assert defs["Clock"]["properties"]["step"]["type"] == "string"


# --------------------------------------------------------------------------- round trip


def _resolved_round_trip(scenario: Scenario) -> Scenario:
    resolved = yaml.safe_dump(scenario.model_dump(mode="json"), sort_keys=False, allow_unicode=True)
    return parse_scenario(resolved, "resolved.yaml")


@pytest.mark.parametrize("source", ["base", "valentines"])
def test_resolved_scenario_revalidates_to_an_equal_scenario(source: str) -> None:
    scenario = parse_scenario(BASE) if source == "base" else load_scenario(VALENTINES)
    again = _resolved_round_trip(scenario)
    assert again == scenario
    assert _resolved_round_trip(again) == scenario


def test_round_trip_keeps_sub_second_steps_and_time_zones() -> None:
    text = mutate(BASE, "  step: 10m", "  step: 0.5s")
    text = mutate(text, "  start: 2023-02-13T08:00", "  start: 2023-02-13T08:00+01:00")
    text = mutate(text, "  stop: 2023-02-13T12:00", "  stop: 2023-02-13T12:00+01:00")
    text = mutate(text, "    at: 2023-02-13T09:00", "    at: 2023-02-13T08:30Z")
    text = mutate(text, "relationships:\n", "conversation: {cooldown: 1h2m3.25s}\nrelationships:\n")
    scenario = parse_scenario(text)
    assert scenario.clock.step == timedelta(milliseconds=500)
    assert _resolved_round_trip(scenario) == scenario


# --------------------------------------------------------------------------- the real command


def _simulacra() -> list[str]:
    """The installed console script (next to this interpreter first, so the venv's own is used)."""
    beside = Path(sys.executable).with_name("simulacra")
    script = str(beside) if beside.exists() else shutil.which("simulacra")
    return [script] if script else [sys.executable, "-c", "from worlds.cli import main; main()"]


def test_real_command_exit_codes_and_no_traceback(tmp_path: Path) -> None:
    """The installed console script, as a user runs it: binary garbage exits 2, a good file exits 0."""
    garbage = write(tmp_path, b"\x00\x01\x02\xff\xfe\xfd garbage \x00\n\x80", "garbage.yaml")
    good = write(tmp_path, BASE, "good.yaml")
    for path, code in [(garbage, 2), (good, 0)]:
        proc = subprocess.run([*_simulacra(), "validate", str(path)], capture_output=True, text=True,
                              cwd=tmp_path, timeout=60)
        assert proc.returncode == code, (path, proc.stdout, proc.stderr)
        assert "Traceback" not in proc.stderr, proc.stderr
        if code:
            assert proc.stdout == ""
            assert proc.stderr == f"{path}:1: (file): not UTF-8 text\n"
        else:
            assert "2 agents" in proc.stdout
            assert proc.stderr == ""


def test_real_command_via_python_c(tmp_path: Path) -> None:
    """`python -c 'from worlds.cli import main; main()'`: a duration that used to overflow exits 2, located."""
    text = mutate(BASE, "  step: 10m", "  step: .inf")
    path = write(tmp_path, text, "overflow.yaml")
    proc = subprocess.run([sys.executable, "-c", "from worlds.cli import main; main()", "validate", str(path)],
                          capture_output=True, text=True, cwd=REPO, timeout=60)
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    assert proc.stderr.startswith(f"{path}:{line_of(text, 'step:')}: clock.step: "), proc.stderr
    assert proc.stderr.count("\n") == 1


# --------------------------------------------------------------------------- fuzzing: never a crash

#: Fixed seed and no example database: the same examples on every machine, nothing written to the repo.
FUZZ = settings(max_examples=150, deadline=None, derandomize=True, database=None)

#: BASE with every optional section written out, so mutations reach them as well.
FULL = with_world("  walk: 3m\n" + ROUTES) + """\
models: {default: fake, embeddings: fake}
conversation: {min_lines: 2, max_lines: 6, lines_per_tick: 1, cooldown: 1h}
memory: {store: memory, retrieve_k: 3, reflection_threshold: 50, weights: {recency: 1, decay: 0.99}}
"""

_SCALARS = (
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=12) | st.datetimes()
    | st.from_regex(r"\A[+-]?\d{1,12}(\.\d{1,3})?[dhms]?\Z")
)
_JUNK = st.recursive(
    _SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6) | st.integers(), inner, max_size=3),
    max_leaves=6,
)
_ZONES = st.none() | st.sampled_from([timezone.utc, timezone(timedelta(hours=-11)), timezone(timedelta(hours=14))])
_TIMES = st.datetimes(timezones=_ZONES) | st.sampled_from(
    ["start", "end", "+2h", "tomorrow", "2023-02-13T09:00", "2023-02-13T25:00", "0001-01-01T00:00+05:00", "10m", "0s"]
)
#: Text that is mostly YAML punctuation, so the parser gets past the first character more often.
_YAMLISH = st.text(alphabet=st.sampled_from(list(":-[]{}#&*!|>'\"%@?,. \n\t\x07aZ09~")), max_size=80)


def _paths(node: Any, prefix: tuple = ()) -> Iterator[tuple]:
    """Every position inside parsed YAML, as the keys and indexes that lead there."""
    items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
    for key, child in items:
        yield (*prefix, key)
        yield from _paths(child, (*prefix, key))


def _at(node: Any, path: tuple) -> Any:
    for key in path:
        node = node[key]
    return node


@st.composite
def mutated_scenarios(draw: st.DrawFn) -> str:
    """FULL with keys deleted, values swapped for junk, times or copies of other values, list items doubled."""
    data = yaml.safe_load(FULL)
    for _ in range(draw(st.integers(1, 4))):
        paths = list(_paths(data))
        if not paths:
            break
        path = draw(st.sampled_from(paths))
        parent, key = _at(data, path[:-1]), path[-1]
        action = draw(st.sampled_from(["delete", "junk", "time", "copy", "double"]))
        if action == "delete":
            del parent[key]
        elif action == "junk":
            parent[key] = draw(_JUNK)
        elif action == "time":
            parent[key] = draw(_TIMES)
        elif action == "copy":  # e.g. a second agent with the first one's name, or a home named like an area
            parent[key] = copy.deepcopy(_at(data, draw(st.sampled_from(paths))))
        elif isinstance(parent, list):
            parent.insert(key, copy.deepcopy(parent[key]))
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True)


@st.composite
def edited_texts(draw: st.DrawFn) -> str:
    """FULL with lines dropped, doubled, or junk typed into them: breaks YAML structure, not just values."""
    lines = FULL.splitlines(keepends=True)
    for _ in range(draw(st.integers(1, 3))):
        i = draw(st.integers(0, len(lines) - 1))
        action = draw(st.sampled_from(["drop", "double", "type"]))
        if action == "drop" and len(lines) > 1:
            del lines[i]
        elif action == "double":
            lines.insert(i, lines[i])
        else:
            at = draw(st.integers(0, len(lines[i])))
            lines[i] = lines[i][:at] + draw(_YAMLISH) + lines[i][at:]
    return "".join(lines)


def assert_loads_or_fails_located(folder: Path, text: str) -> None:
    """load_scenario succeeds or raises ScenarioError with located problems; `validate` exits 0 or 2."""
    path = write(folder, text, "fuzz.yaml")
    try:
        load_scenario(path)
    except ScenarioError as exc:
        assert exc.problems
        for problem in exc.problems:
            assert (problem.file, problem.line >= 1, bool(problem.field)) == (str(path), True, True), problem
    result = validate(path)
    assert result.exit_code in (0, 2), (result.exit_code, result.stdout, result.stderr)
    assert "Traceback" not in result.stdout + result.stderr


def test_fuzz_bases_are_valid() -> None:
    parse_scenario(FULL)
    assert yaml.safe_load(FULL)["world"]["routes"]


@FUZZ
@given(text=st.text(max_size=200) | _YAMLISH)
def test_fuzz_random_text(tmp_path_factory: pytest.TempPathFactory, text: str) -> None:
    assert_loads_or_fails_located(tmp_path_factory.mktemp("fuzz"), text)


@FUZZ
@given(text=mutated_scenarios())
def test_fuzz_mutated_scenarios(tmp_path_factory: pytest.TempPathFactory, text: str) -> None:
    assert_loads_or_fails_located(tmp_path_factory.mktemp("fuzz"), text)


@FUZZ
@given(text=edited_texts())
def test_fuzz_edited_text(tmp_path_factory: pytest.TempPathFactory, text: str) -> None:
    assert_loads_or_fails_located(tmp_path_factory.mktemp("fuzz"), text)


@pytest.mark.parametrize("fragment, field", [
    ("world: {places: {A: {}}, routes: [{a: X, b: Y, minutes: 3}]}", "agents[0].home"),
    ("agents: [{name: ' ', home: Cafe}]", "agents[0].name"),
])
def test_degenerate_inputs_are_located_errors_not_crashes(tmp_path, fragment, field):
    base = {"name": "t", "clock": {"start": "2023-01-01T08:00", "step": "10m", "stop": "2023-01-01T09:00"},
            "world": {"places": {"Town": {"Cafe": []}}}, "agents": [{"name": "Ann", "home": "Cafe"}]}
    base.update(yaml.safe_load(fragment))
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(base))
    with pytest.raises(ScenarioError) as caught:
        load_scenario(path)
    assert any(p.field == field for p in caught.value.problems), caught.value.problems
