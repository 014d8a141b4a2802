"""A sweep file (scenarios × seeds × override grid) checked and expanded into units, before anything runs."""

from __future__ import annotations

import hashlib
import itertools
import json
import re
from pathlib import Path
from typing import Annotated, Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator

from memory.errors import InputError
from worlds.scenario import (
    Scenario,
    ScenarioError,
    parse_scenario,
    problem_in_file,
    read_text,
    validate_file_text,
)
from worlds.timeparse import parse_moment


class SweepSpec(BaseModel):
    """`SWEEP.yaml`: every combination of a scenario, a seed and one value per override path is one run."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$", description="Names the sweep folder.")
    scenarios: list[str] = Field(min_length=1, description="World scenario files, relative to the sweep file.")
    seeds: list[int] | int = Field(default=1, description="Seeds to run, or how many (0, 1, ...).")
    overrides: dict[str, Annotated[list[Any], Field(min_length=1)]] = Field(
        default_factory=dict, description="Dotted scenario paths (conversation.max_lines, agents.0.persona), each "
                                          "with the values to try; the grid is every combination.")
    model: str | None = Field(default=None, description="Model spec for every run; else each scenario's own.")
    until: str | None = Field(default=None, description="Stop every run early: an ISO time or +DURATION.")
    retries: int = Field(default=1, ge=0, le=10, description="Times a unit is run again when its worker dies.")

    @field_validator("seeds")
    @classmethod
    def _some_distinct_seeds(cls, seeds: list[int] | int) -> list[int] | int:
        if isinstance(seeds, int) and seeds < 1:
            raise ValueError("give at least one seed (a count from 1, or a list)")
        if isinstance(seeds, list) and (not seeds or len(set(seeds)) < len(seeds)):
            raise ValueError("give a non-empty list of distinct seeds")
        return seeds

    def seed_list(self) -> list[int]:
        return list(range(self.seeds)) if isinstance(self.seeds, int) else list(self.seeds)

    def grid(self) -> list[dict[str, Any]]:
        """Every combination of one value per override path, in the file's order."""
        return [dict(zip(self.overrides, values)) for values in itertools.product(*self.overrides.values())]


class SweepUnit(BaseModel):
    """One run of the sweep, carrying its scenario's text so that a worker on any machine can carry it out."""

    id: str
    scenario_path: str
    scenario_text: str
    seed: int
    overrides: dict[str, Any]
    model: str | None
    until: str | None


def _step(container: Any, part: str, path: str) -> tuple[Any, str | int]:
    """The key or index `part` names in `container`, or an unknown-path error."""
    if isinstance(container, dict) and part in container:
        return container, part
    if isinstance(container, list) and part.isdigit() and int(part) < len(container):
        return container, int(part)
    raise KeyError(path)


def apply_overrides(scenario: Scenario, overrides: dict[str, Any], where: str) -> Scenario:
    """The scenario with each dotted path set, through every check a scenario file gets."""
    data = scenario.model_dump(mode="json")
    for path, value in overrides.items():
        parts = path.split(".")
        node: Any = data
        for part in parts[:-1]:
            holder, key = _step(node, part, path)
            node = holder[key]
        holder, key = _step(node, parts[-1], path)
        holder[key] = value
    return parse_scenario(yaml.safe_dump(data, sort_keys=False, allow_unicode=True), where)


def _label(value: Any) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", str(value))[:24]


def plan_sweep(path: Path) -> tuple[SweepSpec, list[SweepUnit]]:
    """The sweep's units in a fixed order; an unknown path, a bad value or a missing file is exit 2 naming it."""
    spec = validate_file_text(read_text(path), str(path), SweepSpec, "a sweep")
    grid = spec.grid()
    units: list[SweepUnit] = []
    for index, relative in enumerate(spec.scenarios):
        file = path.parent / relative
        if not file.is_file():
            raise problem_in_file(path, ("scenarios", index), f"no scenario file {file}")
        text = read_text(file)
        scenario = parse_scenario(text, str(file))
        if spec.until is not None:
            try:
                parse_moment(spec.until, scenario.clock.start)
            except ValueError as exc:
                raise problem_in_file(path, ("until",), str(exc)) from None
        for combination in grid:
            _check(path, scenario, combination)
        for seed, combination in itertools.product(spec.seed_list(), grid):
            units.append(SweepUnit(id=unit_id(file.stem, text, seed, combination), scenario_path=str(file),
                                   scenario_text=text, seed=seed, overrides=combination, model=spec.model,
                                   until=spec.until))
    return spec, units


def unit_id(stem: str, text: str, seed: int, combination: dict[str, Any]) -> str:
    """Readable, and unique to what the unit runs: a changed scenario or value is a new unit, never a skipped one."""
    labels = "".join(f"-{p.rsplit('.', 1)[-1]}={_label(v)}" for p, v in combination.items())
    digest = hashlib.sha256(json.dumps([text, seed, combination], sort_keys=True, default=str).encode()).hexdigest()
    return f"{stem}-s{seed}{labels}-{digest[:8]}"


def _check(path: Path, scenario: Scenario, combination: dict[str, Any]) -> None:
    try:
        apply_overrides(scenario, combination, "<override>")
    except KeyError as exc:
        raise problem_in_file(path, ("overrides", exc.args[0]), f"{scenario.name} has no field {exc.args[0]!r} "
                              "(paths are dotted field names, list items by number: agents.0.persona)") from None
    except ScenarioError as exc:
        found = "; ".join(f"{p.field}: {p.message}" for p in exc.problems)
        given = ", ".join(f"{k}={v!r}" for k, v in combination.items())
        raise InputError(f"{path}: overrides {given}: {found}") from None
