"""The performance suite writes each benchmark's table from its JSON, in its own section, replacing the last one."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import suite  # noqa: E402 - the benchmarks folder is not a package

RECORD = {"name": "population", "command": "python benchmarks/population.py --json", "date": "2026-12-02",
          "machine": "Linux, 2 cores", "versions": "ray 2.60.0", "commit": "abc1234",
          "result": {"hours": 1.0, "chains": {"any_order": 167}, "runs": [{"agents": 10, "wall_s": 1.5},
                                                                           {"agents": 20, "wall_s": 3.25}]}}
DOC = "# Benchmarks\n\n## A population (benchmarks/population.py)\n\nProse.\n\n## Sweeps (benchmarks/sweep.py)\n\nMore.\n"


def test_the_table_lands_at_the_end_of_its_section_and_a_rerun_replaces_it(tmp_path: Path, monkeypatch) -> None:
    doc = tmp_path / "benchmarks.md"
    doc.write_text(DOC)
    monkeypatch.setattr(suite, "DOC", doc)
    suite.write_doc({"population": RECORD})
    text = doc.read_text()
    block = text[text.index("Prose."):text.index("## Sweeps")]
    assert "at commit abc1234; Linux, 2 cores; ray 2.60.0." in block
    assert "| `hours` | 1 |" in block and "| `chains.any_order` | 167 |" in block
    assert "| agents | wall_s |" in block and "| 20 | 3.25 |" in block
    changed = {**RECORD, "commit": "def5678", "result": {**RECORD["result"], "hours": 2.0}}
    suite.write_doc({"population": changed})
    again = doc.read_text()
    assert again.count("<!-- generated: population -->") == 1 and "| `hours` | 2 |" in again
    assert "abc1234" not in again and again.endswith("More.\n")
