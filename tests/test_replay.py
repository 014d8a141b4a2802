"""`simulacra replay` without a browser: the page's model follows the log, strings cannot escape, bad input exits 2."""

from __future__ import annotations

import asyncio
import base64
import fnmatch
import hashlib
import json
import re
import tomllib
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.fakes import EchoFake
from worlds.cli import app
from worlds.places import PlaceGraph
from worlds.runfolder import RunFolder
from worlds.runner import execute_run
from worlds.scenario import SocietyScenario, parse_any, parse_scenario
from worlds.society.batch import run_batch
from worlds.stats import compute_stats
from worlds.timeline.replay import VIEW_HEIGHT, VIEW_WIDTH, ReplayModel, build_replay, place_layout
from worlds.timeline.replay_page import render_page, script_safe_json

SCRIPT = "<script>window.__pwned=1</script>"
IMG = '<img src=x onerror="window.__pwned=1">'
CAFE = f"Cafe {IMG}"
BOB = f"Bob {IMG}"
CY = f"Cy {SCRIPT}"
#: A town whose place, agents, memory and probe carry markup: each lands in the log, and in the page.
PAYLOAD_TOWN = f"""\
name: payload-town
seed: 5
clock: {{start: 2023-02-13T06:00, step: 10m, stop: 2023-02-13T12:00}}
models: {{default: fake, embeddings: fake}}
memory: {{store: memory, reflection_threshold: 20}}
world:
  places:
    Town:
      '{CAFE}': [counter]
      Ann's flat: [bed]
      Bob's flat: [bed]
      Cy's flat: [bed]
agents:
  - {{name: Ann, persona: Ann bakes bread., home: Ann's flat, wake: "07:00", bedtime: "21:00",
     memories: ['Ann is hosting a picnic on Sunday {SCRIPT} at the lake.']}}
  - {{name: '{BOB}', persona: Bob runs the cafe., home: Bob's flat, wake: "06:30", bedtime: "22:00"}}
  - {{name: '{CY}', persona: Cy writes poems., home: Cy's flat, wake: "08:00", bedtime: "20:00"}}
conversation: {{max_lines: 4, lines_per_tick: 2, cooldown: 3h}}
probes:
  - {{at: end, ask: all, question: 'Is anyone hosting a picnic? </script>{SCRIPT}', expect: [picnic]}}
"""


class ReplanningEcho(EchoFake):
    """EchoFake that also re-plans the rest of a day, so a run never waits on retries of that call."""

    def _structured(self, schema: str, prompt: str) -> dict:
        if schema == "RestOfDay":
            return {"items": [{"hour": 11, "activity": "tidy up", "place": self.meeting_place}]}
        return super()._structured(schema, prompt)


def payload_run(out: Path) -> Path:
    """Four simulated hours of the payload town on the echoing fake: talk, a reflection, a probe."""
    scenario = parse_scenario(PAYLOAD_TOWN)
    until = scenario.clock.start.replace(hour=10)
    return asyncio.run(execute_run(scenario, out, model=ReplanningEcho(CAFE), until=until)).run_dir


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return payload_run(tmp_path_factory.mktemp("replay"))


def _log(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "events.jsonl").read_text().splitlines()]


def _model(run_dir: Path) -> tuple[ReplayModel, list[str]]:
    warnings: list[str] = []
    return build_replay(RunFolder.open(run_dir), warnings.append), warnings


def test_the_model_follows_the_log(run_dir: Path) -> None:
    model, warnings = _model(run_dir)
    log = _log(run_dir)
    assert warnings == [] and model.skipped == []
    assert model.agents == ["Ann", BOB, CY] and model.status == "completed"
    ticks = [e for e in log if e["kind"] == "tick"]
    assert len(model.frames) == len(ticks) == 24
    for frame, tick in zip(model.frames, ticks):
        assert {model.agents[i]: model.places[p].name for i, p in enumerate(frame.places)} == tick["positions"]
        assert {model.agents[i]: model.texts[t] for i, t in enumerate(frame.status)} == tick["status"]
    assert len({tuple(f.places) for f in model.frames}) > 1, "agents move during the run"
    talks = [e for e in log if e["kind"] == "conversation_started"]
    assert len(talks) >= 2 and [d.id for d in model.dialogues] == [e["conversation_id"] for e in talks]
    for dialogue, started in zip(model.dialogues, talks):
        said = [(e["speaker"], e["text"]) for e in log
                if e["kind"] == "utterance" and e["conversation_id"] == started["conversation_id"]]
        assert [(line.speaker, line.text) for line in dialogue.lines] == said and said
        assert [model.agents[lane] for lane in dialogue.lanes] == started["agents"]
        assert dialogue.place == CAFE and dialogue.ended
        blocks = [b for b in model.blocks if b.ref == dialogue.id]
        assert sorted(b.lane for b in blocks) == sorted(dialogue.lanes), "a block on each participant's lane"
    started = [e for e in log if e["kind"] == "activity_started"]
    solo = [b for b in model.blocks if b.ref is None]
    assert sorted((model.agents[b.lane], b.kind) for b in solo) == sorted((e["agents"][0], e["activity"]) for e in started)
    assert all(0 <= b.start <= b.end <= model.end for b in model.blocks)
    assert sum(h.calls for h in model.hours) == sum(e["kind"] == "model_call" for e in log)
    assert [h.conversations for h in model.hours] == \
        [sum(1 for d in model.dialogues if hour * 60 <= d.start < hour * 60 + 60) for hour in range(4)]


def test_reflections_cite_memories_and_probes_carry_the_diffusion(run_dir: Path) -> None:
    model, _ = _model(run_dir)
    log = _log(run_dir)
    memories = {e["memory"]["id"]: e["memory"]["text"] for e in log if e["kind"] == "memory_added"}
    reflections = [e for e in log if e["kind"] == "reflection"]
    assert reflections and len(model.reflections) == len(reflections)
    for view, event in zip(model.reflections, reflections):
        assert model.agents[view.lane] == event["agent"]
        assert [[c.id for c in i.cites] for i in view.insights] == [i["evidence"] for i in event["insights"]]
        assert all(c.text == memories[c.id] for i in view.insights for c in i.cites)
    answers = [e for e in log if e["kind"] == "probe_answer"]
    (probe,) = model.probes
    assert [(a.agent, a.answer, a.memories) for a in probe.answers] == \
        [(e["agents"][0], e["answer"], e["memories"]) for e in answers]
    (diffusion,) = compute_stats(RunFolder.open(run_dir)).diffusion
    assert [a.verdict for a in probe.answers] == [a.verdict for a in diffusion.answers]
    assert [s.heard for s in probe.spread] == [p.heard for p in diffusion.spread]
    assert len(probe.spread) == 5 and probe.spread[0].heard == 1, "hourly, from Ann's seeded memory on"


def test_the_place_layout_is_deterministic_and_legible(run_dir: Path) -> None:
    scenario = RunFolder.open(run_dir).scenario()
    nodes, routes = place_layout(scenario)
    assert (nodes, routes) == place_layout(scenario)
    assert [n.name for n in nodes if not n.hub] == scenario.place_names() and [n.name for n in nodes if n.hub] == ["Town"]
    assert all(0 <= n.x <= VIEW_WIDTH and 0 <= n.y <= VIEW_HEIGHT for n in nodes)
    assert min(((a.x - b.x) ** 2 + (a.y - b.y) ** 2) ** 0.5 for i, a in enumerate(nodes) for b in nodes[i + 1:]) > 40
    assert len(routes) == PlaceGraph(scenario).routes.number_of_edges()
    resolved = scenario.model_dump(mode="json")
    resolved["world"]["routes"] = [{"a": CAFE, "b": "Ann's flat", "minutes": 7},
                                   {"a": CAFE, "b": "Bob's flat", "minutes": 3},
                                   {"a": "Bob's flat", "b": "Cy's flat", "minutes": 4}]
    walled = parse_scenario(json.dumps(resolved))
    nodes, routes = place_layout(walled)
    assert not any(n.hub for n in nodes), "given routes join places directly"
    assert sorted((nodes[r.a].name, nodes[r.b].name, r.minutes) for r in routes) == \
        sorted([(CAFE, "Ann's flat", 7), (CAFE, "Bob's flat", 3), ("Bob's flat", "Cy's flat", 4)])


def test_json_in_the_page_cannot_end_its_script_element() -> None:
    value = {"text": f"</script><!-- {SCRIPT} & \u2028 \u2029 <\\/script>", "n": [1, "<b>"]}
    text = script_safe_json(value)
    assert not set("<>&\u2028\u2029") & set(text)
    assert json.loads(text) == value


def test_the_page_is_self_contained_and_holds_no_raw_markup_from_the_log(run_dir: Path) -> None:
    log = _log(run_dir)
    said = [e for e in log if e["kind"] == "utterance"]
    assert any(e["speaker"] == CY for e in said) and any(e["speaker"] == BOB for e in said), "markup is in the log"
    assert any(CAFE in e["positions"].values() for e in log if e["kind"] == "tick")
    model, _ = _model(run_dir)
    page = render_page(model)
    assert page.count("<script") == 2 and page.count("</script>") == 2
    for payload in (SCRIPT, IMG, "<img", "onerror=\"window"):
        assert payload not in page
    assert not re.search(r"<(link|img|iframe)\b|\b(src|href)\s*=\s*[\"']?https?:", page, re.I), "nothing to fetch"
    data = re.search(r'<script type="application/json" id="replay-data">(.*?)</script>', page, re.S).group(1)
    assert json.loads(data) == model.model_dump(mode="json")
    script = re.search(r"<script>(.*?)</script>", page, re.S).group(1)
    digest = base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()
    assert f"script-src 'sha256-{digest}'" in page, "the policy lets exactly the page's own script run"


def test_the_page_files_ship_with_the_package() -> None:
    root = Path(__file__).resolve().parents[1]
    config = tomllib.loads((root / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]
    patterns = config["worlds.timeline.replay_page"]
    files = [p.name for p in (root / "worlds/timeline/replay_page").iterdir() if p.suffix in {".html", ".js", ".css"}]
    assert sorted(files) == ["page.html", "replay.css", "replay.js"]
    assert all(any(fnmatch.fnmatch(name, pattern) for pattern in patterns) for name in files)


def _copy_run(run_dir: Path, to: Path, lines: list[str]) -> Path:
    to.mkdir()
    (to / "scenario.yaml").write_text((run_dir / "scenario.yaml").read_text())
    (to / "events.jsonl").write_text("".join(lines))
    return to


def test_a_corrupted_line_is_skipped_by_number_and_nothing_else_is_lost(run_dir: Path, tmp_path: Path) -> None:
    whole, _ = _model(run_dir)
    lines = (run_dir / "events.jsonl").read_text().splitlines(keepends=True)
    # A line that carries no news: losing the one a fact spread through rightly changes the diffusion too.
    at = next(i for i, line in enumerate(lines) if '"kind":"utterance"' in line and "picnic" not in line)
    said = json.loads(lines[at])
    lines[at] = lines[at][: len(lines[at]) // 2] + "\n"  # torn in the middle of the log
    broken = _copy_run(run_dir, tmp_path / "broken", lines)
    result = CliRunner().invoke(app, ["replay", str(broken), "-o", str(tmp_path / "page.html")])
    assert result.exit_code == 0, result.output
    assert f"{broken / 'events.jsonl'}:{at + 1}: skipped: not a JSON record" in result.stderr
    model, warnings = _model(broken)
    assert len(warnings) == 1 and model.skipped == warnings
    expected = whole.model_dump(exclude={"skipped", "run"})
    talk = next(d for d in expected["dialogues"] if d["id"] == said["conversation_id"])
    talk["lines"] = [line for line in talk["lines"] if line["text"] != said["text"] or line["speaker"] != said["speaker"]]
    assert model.model_dump(exclude={"skipped", "run"}) == expected, "only the corrupted line is missing"


def test_a_record_with_a_bad_field_is_skipped_naming_its_field(run_dir: Path, tmp_path: Path) -> None:
    whole, _ = _model(run_dir)
    lines = (run_dir / "events.jsonl").read_text().splitlines(keepends=True)
    at = next(i for i, line in enumerate(lines) if '"kind":"tick"' in line)
    tick = json.loads(lines[at])
    tick["positions"] = "everywhere"
    lines[at] = json.dumps(tick) + "\n"
    model, warnings = _model(_copy_run(run_dir, tmp_path / "odd", lines))
    assert warnings == [f"{tmp_path / 'odd' / 'events.jsonl'}: event seq {tick['seq']} (tick): skipped: positions: "
                        "Input should be a valid dictionary"]
    assert model.frames == whole.frames[1:] and model.dialogues == whole.dialogues


def _one_line_error(args: list[str]) -> str:
    result = CliRunner().invoke(app, ["replay", *args])
    assert result.exit_code == 2, result.output
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    return result.stderr


def test_bad_input_is_one_line_and_exit_2_and_nothing_is_clobbered(run_dir: Path, tmp_path: Path) -> None:
    kept = tmp_path / "kept.html"
    kept.write_text("an earlier page")
    assert "not a run folder" in _one_line_error([str(tmp_path / "nowhere"), "-o", str(kept)])
    (tmp_path / "foreign").mkdir()
    assert "not a run folder" in _one_line_error([str(tmp_path / "foreign"), "-o", str(kept)])
    assert kept.read_text() == "an earlier page"
    assert "no folder" in _one_line_error([str(run_dir), "-o", str(tmp_path / "missing" / "page.html")])
    assert "is a folder" in _one_line_error([str(run_dir), "-o", str(tmp_path)])
    assert not list(tmp_path.glob("**/page.html*"))


def test_an_unwritable_output_is_an_input_error(run_dir: Path) -> None:
    unwritable = Path("/proc/replay.html")  # /proc takes no new files, whoever asks
    if not Path("/proc").is_dir():
        pytest.skip("needs /proc (Linux) for a folder nobody can write to")
    assert "--output /proc/replay.html: cannot write it" in _one_line_error([str(run_dir), "-o", str(unwritable)])


def test_a_batch_folder_is_refused_with_what_to_use_instead(tmp_path: Path) -> None:
    society = parse_any("name: tiny\nseed: 1\nmodels: {default: fake, embeddings: fake}\nsociety:\n"
                        "  assistant_roles: {names: [Chef]}\n  user_roles: {names: [Student]}\n  tasks_per_pair: 1\n",
                        str(tmp_path / "tiny.yaml"))
    assert isinstance(society, SocietyScenario)
    folder = asyncio.run(run_batch(society, tmp_path / "out")).folder
    assert "a batch folder" in _one_line_error([str(folder), "-o", str(tmp_path / "page.html")])


def test_the_command_writes_the_page_and_says_what_is_in_it(run_dir: Path, tmp_path: Path) -> None:
    target = tmp_path / "page.html"
    result = CliRunner().invoke(app, ["replay", str(run_dir), "-o", str(target)])
    assert result.exit_code == 0, result.output
    model, _ = _model(run_dir)
    assert target.read_text() == render_page(model)
    assert f"3 agents, 24 ticks, {len(model.dialogues)} conversations" in result.stdout
    assert not list(tmp_path.glob("*.tmp")), "written through a temporary file, then renamed"
