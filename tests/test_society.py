"""Role-play batches (AI Society): every role pair's sessions, resumable after any interruption, strict about inputs."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from agents.gateway import ModelGateway, build_backend
from agents.gateway.backends.fake import FakeChatBackend
from agents.gateway.types import ModelReply, ModelRequest
from agents.roleplay.setup import CriticSetup, RoleCard, RoleplaySetup
from tests.conftest import comparable_log
from worlds.cli import app
from worlds.events import WALL_CLOCK_FIELDS, EventBase
from worlds.runfolder import RunFolder
from worlds.scenario import SocietyScenario, load_any, parse_any, parse_scenario
from worlds.society import batch as batch_module
from worlds.society.batch import BatchSummary, run_batch
from worlds.society.units import run_session, session_setup

#: Poet is on both sides, so Poet-with-Poet is skipped: three pairs, up to two tasks each.
SOCIETY = """\
name: society
seed: 1
models: {default: fake, embeddings: fake}
society:
  assistant_roles: {names: [Poet, Chef]}
  user_roles: {names: [Poet, Student]}
  tasks_per_pair: 2
  concurrency: 4
"""
PAIRS = {("Poet", "Student"): "a001-u002", ("Chef", "Poet"): "a002-u001", ("Chef", "Student"): "a002-u002"}

WORLD = """\
name: society
seed: 3
clock: {start: 2023-02-13T09:00, step: 10m, stop: 2023-02-13T10:00}
models: {default: fake, embeddings: fake}
memory: {store: memory}
world:
  places:
    Town: {Cafe: [counter]}
agents:
  - {name: Ann Lee, home: Cafe}
"""


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def _batch(tmp_path: Path, text: str = SOCIETY, out: str = "out", **kwargs: Any) -> BatchSummary:
    scenario = parse_any(text, str(tmp_path / "society.yaml"))
    assert isinstance(scenario, SocietyScenario)
    return asyncio.run(run_batch(scenario, tmp_path / out, **kwargs))


def _log(folder: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (folder / "events.jsonl").read_text().splitlines()]


def _ended_ids(records: list[dict[str, Any]]) -> list[str]:
    return [r["session_id"] for r in records if r["kind"] == "session_ended"]


def _transcripts(records: list[dict[str, Any]]) -> dict[str, list[tuple[str, str]]]:
    """Each session's messages, by id: what a corpus keeps."""
    found: dict[str, list[tuple[str, str]]] = {}
    for r in records:
        if r["kind"] == "session_message":
            found.setdefault(r["session_id"], []).append((r["role"], r["content"]))
    return found


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> tuple[BatchSummary, list[dict[str, Any]]]:
    """The batch run once, uninterrupted: what every resumed run must end up with."""
    summary = _batch(tmp_path_factory.mktemp("reference"))
    return summary, _log(summary.folder)


def test_a_batch_writes_a_session_per_task_of_every_pair_but_same_role_pairs(
    reference: tuple[BatchSummary, list[dict[str, Any]]]
) -> None:
    """Every assistant role meets every other user role; each brainstormed task becomes one finished session."""
    summary, records = reference
    assert summary.folder.name == "society" and summary.skipped == 0 and summary.pairs_failed == 0
    tasks = {(r["assistant_role"], r["user_role"]): r["tasks"] for r in records if r["kind"] == "tasks_brainstormed"}
    assert set(tasks) == set(PAIRS), "Poet is never paired with Poet"
    assert all(1 <= len(t) <= 2 for t in tasks.values()), "at most tasks_per_pair tasks per pair"
    expected = sorted(f"{PAIRS[pair]}-t{n:02d}" for pair, listed in tasks.items() for n in range(1, len(listed) + 1))
    ended = _ended_ids(records)
    assert sorted(ended) == expected and len(set(ended)) == len(ended)
    assert summary.planned == summary.finished == len(expected)
    assert sum(summary.reasons.values()) == len(expected)
    starts = {r["session_id"]: r for r in records if r["kind"] == "session_started"}
    for pair, listed in tasks.items():
        for n, task in enumerate(listed, 1):
            start = starts[f"{PAIRS[pair]}-t{n:02d}"]
            assert (start["assistant_role"], start["user_role"], start["task"]) == (*pair, task)
            assert start["assistant_agent"] is None and start["user_agent"] is None
    units = [r["unit"] for r in records if r["kind"] == "batch_unit"]
    assert units[0] == "start" and sorted(u for u in units if u.startswith("a")) == expected
    assert records[-1]["kind"] == "run_ended" and records[-1]["status"] == "completed"


def test_harvesting_a_batch_folder_gives_one_record_per_session(
    reference: tuple[BatchSummary, list[dict[str, Any]]], tmp_path: Path
) -> None:
    """`simulacra harvest` reads a batch folder like a run folder: one training record per finished session."""
    summary, records = reference
    out = tmp_path / "corpus.jsonl"
    result = CliRunner().invoke(app, ["harvest", str(summary.folder), "--format", "sharegpt", "-o", str(out)])
    assert result.exit_code == 0, result.output
    corpus = [json.loads(line) for line in out.read_text().splitlines()]
    assert sorted(r["metadata"]["session_id"] for r in corpus) == sorted(_ended_ids(records))
    assert all(r["metadata"]["kind"] == "roleplay" and r["conversations"] for r in corpus)
    assert f"{len(corpus)} role-play sessions" in result.stdout


def _assert_resumed(folder: Path, done_before: set[str], resumed: BatchSummary,
                    reference: tuple[BatchSummary, list[dict[str, Any]]]) -> None:
    """Each session once in the log, none redone, the rest finished, and the same corpus as without a break."""
    ref_summary, ref_records = reference
    records = _log(folder)
    ended = _ended_ids(records)
    assert sorted(ended) == sorted(set(ended)) == sorted(_ended_ids(ref_records)), "each session exactly once"
    assert resumed.skipped == len(done_before)
    assert resumed.skipped + resumed.finished == resumed.planned == ref_summary.planned
    assert _transcripts(records) == _transcripts(ref_records)
    again = asyncio.run(run_batch(load_any(folder / "scenario.yaml"), folder.parent))
    assert (again.finished, again.skipped, again.planned) == (0, ref_summary.planned, ref_summary.planned)
    assert _ended_ids(_log(folder)) == ended, "a finished batch runs nothing more"


def _done_sessions(folder: Path) -> set[str]:
    """Sessions whose block the log closed: what a resume must skip."""
    events = RunFolder(folder).reader().events({"session_ended"}, complete_ticks_only=True)
    return {e.session_id for e in events}


def test_a_cancelled_batch_resumes_each_session_exactly_once(
    reference: tuple[BatchSummary, list[dict[str, Any]]], tmp_path: Path
) -> None:
    """Cancelling mid-batch keeps the finished sessions; the re-run does only the rest."""
    scenario = parse_any(SOCIETY)

    async def interrupted() -> None:
        task: asyncio.Task[BatchSummary] | None = None

        def on_progress(done: int, planned: int) -> None:
            if done >= 2 and task is not None:
                task.cancel()

        task = asyncio.create_task(run_batch(scenario, tmp_path, on_progress=on_progress))
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(interrupted())
    folder = tmp_path / "society"
    records = _log(folder)
    assert records[-1]["kind"] == "run_ended" and records[-1]["status"] == "interrupted"
    done_before = _done_sessions(folder)
    assert 2 <= len(done_before) < reference[0].planned
    _assert_resumed(folder, done_before, asyncio.run(run_batch(scenario, tmp_path)), reference)


def test_a_log_torn_by_a_crash_resumes_each_session_exactly_once(
    reference: tuple[BatchSummary, list[dict[str, Any]]], tmp_path: Path
) -> None:
    """A crash leaves a half-written session and a torn line after the last closed unit; both are dropped."""
    whole = _batch(tmp_path)
    lines = (whole.folder / "events.jsonl").read_text().splitlines(keepends=True)
    closers = [i for i, line in enumerate(lines) if json.loads(line)["kind"] == "batch_unit"]
    keep = closers[5] + 1  # start, three pairs' tasks, two sessions
    tail = lines[keep:closers[6]]
    assert json.loads(tail[0])["kind"] == "session_started" and len(tail) > 2
    half = tail[2][: len(tail[2]) // 2]
    (whole.folder / "events.jsonl").write_text("".join(lines[:keep] + tail[:2]) + half)
    done_before = _done_sessions(whole.folder)
    assert len(done_before) == 2
    _assert_resumed(whole.folder, done_before, _batch(tmp_path), reference)


class InterruptingFake(FakeChatBackend):
    """The fake model, until its `calls`-th call: then Ctrl-C arrives (a real SIGINT) mid-session."""

    def __init__(self, calls: int) -> None:
        super().__init__()
        self.left = calls

    async def generate(self, request: ModelRequest) -> ModelReply:
        self.left -= 1
        if self.left == 0:
            os.kill(os.getpid(), signal.SIGINT)  # asyncio.run cancels the batch, as it does for a user's Ctrl-C
            await asyncio.sleep(5)
        return await super().generate(request)


def test_ctrl_c_through_the_cli_then_the_same_command_finishes_the_batch(
    reference: tuple[BatchSummary, list[dict[str, Any]]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`simulacra run` stopped by Ctrl-C exits 130 with the finished sessions saved; running it again completes it."""
    path = _write(tmp_path / "society.yaml", SOCIETY)
    args = ["run", str(path), "--out", str(tmp_path / "out")]
    real = batch_module.build_backend
    monkeypatch.setattr(batch_module, "build_backend", lambda spec: InterruptingFake(calls=20))
    stopped = CliRunner().invoke(app, args)
    assert stopped.exit_code == 130, stopped.output
    assert "interrupted" in stopped.stderr
    folder = tmp_path / "out" / "society"
    done_before = _done_sessions(folder)
    assert 1 <= len(done_before) < reference[0].planned
    monkeypatch.setattr(batch_module, "build_backend", real)
    finished = CliRunner().invoke(app, args)
    assert finished.exit_code == 0, finished.output
    skipped = re.search(r"already done \(skipped\)\s*│\s*(\d+)", finished.stdout)
    assert skipped and int(skipped.group(1)) == len(done_before)
    ended = _ended_ids(_log(folder))
    assert sorted(ended) == sorted(set(ended)) == sorted(_ended_ids(reference[1]))
    assert _transcripts(_log(folder)) == _transcripts(reference[1])


def _problem_lines(stderr: str) -> list[str]:
    """The FILE:LINE: field: message lines among the CLI's messages (a batch prints a banner first)."""
    return [line for line in stderr.splitlines() if re.match(r"^\S.*:\d+: \S.*: ", line)]


def _role_file_batch(tmp_path: Path, role_file: str) -> Path:
    text = SOCIETY.replace("assistant_roles: {names: [Poet, Chef]}", f"assistant_roles:\n    file: {role_file}")
    return _write(tmp_path / "society.yaml", text)


@pytest.mark.parametrize("command", ["validate", "run"])
@pytest.mark.parametrize(("case", "content"), [
    ("missing", None),
    ("empty", b""),
    ("blank", b"\n   \n1.\n"),
    ("not utf-8", b"Poet\nChef \xff\xfe\n"),
    ("binary", b"Poet\n\x00\x01\x02\n"),
])
def test_unusable_role_files_are_one_line_errors_naming_the_file(
    tmp_path: Path, command: str, case: str, content: bytes | None
) -> None:
    """A role list that is missing, empty or not text stops the batch with a located error and exit code 2."""
    path = _role_file_batch(tmp_path, "roles.txt")
    roles = tmp_path / "roles.txt"
    if content is not None:
        roles.write_bytes(content)
    args = [command, str(path)] + (["--out", str(tmp_path / "out")] if command == "run" else [])
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    lines = _problem_lines(result.stderr)
    assert len(lines) == 1 and result.stderr.endswith(lines[0] + "\n")
    expected = {
        "missing": f"{path}:{_line(path, 'file: roles.txt')}: society.assistant_roles.file: no such file",
        "empty": f"{roles}:1: ",
        "blank": f"{roles}:1: ",
        "not utf-8": f"{roles}:2: ",
        "binary": f"{roles}:2: ",
    }[case]
    assert lines[0].startswith(expected), lines[0]
    assert not (tmp_path / "out").exists(), "nothing is written for a batch that cannot start"


def test_a_batch_of_only_same_role_pairs_is_refused(tmp_path: Path) -> None:
    """Poet × Poet is never run, so a batch of only that would hold nothing: an input error, not an empty corpus."""
    path = _write(tmp_path / "same.yaml", SOCIETY.replace("[Poet, Chef]", "[Poet]").replace("[Poet, Student]", "[Poet]"))
    result = CliRunner().invoke(app, ["validate", str(path)])
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert f"{path}:{_line(path, 'user_roles:')}: society.user_roles: every pair is a role with itself" in result.stderr


def _line(path: Path, needle: str, after: int = 0) -> int:
    """The 1-based number of the first line below line `after` that contains `needle`."""
    return next(i for i, line in enumerate(path.read_text().splitlines(), 1) if i > after and needle in line)


@pytest.mark.parametrize(("change", "field", "needle"), [
    (("seed: 1", "seed: 2"), "seed", "seed:"),
    (("tasks_per_pair: 2", "tasks_per_pair: 3"), "society.tasks_per_pair", "tasks_per_pair:"),
    (("names: [Poet, Student]", "names: [Poet, Pupil]"), "society.user_roles.names", "user_roles:"),
])
def test_a_batch_folder_from_another_scenario_is_refused_at_the_stored_line(
    tmp_path: Path, change: tuple[str, str], field: str, needle: str
) -> None:
    """Resuming with a changed scenario would mix two corpora: exit 2 naming OUT/NAME/scenario.yaml and the line."""
    _batch(tmp_path)
    folder = tmp_path / "out" / "society"
    stored, log = (folder / "scenario.yaml"), (folder / "events.jsonl").read_bytes()
    changed = _write(tmp_path / "changed.yaml", SOCIETY.replace(*change))
    result = CliRunner().invoke(app, ["run", str(changed), "--out", str(tmp_path / "out")])
    assert result.exit_code == 2, result.output
    lines = _problem_lines(result.stderr)
    assert len(lines) == 1 and "Traceback" not in result.output
    line = _line(stored, "names:", after=_line(stored, needle)) if needle == "user_roles:" else _line(stored, needle)
    assert lines[0].startswith(f"{stored}:{line}: {field}: this batch folder was made from a "
                               f"different scenario"), lines[0]
    assert (folder / "events.jsonl").read_bytes() == log, "a refused resume writes nothing"


def test_a_seed_override_on_the_command_line_counts_as_another_scenario(tmp_path: Path) -> None:
    """`--seed` changes what a batch would write, so it may not resume a folder made with another seed."""
    _batch(tmp_path)
    path = _write(tmp_path / "society.yaml", SOCIETY)
    result = CliRunner().invoke(app, ["run", str(path), "--out", str(tmp_path / "out"), "--seed", "7"])
    stored = tmp_path / "out" / "society" / "scenario.yaml"
    assert result.exit_code == 2
    assert _problem_lines(result.stderr) == [(f"{stored}:{_line(stored, 'seed:')}: seed: this batch folder was made "
                                             f"from a different scenario (here 1); use another --out folder")]


def test_a_folder_holding_a_world_run_is_not_resumed_as_a_batch(tmp_path: Path) -> None:
    """A batch never appends to a world run's log: exit 2 naming the folder's scenario file."""
    folder = RunFolder(tmp_path / "out" / "society")
    folder.path.mkdir(parents=True)
    folder.write_scenario(parse_scenario(WORLD))
    folder.events_path.write_text('{"kind": "tick"}\n')
    path = _write(tmp_path / "society.yaml", SOCIETY)
    result = CliRunner().invoke(app, ["run", str(path), "--out", str(tmp_path / "out")])
    assert result.exit_code == 2, result.output
    lines = _problem_lines(result.stderr)
    assert len(lines) == 1 and lines[0].startswith(f"{folder.scenario_path}:1: ")
    assert "world run" in lines[0]
    assert folder.events_path.read_text() == '{"kind": "tick"}\n'


def _setup(session_id: str, task: str) -> RoleplaySetup:
    scenario = parse_any(SOCIETY.replace("  concurrency: 4\n", "  concurrency: 4\n  session: {max_messages: 6}\n"))
    assert isinstance(scenario, SocietyScenario)
    number = int(session_id[-2:])
    return session_setup(scenario, (1, "Poet", 2, "Student"), number, task)


def _comparable(events: list[EventBase]) -> list[dict[str, Any]]:
    return [{k: v for k, v in e.model_dump(mode="json").items() if k not in WALL_CLOCK_FIELDS} for e in events]


def test_a_session_is_a_self_contained_unit() -> None:
    """run_session needs only its setup: run beside another on one gateway, it returns exactly what it does alone."""
    one, two = _setup("x-t01", "Write an ode to bread"), _setup("x-t02", "Plan a reading")
    assert (one.session_id, two.session_id) == ("a001-u002-t01", "a001-u002-t02")
    start, step = datetime(2024, 1, 1, 9, 0), timedelta(minutes=3)

    async def together() -> tuple[list[EventBase], list[EventBase]]:
        gateway = ModelGateway(build_backend("fake"))
        return tuple(await asyncio.gather(run_session(one, gateway, start, step),
                                          run_session(two, gateway, start, step)))  # type: ignore[return-value]

    first, second = asyncio.run(together())
    for setup, events in ((one, first), (two, second)):
        kinds = [e.kind for e in events]
        assert kinds[0] != "session_ended" and "session_started" in kinds and kinds[-1] == "session_ended"
        assert {getattr(e, "session_id", setup.session_id) for e in events} == {setup.session_id}
        assert {e.kind for e in events} <= {"session_started", "session_message", "session_ended", "model_call",
                                            "model_retry", "critic_choice"}
        messages = [e for e in events if e.kind == "session_message"]
        assert [e.sim_time for e in messages] == [start + i * step for i in range(len(messages))]
        alone = asyncio.run(run_session(setup, ModelGateway(build_backend("fake")), start, step))
        assert _comparable(alone) == _comparable(events)


def test_a_session_setup_survives_json() -> None:
    """A setup is the whole unit of work, so it must cross a process or machine boundary unchanged."""
    setup = RoleplaySetup(
        session_id="a001-u002-t01", seed=12345, task="Write an ode to bread", specify_task=True, plan_task=True,
        max_messages=9, no_instruction_turns=4, window=6,
        assistant=RoleCard(role="Poet", agent="Ann Lee", persona="Ann runs the cafe.", memories=["Ann likes rye."]),
        user=RoleCard(role="Student"),
        critic=CriticSetup(role="Editor", candidates=2, judges="both", persona="A strict editor."),
    )
    assert RoleplaySetup.model_validate_json(setup.model_dump_json()) == setup
    batch_setup = _setup("x-t01", "Write an ode to bread")
    assert RoleplaySetup.model_validate_json(batch_setup.model_dump_json()) == batch_setup


def test_the_stored_batch_scenario_reads_back_as_the_same_batch(
    reference: tuple[BatchSummary, list[dict[str, Any]]]
) -> None:
    """The folder's scenario.yaml is the resolved batch: reading it back gives what ran (so resumes compare equal)."""
    summary, _ = reference
    stored = load_any(summary.folder / "scenario.yaml")
    assert isinstance(stored, SocietyScenario)
    assert stored == parse_any(SOCIETY)
    assert comparable_log(summary.folder / "events.jsonl")[0]["kind"] == "run_started"


def test_a_corrupted_line_mid_log_is_named_and_passed_over_and_its_session_run_again(tmp_path: Path) -> None:
    path = _write(tmp_path / "society.yaml", SOCIETY)
    assert CliRunner().invoke(app, ["run", str(path), "--out", str(tmp_path)]).exit_code == 0
    log = tmp_path / "society" / "events.jsonl"
    lines = log.read_text().split("\n")
    number = next(i for i, line in enumerate(lines) if '"kind":"session_ended"' in line)
    damaged = json.loads(lines[number])["session_id"]
    lines[number] = lines[number][:30]  # a record cut short mid-file, not a torn tail
    log.write_text("\n".join(lines))
    result = CliRunner().invoke(app, ["run", str(path), "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert f"events.jsonl:{number + 1}: skipped: not a JSON record" in result.stderr.replace("\n", "")
    ended = [json.loads(line)["session_id"] for line in log.read_text().splitlines()
             if '"kind":"session_ended"' in line and line.endswith("}")]
    assert sorted(ended) == sorted(set(ended) | {damaged}) and ended.count(damaged) == 1, \
        "the damaged session is written again, the others are not"
