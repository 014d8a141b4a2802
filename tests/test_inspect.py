"""`simulacra inspect`: a run's timeline, filtered by agent, kind, time, text and conversation; JSONL for scripts."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.fakes import EchoFake
from tests.test_world_run import PICNIC_TOWN
from worlds.cli import app
from worlds.runner import execute_run
from worlds.scenario import parse_scenario


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    scenario = parse_scenario(PICNIC_TOWN)
    out = tmp_path_factory.mktemp("inspect")
    until = scenario.clock.start.replace(hour=12)
    return asyncio.run(execute_run(scenario, out, model=EchoFake("Cafe"), until=until)).run_dir


def _json(run_dir: Path, *args: str) -> list[dict]:
    result = CliRunner().invoke(app, ["inspect", str(run_dir), "--json", *args])
    assert result.exit_code == 0, result.output
    return [json.loads(line) for line in result.stdout.splitlines()]


def _log(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "events.jsonl").read_text().splitlines()]


def test_json_streams_exactly_the_events_each_filter_keeps(run_dir: Path) -> None:
    log = _log(run_dir)
    assert _json(run_dir) == log
    bob = _json(run_dir, "--agent", "Bob")
    assert bob and bob == [e for e in log if "Bob" in e["agents"] or e.get("speaker") == "Bob"]
    talk = _json(run_dir, "--kind", "utterance", "--kind", "conversation_started")
    assert talk and {e["kind"] for e in talk} == {"utterance", "conversation_started"}
    window = _json(run_dir, "--from", "2023-02-13T08:00", "--to", "2023-02-13T09:00")
    assert window and all("2023-02-13T08:00:00" <= e["sim_time"] <= "2023-02-13T09:00:00" for e in window)
    assert len(window) == sum(1 for e in log if "2023-02-13T08:00:00" <= e["sim_time"] <= "2023-02-13T09:00:00")
    picnic = _json(run_dir, "--grep", "PICNIC")
    from worlds.timeline.select import _texts
    assert picnic and all(any("picnic" in t.lower() for t in _texts(e)) for e in picnic)
    assert len(picnic) == sum(1 for e in log if any("picnic" in t.lower() for t in _texts(e)))
    assert _json(run_dir, "--grep", "kind") == [e for e in log if any("kind" in t.lower() for t in _texts(e))], \
        "field names are not text: only values match"
    first = next(e["conversation_id"] for e in log if e["kind"] == "conversation_started")
    one = _json(run_dir, "--conversation", first)
    assert one and all(e.get("conversation_id") == first for e in one)
    assert [e["kind"] for e in one][0] == "conversation_started" and one[-1]["kind"] == "conversation_ended"


def test_the_timeline_reads_as_sentences_per_agent(run_dir: Path) -> None:
    result = CliRunner().invoke(app, ["inspect", str(run_dir), "--agent", "Ann", "--agent", "Cy"])
    assert result.exit_code == 0, result.output
    text = result.stdout
    assert text.index("Ann") < text.index("Cy"), "one section per agent, in the order asked"
    assert "day plan:" in text and "remembers [" in text and "Ann:" in text
    assert "model call" not in text, "model calls only with --all or --kind"


def test_a_corrupted_line_is_skipped_by_number_and_nothing_else_is_lost(run_dir: Path, tmp_path: Path) -> None:
    broken = tmp_path / "run"
    broken.mkdir()
    for name in ("scenario.yaml",):
        (broken / name).write_text((run_dir / name).read_text())
    lines = (run_dir / "events.jsonl").read_text().splitlines(keepends=True)
    lines[5] = '{"seq": 5, "tick": 0, "kind": "utter\n'
    (broken / "events.jsonl").write_text("".join(lines))
    result = CliRunner().invoke(app, ["inspect", str(broken), "--json"])
    assert result.exit_code == 0
    assert f"{broken / 'events.jsonl'}:6: skipped: not a JSON record" in result.stderr
    assert len(result.stdout.splitlines()) == len(lines) - 1


@pytest.mark.parametrize(("args", "message"), [
    (["--agent", "Zed"], "--agent: no agent 'Zed' in this run"),
    (["--kind", "teleport"], "--kind: no event kind 'teleport'"),
    (["--from", "2023-02-13T08:00+02:00"], "--from: 2023-02-13T08:00+02:00 must be given without a time zone"),
    (["--from", "2030-01-01T00:00"], "--from: 2030-01-01T00:00 is outside the run"),
    (["--to", "noon"], "--to: 'noon' is not an ISO time"),
])
def test_bad_filters_are_one_line_input_errors(run_dir: Path, args: list[str], message: str) -> None:
    result = CliRunner().invoke(app, ["inspect", str(run_dir), *args])
    assert result.exit_code == 2 and message in result.stderr and "Traceback" not in result.output


def test_a_folder_that_is_not_a_run_is_an_input_error(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["inspect", str(tmp_path)])
    assert result.exit_code == 2 and "not a run folder" in result.stderr


def _hashes(folder: Path) -> dict[str, str]:
    import hashlib

    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def test_an_interview_answers_from_memory_as_it_was_then(run_dir: Path) -> None:
    """EchoFake repeats the memories it is given: Bob knows of the picnic only once Ann has told him."""
    from worlds.runfolder import RunFolder
    from worlds.timeline.interview import interview

    log = _log(run_dir)
    heard = next(e for e in log if e["kind"] == "memory_added" and e["agents"] == ["Bob"]
                 and "picnic" in e["memory"]["text"])
    question = "Is anyone hosting a picnic?"
    late = asyncio.run(interview(RunFolder(run_dir), "Bob", question, model=EchoFake("Cafe")))
    assert "picnic" in late.answer and any("picnic" in m for m in late.memories)
    early_at = log[1]["sim_time"][:16]
    assert early_at < heard["sim_time"]
    early = asyncio.run(interview(RunFolder(run_dir), "Bob", question, at=early_at, model=EchoFake("Cafe")))
    assert "picnic" not in early.answer and early.memories_known < late.memories_known


def test_an_interview_through_the_cli_adds_only_its_own_file(run_dir: Path) -> None:
    before = _hashes(run_dir)
    before.pop("interviews.jsonl", None)
    result = CliRunner().invoke(app, ["interview", str(run_dir), "Cy", "What did you do today?"])
    assert result.exit_code == 0, result.output
    assert "memories it drew on" in result.stdout and "saved to" in result.stdout
    after = _hashes(run_dir)
    assert after.pop("interviews.jsonl") and after == before, "every other file is byte for byte the same"
    last = json.loads((run_dir / "interviews.jsonl").read_text().splitlines()[-1])
    assert (last["agent"], last["question"]) == ("Cy", "What did you do today?")


@pytest.mark.parametrize(("args", "message"), [
    (["Zed", "Hi?"], "no agent 'Zed' in this run"),
    (["Bob", "Hi?", "--at", "1999-01-01T00:00"], "--at: 1999-01-01T00:00 is outside the run"),
])
def test_bad_interviews_are_input_errors(run_dir: Path, args: list[str], message: str) -> None:
    result = CliRunner().invoke(app, ["interview", str(run_dir), *args])
    assert result.exit_code == 2 and message in result.stderr


def test_agents_with_names_beyond_ascii_are_found(tmp_path: Path) -> None:
    text = PICNIC_TOWN.replace("Cy", "Zoë").replace("2023-02-14T12:00", "2023-02-13T12:00")
    summary = asyncio.run(execute_run(parse_scenario(text), tmp_path, model=EchoFake("Cafe")))
    zoe = _json(summary.run_dir, "--agent", "Zoë")
    assert zoe and len(zoe) == sum(1 for e in _log(summary.run_dir) if "Zoë" in e["agents"] or e.get("speaker") == "Zoë")
