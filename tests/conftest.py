"""Shared fixtures: a small town scenario that runs in a second on the fake model."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from worlds.events import WALL_CLOCK_FIELDS

SMALL_TOWN = """\
name: small-town
seed: 3
clock: {start: 2023-02-13T08:00, step: 10m, stop: 2023-02-13T20:00}
models: {default: fake, embeddings: fake}
memory: {store: memory}
world:
  places:
    Town:
      Cafe: [counter]
      Park: [bench]
      Ann's flat: [bed]
      Bob's flat: [bed]
      Cy's flat: [bed]
agents:
  - {name: Ann, age: 30, traits: cheerful, persona: Ann bakes bread., home: Ann's flat,
     memories: [Ann is hosting a picnic on Sunday.]}
  - {name: Bob, age: 41, traits: quiet, persona: Bob fixes bicycles., home: Bob's flat}
  - {name: Cy, age: 25, traits: curious, persona: Cy writes poems., home: Cy's flat}
relationships:
  - {a: Ann, b: Bob, label: old friend}
conversation: {max_lines: 4, lines_per_tick: 2, cooldown: 1h, move_chance: 0.6}
"""


@pytest.fixture
def small_town(tmp_path: Path) -> Path:
    path = tmp_path / "small-town.yaml"
    path.write_text(SMALL_TOWN)
    return path


def comparable_log(events_path: Path, ignore: frozenset[str] = WALL_CLOCK_FIELDS) -> list[dict]:
    """A log's records without the fields that depend on the machine rather than the simulation."""
    records = []
    for line in events_path.read_text().splitlines():
        record = json.loads(line)
        records.append({k: v for k, v in record.items() if k not in ignore})
    return records
