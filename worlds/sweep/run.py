"""A sweep's units as Ray tasks: local by default, a cluster with an address; each result kept as it comes."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

from pydantic import BaseModel

from worlds.cluster import RaySpec, each_as_task, ray_started
from worlds.sweep.plan import SweepSpec, SweepUnit
from worlds.sweep.unit import UnitResult, run_unit

RESULTS_FILE = "sweep.jsonl"
#: A unit with one of these results is not run again when the sweep is.
DONE = frozenset({"completed", "budget"})


class SweepSummary(BaseModel):
    folder: Path
    planned: int
    skipped: int
    #: This invocation's units, in the sweep's order.
    results: list[UnitResult]

    @property
    def failed(self) -> list[UnitResult]:
        return [r for r in self.results if r.status not in DONE]


def finished_units(folder: Path) -> set[str]:
    """Units whose latest result says they are done (a torn last line, from a crash, is passed over)."""
    latest: dict[str, str] = {}
    path = folder / RESULTS_FILE
    if path.is_file():
        for line in path.read_text().splitlines():
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                continue
            latest[record["id"]] = record["status"]
    return {unit for unit, status in latest.items() if status in DONE}


def run_sweep(spec: SweepSpec, units: list[SweepUnit], out_dir: Path, address: str | None = None,
              workers: int | None = None, on_progress: Callable[[int, int], None] | None = None) -> SweepSummary:
    """Run every unit not done yet as a Ray task; a unit that fails, or whose worker dies past its retries, is
    reported and the others go on. Results are appended to `sweep.jsonl` (and fsynced) as they arrive."""
    folder = out_dir / spec.name
    folder.mkdir(parents=True, exist_ok=True)
    done = finished_units(folder)
    todo = [u for u in units if u.id not in done]
    results: dict[str, UnitResult] = {}
    if todo:
        cluster = RaySpec(address=address, workers=workers, retries=spec.retries)
        with ray_started(cluster) as ray, (folder / RESULTS_FILE).open("a") as log:

            def keep(unit: SweepUnit, result: UnitResult | None, lost: str) -> None:
                results[unit.id] = result or UnitResult(id=unit.id, status="failed", error=lost)
                log.write(results[unit.id].model_dump_json() + "\n")
                log.flush()
                os.fsync(log.fileno())
                if on_progress is not None:
                    on_progress(len(results), len(todo))

            each_as_task(ray, cluster, run_unit, todo, (str(folder.resolve()),), keep)
    return SweepSummary(folder=folder, planned=len(units), skipped=len(units) - len(todo),
                        results=[results[u.id] for u in todo])
