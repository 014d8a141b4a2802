"""Self-* loops in batch over input files: one session per line, resumable, located input errors, harvestable."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from worlds.cli import app
from worlds.corpus.filters import HarvestFilters
from worlds.harvest import HarvestOptions, harvest
from worlds.harvest_loops import LoopHarvestOptions
from worlds.loopbatch import POOL_FILE, run_loop_batch
from worlds.runfolder import RunFolder
from worlds.scenario import load_any

QUESTIONS = [{"id": f"q{i}", "question": f"What is {i} plus {i}?", "answer": 2 * i} for i in range(1, 7)]


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def _batch_files(tmp_path: Path, loop: str = "self_consistency", rows: list[dict] | None = None,
                 options: str = "k: 3") -> Path:
    lines = "".join(json.dumps(row) + "\n" for row in (QUESTIONS if rows is None else rows))
    _write(tmp_path / "tasks.jsonl", lines)
    return _write(tmp_path / "batch.yaml", f"name: lb\nseed: 3\nmodels: {{default: fake}}\n"
                                             f"loops: {{type: {loop}, input: tasks.jsonl, concurrency: 2, {options}}}\n")


def _log(folder: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (folder / "events.jsonl").read_text().split("\n") if line]


def _ended(records: list[dict[str, Any]]) -> list[str]:
    return [r["session_id"] for r in records if r["kind"] == "session_ended"]


def test_one_session_per_line_with_each_rows_own_answer(tmp_path: Path) -> None:
    path = _batch_files(tmp_path)
    summary = asyncio.run(run_loop_batch(load_any(path), path, tmp_path / "out"))
    assert (summary.planned, summary.finished, summary.skipped) == (6, 6, 0)
    records = _log(tmp_path / "out" / "lb")
    assert sorted(_ended(records)) == [f"q{i}" for i in range(1, 7)]
    started = {r["session_id"]: r for r in records if r["kind"] == "session_started"}
    assert started["q3"]["task"] == "What is 3 plus 3?" and started["q3"]["loop"] == "self_consistency"
    blocks = [r["unit"] for r in records if r["kind"] == "batch_unit"]
    assert blocks[0] == "start" and sorted(blocks[1:]) == sorted(started)


def test_a_cancelled_loop_batch_resumes_each_session_exactly_once(tmp_path: Path) -> None:
    path = _batch_files(tmp_path)
    scenario = load_any(path)
    reference = asyncio.run(run_loop_batch(scenario, path, tmp_path / "ref"))

    async def interrupted() -> None:
        task: asyncio.Task | None = None

        def on_progress(done: int, planned: int) -> None:
            if done >= 2 and task is not None:
                task.cancel()

        task = asyncio.create_task(run_loop_batch(scenario, path, tmp_path / "out", on_progress=on_progress))
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(interrupted())
    folder = tmp_path / "out" / "lb"
    before = set(_ended(_log(folder)))
    assert 2 <= len(before) < 6
    again = asyncio.run(run_loop_batch(scenario, path, tmp_path / "out"))
    assert again.skipped == len(before) and again.finished == 6 - len(before)
    ended = _ended(_log(folder))
    assert sorted(ended) == sorted(set(ended)) == sorted(_ended(_log(tmp_path / "ref" / "lb")))
    assert reference.finished == 6


def test_self_instruct_grows_its_pool_round_by_round_and_carries_on_from_its_checkpoint(tmp_path: Path) -> None:
    # A little latency, so that the batch yields to the event loop and the cancel lands between rounds.
    path = _write(tmp_path / "si.yaml", "name: si\nseed: 1\nmodels: {default: 'fake?latency=0.001'}\n"
                                        "loops: {type: self_instruct, target: 12, max_rounds: 20}\n")
    scenario = load_any(path)

    async def one_round() -> None:
        task: asyncio.Task | None = None

        def on_progress(kept: int, planned: int) -> None:
            if kept >= 1 and task is not None:
                task.cancel()

        task = asyncio.create_task(run_loop_batch(scenario, path, tmp_path / "out", on_progress=on_progress))
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(one_round())
    folder = tmp_path / "out" / "si"
    first = [json.loads(line) for line in (folder / POOL_FILE).read_text().splitlines()]
    assert 1 <= len(first) < 12
    again = asyncio.run(run_loop_batch(scenario, path, tmp_path / "out"))
    pool = [json.loads(line) for line in (folder / POOL_FILE).read_text().splitlines()]
    assert again.skipped == len(first) and len(pool) >= 12 and pool[: len(first)] == first
    assert {"id", "name", "instruction", "instances", "is_classification"} <= set(pool[0])
    rounds = [r["unit"] for r in _log(folder) if r["kind"] == "batch_unit" and r["unit"].startswith("round-")]
    assert rounds == [f"round-{i}" for i in range(1, len(rounds) + 1)], "no round is run twice"


@pytest.mark.parametrize(("line", "field", "message"), [
    ('{"id": "a", "question": "fine"}\n{"id": "b", "question": \n', "(line)", "not valid JSON"),
    ('{"id": "a", "question": "fine"}\n{"id": "b"}\n', "(line)", "give the task as"),
    ('{"id": "a", "question": "fine"}\n{"id": "a", "question": "again"}\n', "id", "'a' is used again"),
    ('{"id": "a", "question": "fine"}\n[1, 2]\n', "(line)", "should be an object"),
])
def test_a_malformed_input_line_is_an_error_at_its_line(tmp_path: Path, line: str, field: str, message: str) -> None:
    path = _batch_files(tmp_path)
    (tmp_path / "tasks.jsonl").write_text(line)
    result = CliRunner().invoke(app, ["run", str(path), "--out", str(tmp_path / "out")])
    assert result.exit_code == 2 and "Traceback" not in result.output
    first = result.stderr.strip().splitlines()[0]
    assert first.startswith(f"{tmp_path / 'tasks.jsonl'}:2: {field}: ") and message in first, first
    assert not (tmp_path / "out").exists(), "nothing is written for a batch that cannot start"


def test_self_debug_rows_need_tests_and_take_humaneval_fields(tmp_path: Path) -> None:
    rows = [{"task_id": "HumanEval/0", "prompt": "def f():\n    pass\n", "test": "def check(c):\n    pass\n",
             "entry_point": "f"}, {"task_id": "x", "prompt": "def g(): pass"}]
    path = _batch_files(tmp_path, "self_debug", rows, options="max_turns: 1")
    result = CliRunner().invoke(app, ["run", str(path), "--out", str(tmp_path / "out")])
    assert result.exit_code == 2 and f"{tmp_path / 'tasks.jsonl'}:2: tests: Self-Debug needs the tests" in result.stderr
    path = _batch_files(tmp_path, "self_debug", rows[:1], options="max_turns: 1")
    folder = asyncio.run(run_loop_batch(load_any(path), path, tmp_path / "out")).folder
    records = _log(folder)
    (started,) = [r for r in records if r["kind"] == "session_started"]
    assert (started["session_id"], started["task"]) == ("HumanEval/0", rows[0]["prompt"])
    (ended,) = [r for r in records if r["kind"] == "session_ended"]
    assert ended["reason"] == "max_turns" and ended["result"]["outcomes"] == ["error"], "the fake writes no code"


def test_loop_sessions_harvest_in_the_shape_their_data_is_used(tmp_path: Path) -> None:
    rows = [{"id": "a", "question": "Say hello politely."}, {"id": "b", "question": "Name a colour."}]
    path = _batch_files(tmp_path, "self_eval", rows, options="k: 3")
    folder = asyncio.run(run_loop_batch(load_any(path), path, tmp_path / "out")).folder
    p_true = {r["session_id"]: r["result"]["p_true"] for r in _log(folder) if r["kind"] == "session_ended"}
    out = tmp_path / "corpus.jsonl"
    counts = harvest([RunFolder(folder)], "openai", out)
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert counts.loops == counts.written == 2
    assert [m["role"] for m in records[0]["messages"]] == ["system", "user", "assistant"]
    assert records[0]["metadata"]["kind"] == "self_eval" and records[0]["metadata"]["loop_result"]["p_true"] == p_true["a"]
    cut = sorted(p_true.values())[1]
    counts = harvest([RunFolder(folder)], "openai", out, HarvestOptions(filters=HarvestFilters(min_p_true=cut)))
    assert counts.written == sum(1 for p in p_true.values() if p >= cut) == 1


def test_input_lines_end_at_newlines_only(tmp_path: Path) -> None:
    """A question holding U+2028 (which JSON may leave unescaped) is one line, not two."""
    rows = [{"id": "a", "question": "First part\u2028second part?"}, {"id": "b", "question": "Plain?"}]
    path = _batch_files(tmp_path, rows=rows)
    (tmp_path / "tasks.jsonl").write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    summary = asyncio.run(run_loop_batch(load_any(path), path, tmp_path / "out"))
    assert summary.planned == 2 and sorted(_ended(_log(tmp_path / "out" / "lb"))) == ["a", "b"]


def test_harvest_leaves_out_failed_ends_failing_code_and_placeholders(tmp_path: Path) -> None:
    from worlds.events import SessionEnded, SessionMessage, SessionStarted
    from worlds.harvest_loops import loop_pairs

    when = __import__("datetime").datetime(2024, 1, 1)

    def session(loop: str, reason: str, contents: list[str], result: dict) -> tuple:
        start = SessionStarted(tick=0, sim_time=when, session_id="s", loop=loop, assistant_role="Coder",
                               user_role="Executor", task="Write add.")
        turns = [SessionMessage(tick=0, sim_time=when, session_id="s", index=i, role="assistant" if i % 2 else "user",
                                speaker="x", content=c) for i, c in enumerate(contents)]
        return start, turns, SessionEnded(tick=0, sim_time=when, session_id="s", reason=reason, messages=len(turns),
                                          tokens=0, result=result)

    keep = LoopHarvestOptions()
    passing = session("self_debug", "tests_passed", ["Write add.", "def add(a, b): return a + b", "All passed."],
                      {"passed": True})
    assert loop_pairs(*passing, keep) == [[("user", "Write add."), ("assistant", "def add(a, b): return a + b")]]
    failing = session("self_debug", "max_turns", ["Write add.", "def add(a, b): return 0", "A test failed."],
                      {"passed": False})
    assert loop_pairs(*failing, keep) == [] and loop_pairs(*failing, LoopHarvestOptions(failing_code=True))
    assert loop_pairs(*session("self_refine", "model_failure", ["Task", "Draft"], {}), keep) == []
    assert loop_pairs(*session("self_refine", "max_iterations", ["Task", "(nothing)"], {}), keep) == []


def test_running_a_finished_loop_batch_again_does_nothing_and_says_so(tmp_path: Path) -> None:
    path = _batch_files(tmp_path)
    asyncio.run(run_loop_batch(load_any(path), path, tmp_path / "out"))
    again = asyncio.run(run_loop_batch(load_any(path), path, tmp_path / "out"))
    assert (again.planned, again.skipped, again.finished) == (6, 6, 0)
    records = _log(tmp_path / "out" / "lb")
    assert records[-1]["status"] == "completed" and records[-1]["detail"] == "6 of 6 written"
    assert len(_ended(records)) == 6
