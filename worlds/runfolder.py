"""A run is one folder: resolved scenario, event log, request cache. Nothing is written elsewhere."""

from __future__ import annotations

import json
import os
from datetime import datetime
from pathlib import Path

import yaml

from agents.persona import Persona
from memory.errors import InputError
from worlds.eventlog import EVENTS_FILE, EventReader, SkipHook, check_log_format
from worlds.scenario import Scenario, SocietyScenario, load_any, load_scenario


def write_atomically(path: Path, text: str) -> None:
    """Replace a file so that a crash leaves the old one or the new one, never half of either."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(path.suffix + ".tmp")
    with temporary.open("w", encoding="utf-8") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)
    directory = os.open(path.parent, os.O_RDONLY)  # the rename itself survives a power cut
    try:
        os.fsync(directory)
    finally:
        os.close(directory)


class RunFolderError(InputError):
    """The path given is not a run folder (a user error)."""


class RunFolder:
    """Names the files of one run and opens them."""

    SCENARIO_FILE = "scenario.yaml"
    CACHE_FILE = "cache.sqlite"

    def __init__(self, path: Path) -> None:
        self.path = path

    @property
    def scenario_path(self) -> Path:
        return self.path / self.SCENARIO_FILE

    @property
    def events_path(self) -> Path:
        return self.path / EVENTS_FILE

    @property
    def cache_path(self) -> Path:
        return self.path / self.CACHE_FILE

    @classmethod
    def create(cls, out_dir: Path, scenario: Scenario | SocietyScenario) -> RunFolder:
        """A fresh `<out>/<name>-<stamp>` folder holding the resolved scenario."""
        stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
        path = out_dir / f"{scenario.name}-{stamp}"
        suffix = 1
        while path.exists():
            suffix += 1
            path = out_dir / f"{scenario.name}-{stamp}-{suffix}"
        path.mkdir(parents=True)
        folder = cls(path)
        folder.write_scenario(scenario)
        return folder

    @classmethod
    def open(cls, path: Path) -> RunFolder:
        """An existing run to read or carry on; a log from a newer simulacra is refused here, for every reader."""
        folder = cls(path)
        if not folder.events_path.is_file():
            raise RunFolderError(f"{path}: not a run folder (no {EVENTS_FILE}); give the folder `simulacra run` printed")
        check_log_format(folder.events_path)
        return folder

    def write_scenario(self, scenario: Scenario | SocietyScenario) -> None:
        """The resolved scenario, defaults filled in, as the folder's record of what ran."""
        resolved = scenario.model_dump(mode="json")
        write_atomically(self.scenario_path, yaml.safe_dump(resolved, sort_keys=False, allow_unicode=True))

    def scenario(self) -> Scenario:
        return load_scenario(self.scenario_path)

    def personas(self) -> list[Persona]:
        """The world's agents; a role-play batch has none."""
        spec = load_any(self.scenario_path)
        return spec.agents if isinstance(spec, Scenario) else []

    def reader(self, on_skip: SkipHook | None = None) -> EventReader:
        return EventReader(self.events_path, on_skip)

    @property
    def snapshot_path(self) -> Path:
        return self.path / "checkpoints" / "snapshot.json"

    def write_snapshot(self, state: dict) -> None:
        """The whole run at a tick boundary, replaced atomically: a crash leaves the old snapshot or the new."""
        write_atomically(self.snapshot_path, json.dumps(state))

    def read_snapshot(self) -> dict | None:
        return json.loads(self.snapshot_path.read_text(encoding="utf-8")) if self.snapshot_path.is_file() else None
