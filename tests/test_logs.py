"""Stats and harvest read only the closed part of a log: a tick cut short by a crash is counted, never used."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path

from typer.testing import CliRunner

from tests.conftest import SMALL_TOWN
from worlds.cli import app
from worlds.events import (
    ConversationEnded,
    ConversationStarted,
    EventBase,
    RunEnded,
    RunStarted,
    TickCompleted,
    Utterance,
    Warning_,
)
from worlds.harvest import harvest
from worlds.runfolder import RunFolder
from worlds.stats import compute_stats

T0 = datetime(2023, 2, 13, 8)
HOMES = {"Ann": "Ann's flat", "Bob": "Bob's flat", "Cy": "Cy's flat"}


def at(tick: int) -> dict:
    return {"tick": tick, "sim_time": T0 + timedelta(minutes=10 * tick)}


def said(tick: int, conversation: str, speaker: str, text: str, place: str) -> Utterance:
    return Utterance(**at(tick), agents=[speaker], conversation_id=conversation, speaker=speaker, place=place,
                     text=text)


def ended(tick: int, conversation: str, agents: list[str], place: str, reason: str, lines: int) -> ConversationEnded:
    return ConversationEnded(**at(tick), agents=agents, conversation_id=conversation, place=place, reason=reason,
                             lines=lines)


def two_closed_ticks() -> list[EventBase]:
    """Tick 0: Ann and Bob talk and say goodbye. Tick 1: Ann and Cy start talking."""
    return [
        RunStarted(**at(0), run_id="town-1", scenario="small-town", seed=3, model="fake", until=at(6)["sim_time"]),
        Warning_(**at(0), message="probes are not asked by this version"),
        ConversationStarted(**at(0), agents=["Ann", "Bob"], conversation_id="c1", place="Cafe"),
        said(0, "c1", "Ann", "Morning, Bob!", "Cafe"),
        said(0, "c1", "Bob", "Morning, Ann. Bye for now.", "Cafe"),
        ended(0, "c1", ["Ann", "Bob"], "Cafe", "farewell", 2),
        TickCompleted(**at(0), positions={**HOMES, "Ann": "Cafe", "Bob": "Cafe"}),
        ConversationStarted(**at(1), agents=["Ann", "Cy"], conversation_id="c2", place="Park"),
        said(1, "c2", "Ann", "Writing a poem, Cy?", "Park"),
        said(1, "c2", "Cy", "About the rain, yes.", "Park"),
        TickCompleted(**at(1), positions={**HOMES, "Ann": "Park", "Cy": "Park"}),
    ]


def write_run(tmp_path: Path, events: list[EventBase], torn: str = "") -> RunFolder:
    """A run folder written by hand: the scenario, numbered events one per line, and an optional torn last line."""
    run_dir = tmp_path / "town-1"
    run_dir.mkdir()
    (run_dir / RunFolder.SCENARIO_FILE).write_text(SMALL_TOWN)
    lines = [e.model_copy(update={"seq": n}).model_dump_json() + "\n" for n, e in enumerate(events)]
    (run_dir / "events.jsonl").write_text("".join(lines) + torn)
    return RunFolder.open(run_dir)


def crashed_in_tick_2(tmp_path: Path) -> RunFolder:
    """Tick 2 ended c2 and then the process died: no `tick` event closed it, and the last write is torn."""
    tail = [
        said(2, "c2", "Ann", "Lovely. See you!", "Park"),
        ended(2, "c2", ["Ann", "Cy"], "Park", "farewell", 3),
    ]
    return write_run(tmp_path, two_closed_ticks() + tail, torn='{"seq": 13, "tick": 2, "ki')


def test_reader_stops_at_the_last_closed_tick(tmp_path: Path):
    reader = crashed_in_tick_2(tmp_path).reader()
    assert reader.extent() == (11, 13)  # the torn line is not a record at all
    kept = list(reader.events(complete_ticks_only=True))
    assert len(kept) == 11 and isinstance(kept[-1], TickCompleted) and kept[-1].tick == 1
    assert len(list(reader.events())) == 13
    assert [e.speaker for e in reader.events({"utterance"}, complete_ticks_only=True)] == ["Ann", "Bob", "Ann", "Cy"]


def test_stats_count_closed_ticks_and_report_the_cut_tail(tmp_path: Path):
    report = compute_stats(crashed_in_tick_2(tmp_path).reader())
    assert report.incomplete_tail_events == 2
    assert report.ticks == 2 and report.status == "running or crashed" and report.run == "town-1"
    assert report.conversations == 2 and report.utterances == 4 and report.failures.warnings == 1
    assert report.events["utterance"] == 4 and report.events["conversation_ended"] == 1
    assert report.agents["Ann"].utterances == 2 and report.agents["Ann"].conversations == 2
    assert report.agents["Cy"].utterances == 1


def test_harvest_skips_conversations_that_never_ended_in_closed_ticks(tmp_path: Path):
    folder = crashed_in_tick_2(tmp_path)
    out = tmp_path / "corpus.jsonl"
    counts = harvest([folder], "openai", out)
    assert counts.written == 1 and counts.unfinished == 1
    (record,) = [json.loads(line) for line in out.read_text().splitlines()]
    assert record["metadata"]["conversation_id"] == "c1" and record["metadata"]["end_reason"] == "farewell"
    assert [m["content"] for m in record["messages"][1:]] == ["Morning, Bob!", "Morning, Ann. Bye for now."]


def test_the_runs_closing_block_counts_as_closed(tmp_path: Path):
    """Conversations cut off by the end of the run end with `run_ended`, after the last tick, with the run's end."""
    closing = [
        ended(2, "c2", ["Ann", "Cy"], "Park", "run_ended", 2),
        RunEnded(**at(2), status="completed", ticks=2),
    ]
    folder = write_run(tmp_path, two_closed_ticks() + closing)
    report = compute_stats(folder.reader())
    assert report.status == "completed" and report.incomplete_tail_events == 0
    counts = harvest([folder], "sharegpt", tmp_path / "share.jsonl")
    assert counts.written == 2 and counts.unfinished == 0
    shared = (tmp_path / "share.jsonl").read_text().splitlines()
    reasons = [json.loads(line)["metadata"]["end_reason"] for line in shared]
    assert reasons == ["farewell", "run_ended"]


def test_cli_shows_what_it_left_out(tmp_path: Path):
    folder = crashed_in_tick_2(tmp_path)
    runner = CliRunner()
    table = runner.invoke(app, ["stats", str(folder.path)])
    assert table.exit_code == 0 and "left out" in table.stdout
    harvested = runner.invoke(app, ["harvest", str(folder.path), "-o", str(tmp_path / "c.jsonl")])
    assert harvested.exit_code == 0 and "1 unfinished conversations or sessions skipped" in harvested.stdout
