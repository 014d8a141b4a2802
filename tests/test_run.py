"""Whole runs on offline models: determinism, replay from cache, crash safety, Ctrl-C, stats, harvest."""

from __future__ import annotations

import asyncio
import json
import random
import signal
import subprocess
import sys
import time
import uuid
from datetime import datetime
from pathlib import Path

import pytest
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from typer.testing import CliRunner

from agents.gateway.backends.fake import FakeChatBackend
from agents.gateway.types import ModelReply, ModelRequest
from tests.conftest import comparable_log
from tests.fakes import EchoFake
from tests.test_world_run import PICNIC_TOWN
from worlds.cli import app
from worlds.eventlog import EventReader
from worlds.events import WALL_CLOCK_FIELDS
from worlds.runfolder import RunFolder
from worlds.runner import execute_run
from worlds.scenario import load_scenario, parse_scenario
from worlds.stats import compute_stats

CLI = [sys.executable, "-c", "from worlds.cli import main; main()"]


class JitteryFake(FakeChatBackend):
    """The fake model with random latency, so concurrent calls finish in a different order each run."""

    async def generate(self, request: ModelRequest) -> ModelReply:
        await asyncio.sleep(random.uniform(0, 0.01))
        return await super().generate(request)


class UnpredictableChat(BaseChatModel):
    """A chat model whose answers differ on every call: only a cache can make runs repeat."""

    @property
    def _llm_type(self) -> str:
        return "unpredictable"

    def _generate(self, messages, stop=None, run_manager=None, **kwargs) -> ChatResult:
        text = json.dumps({"line": f"Line {uuid.uuid4().hex[:8]}.", "end_conversation": random.random() < 0.3})
        return ChatResult(generations=[ChatGeneration(message=AIMessage(content=text))])


def run_small_town(small_town: Path, out: Path, model, **kwargs):
    scenario = load_scenario(small_town)
    return asyncio.run(execute_run(scenario, out, model=model, until=scenario.clock.start.replace(hour=12), **kwargs))


def test_same_seed_same_log_whatever_the_concurrency(small_town: Path, tmp_path: Path, monkeypatch):
    monkeypatch.setattr("agents.gateway.specs.FakeChatBackend", JitteryFake)
    first = run_small_town(small_town, tmp_path / "a", "fake")
    second = run_small_town(small_town, tmp_path / "b", "fake")
    log_a = comparable_log(RunFolder(first.run_dir).events_path)
    assert log_a == comparable_log(RunFolder(second.run_dir).events_path)
    kinds = {r["kind"] for r in log_a}
    assert {"plan", "activity_started", "model_call", "tick"} <= kinds


def test_different_seed_changes_the_run(small_town: Path, tmp_path: Path):
    first = run_small_town(small_town, tmp_path / "a", "fake")
    scenario = load_scenario(small_town).model_copy(update={"seed": 99})
    other = asyncio.run(execute_run(scenario, tmp_path / "b", model="fake", until=scenario.clock.start.replace(hour=12)))
    assert comparable_log(RunFolder(first.run_dir).events_path) != comparable_log(RunFolder(other.run_dir).events_path)


def test_replay_from_cache_reproduces_an_unpredictable_model(small_town: Path, tmp_path: Path):
    live = run_small_town(small_town, tmp_path / "live", UnpredictableChat())
    recorded = RunFolder(live.run_dir)
    replays = [
        run_small_town(small_town, tmp_path / f"replay{i}", UnpredictableChat(), replay_from=recorded)
        for i in range(2)
    ]
    logs = [comparable_log(RunFolder(r.run_dir).events_path) for r in replays]
    assert logs[0] == logs[1]
    assert replays[0].counters.cache_hits == replays[0].counters.calls > 0
    ignore = WALL_CLOCK_FIELDS | {"cached", "paid"}  # the live run missed the cache, its replays hit it (free)
    assert comparable_log(recorded.events_path, ignore) == comparable_log(RunFolder(replays[0].run_dir).events_path, ignore)
    fresh = run_small_town(small_town, tmp_path / "fresh", UnpredictableChat())
    assert comparable_log(recorded.events_path) != comparable_log(RunFolder(fresh.run_dir).events_path)


def _wait_for_ticks(events: Path, ticks: int, proc: subprocess.Popen, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if events.exists() and events.read_text().count('"kind":"tick"') >= ticks:
            return
        if proc.poll() is not None:
            pytest.fail(f"run exited early: {proc.stderr.read()}")
        time.sleep(0.05)
    pytest.fail("run made no progress")


def _start_run(small_town: Path, out: Path) -> tuple[subprocess.Popen, Path]:
    proc = subprocess.Popen(
        [*CLI, "run", str(small_town), "--model", "fake?latency=0.05", "--out", str(out)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not list(out.glob("*/events.jsonl")):
        time.sleep(0.05)
    return proc, next(out.glob("*/events.jsonl"))


def test_sigkill_mid_run_leaves_a_readable_log(small_town: Path, tmp_path: Path):
    proc, events = _start_run(small_town, tmp_path / "runs")
    _wait_for_ticks(events, 5, proc)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)
    reader = EventReader(events)
    last = reader.last_complete_tick()
    assert last >= 4
    kept = list(reader.events(complete_ticks_only=True))
    ticks = [e.tick for e in kept if e.kind == "tick"]
    assert ticks == list(range(last + 1))
    assert kept[-1].kind == "tick" and kept[-1].tick == last
    assert [e.seq for e in kept] == list(range(len(kept)))
    assert not any(e.kind == "run_ended" for e in reader.events())
    with events.open("a") as handle:  # a torn final write is skipped, not fatal
        handle.write('{"seq": 99999, "tick": ')
    assert list(reader.events(complete_ticks_only=True)) == kept
    stats = compute_stats(reader)
    assert stats.status == "running or crashed" and stats.ticks == last + 1


def test_ctrl_c_stops_at_a_tick_boundary(small_town: Path, tmp_path: Path):
    proc, events = _start_run(small_town, tmp_path / "runs")
    _wait_for_ticks(events, 3, proc)
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 130
    assert "stopping at the end of this tick" in stderr and "Traceback" not in stderr
    records = [json.loads(line) for line in events.read_text().splitlines()]
    assert records[-1]["kind"] == "run_ended" and records[-1]["status"] == "interrupted"
    last_tick = max(r["tick"] for r in records if r["kind"] == "tick")
    assert records[-1]["ticks"] == last_tick + 1


def test_failures_are_logged_and_counted(small_town: Path, tmp_path: Path):
    summary = run_small_town(small_town, tmp_path, "fake?error_rate=0.2&malformed_rate=0.3&garbage_rate=0.1")
    folder = RunFolder(summary.run_dir)
    report = compute_stats(folder.reader())
    counts = {k: report.events.get(k, 0) for k in ("model_retry", "model_repair", "model_fallback")}
    assert report.failures.retries == counts["model_retry"] == summary.counters.retries > 0
    assert report.failures.repairs == counts["model_repair"] == summary.counters.repairs > 0
    assert report.model_calls == report.events["model_call"] == summary.counters.calls
    per_agent_retries = sum(a.failures.retries for a in report.agents.values())
    assert per_agent_retries == report.failures.retries


def test_cli_run_stats_and_harvest(small_town: Path, tmp_path: Path):
    runner = CliRunner()
    result = runner.invoke(app, ["run", str(small_town), "--model", "fake", "--out", str(tmp_path), "--until", "+3h"])
    assert result.exit_code == 0, result.output
    run_dir = next(tmp_path.glob("small-town-*"))
    assert f"simulacra stats {run_dir}" in result.output and "simulacra harvest" in result.output
    talky = asyncio.run(execute_run(parse_scenario(PICNIC_TOWN), tmp_path / "talky", model=EchoFake("Cafe"),
                                    until=datetime(2023, 2, 13, 12, 0))).run_dir
    assert runner.invoke(app, ["stats", str(run_dir), "--json"]).exit_code == 0
    run_dir = talky  # a run whose agents are sure to talk, for the corpus checks below
    stats = json.loads(runner.invoke(app, ["stats", str(run_dir), "--json"]).stdout)
    assert {"events", "conversations", "model_calls", "tokens", "failures"} <= set(stats)
    assert stats["ticks"] == 36 and stats["status"] == "completed"
    assert stats["tokens"]["total"] == stats["tokens"]["prompt"] + stats["tokens"]["completion"] > 0
    assert stats["memories"] == stats["events"]["memory_added"] > 0
    assert stats["retrievals"] >= stats["utterances"]  # every line is spoken from what was just recalled
    assert sum(a["memories"] for a in stats["agents"].values()) == stats["memories"]
    table = runner.invoke(app, ["stats", str(run_dir)])
    assert table.exit_code == 0 and "Per agent" in table.stdout

    out = tmp_path / "corpus.jsonl"
    assert runner.invoke(app, ["harvest", str(run_dir), "--format", "openai", "-o", str(out)]).exit_code == 0
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert 0 < len(records) <= stats["conversations"]
    for record in records:
        roles = [m["role"] for m in record["messages"]]
        assert roles[0] == "system" and roles[1] == "user" and "assistant" in roles
        assert all(a != b for a, b in zip(roles[1:], roles[2:]))  # two speakers alternate
        meta = record["metadata"]
        assert meta["run"] == run_dir.name and meta["scenario"] == "picnic-town" and meta["model"] == "echo-fake"
        assert len(meta["participants"]) == 2 and meta["place"] == "Cafe"
        assert meta["sim_start"] <= meta["sim_end"] and meta["turns"] == len(record["messages"]) - 1
        assert record["messages"][0]["content"].startswith(f"You are {meta['assistant_agent']}")

    share = tmp_path / "share.jsonl"
    args = ["harvest", str(run_dir), "--format", "sharegpt", "-o", str(share), "--no-metadata"]
    assert runner.invoke(app, args).exit_code == 0
    shared = [json.loads(line) for line in share.read_text().splitlines()]
    assert len(shared) == len(records)
    assert all("metadata" not in r and r["conversations"][0]["from"] == "human" for r in shared)
    assert [t["value"] for t in shared[0]["conversations"]] == [m["content"] for m in records[0]["messages"][1:]]


def test_cli_user_errors_exit_2_without_traceback(small_town: Path, tmp_path: Path):
    bad_model = subprocess.run([*CLI, "run", str(small_town), "--model", "gpt-9"], capture_output=True, text=True)
    assert bad_model.returncode == 2 and "unknown model spec" in bad_model.stderr
    not_a_run = subprocess.run([*CLI, "stats", str(tmp_path)], capture_output=True, text=True)
    assert not_a_run.returncode == 2 and "not a run folder" in not_a_run.stderr
    bad_until = subprocess.run([*CLI, "run", str(small_town), "--until", "soon"], capture_output=True, text=True)
    assert bad_until.returncode == 2
    for result in (bad_model, not_a_run, bad_until):
        assert "Traceback" not in result.stderr


def test_memories_cite_the_events_that_produced_them(tmp_path: Path):
    summary = asyncio.run(execute_run(parse_scenario(PICNIC_TOWN), tmp_path, model=EchoFake("Cafe"),
                                      until=datetime(2023, 2, 13, 14, 0)))
    records = [json.loads(line) for line in RunFolder(summary.run_dir).events_path.read_text().splitlines()]
    by_seq = {r["seq"]: r for r in records}
    assert [r["seq"] for r in records] == list(range(len(records)))
    added = [r for r in records if r["kind"] == "memory_added"]
    seeded = [r for r in added if r["memory"]["source_event"] is None and r["memory"]["kind"] == "observation"]
    assert [m["memory"]["text"] for m in seeded] == ["Ann is hosting a picnic at the lake on Sunday."]
    perceived = {"move", "activity_started", "object_state", "utterance"}
    cited = 0
    for record in added:
        memory = record["memory"]
        if memory["source_event"] is not None:
            cited += 1
            source = by_seq[memory["source_event"]]
            assert source["kind"] in perceived | {"conversation_ended"}
            if source["kind"] == "move":  # the mover, and whoever was already there, saw the arrival
                assert source["destination"] in memory["text"]
                assert source["agents"][0] in memory["text"] or memory["agent"] == source["agents"][0]
            elif source["kind"] == "conversation_ended":
                assert memory["agent"] in source["agents"] and memory["kind"] == "chat"
            assert source["seq"] < record["seq"] and source["tick"] <= record["tick"]
    assert cited > 0
    chats = [r["memory"] for r in added if r["memory"]["kind"] == "chat"]
    assert chats and all(by_seq[m["source_event"]]["kind"] == "conversation_ended" for m in chats)
    for i, record in enumerate(records):
        if record["kind"] == "utterance":
            recall = next(r for r in reversed(records[:i]) if r["kind"] == "memory_retrieved")
            assert recall["agent"] == record["speaker"]
    scored = [r for r in records if r["kind"] == "importance_scored"]
    assert sum(len(r["scores"]) for r in scored) == len(added)
