"""The harvest pipeline over many runs: dedup across runs, a stable split, the dataset card, unreadable runs,
whose side a conversation is written from, and where each turn's memories came from."""

from __future__ import annotations

import asyncio
import json
import random
import shutil
from datetime import datetime
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from tests.fakes import EchoFake
from tests.harvest_runs import chat, conversation, retrieved, write_run
from tests.test_world_run import PICNIC_TOWN
from worlds.cli import app
from worlds.corpus.reading import HarvestReader
from worlds.eventlog import EventReader
from worlds.harvest import HarvestOptions, harvest
from worlds.runner import execute_run
from worlds.scenario import parse_scenario

TOPICS = ["the bakery", "the river", "the market", "the old mill", "the school play", "the storm", "the garden",
          "the new bridge", "the library", "the harvest fair"]


WORDS = ("apple bread candle doctor engine feather garden harbour island jacket kettle ladder meadow needle "
         "orchard pepper quarry ribbon saddle tunnel umbrella violin window yogurt zebra anchor bucket chimney "
         "dolphin emerald fountain glacier hammock igloo jungle kayak lantern mirror nectar oyster pillow").split()


def talk(topic: str) -> list[tuple[str, str]]:
    """Four lines about a topic, each with words drawn for that topic alone: no two topics' talks are near."""
    rng = random.Random(topic)
    return chat(f"Have you heard the news about {topic}, with the {' and the '.join(rng.sample(WORDS, 4))}?",
                f"Yes, the whole town talks of the {', the '.join(rng.sample(WORDS, 5))}.",
                f"I think the {' and the '.join(rng.sample(WORDS, 4))} will change the whole town completely.",
                "Let us talk about it again on Sunday. Goodbye!")


def town(folder: Path, topics: list[str] = TOPICS) -> Path:
    return write_run(folder, [conversation(n, f"c{n}", talk(topic)) for n, topic in enumerate(topics)])


def records(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.fixture
def out(tmp_path: Path) -> Path:
    (tmp_path / "out").mkdir()
    return tmp_path / "out" / "corpus.jsonl"


def test_two_identical_runs_give_one_copy_of_each_conversation(tmp_path: Path, out: Path) -> None:
    first = town(tmp_path / "runs" / "a")
    shutil.copytree(first, tmp_path / "runs" / "b")
    report = harvest([first, tmp_path / "runs" / "b"], "openai", out)
    kept = records(out)
    assert len(kept) == len(TOPICS) and report.removed["exact duplicate"] == len(TOPICS)
    assert {r["metadata"]["conversation_id"] for r in kept} == {f"c{n}" for n in range(len(TOPICS))}
    everything = harvest([first, tmp_path / "runs" / "b"], "openai", out, HarvestOptions(dedup=False))
    assert len(records(out)) == 2 * len(TOPICS) == everything.kept
    assert everything.quality.near_duplicate_rate == 0.5 and report.quality.near_duplicate_rate == 0.0


def test_near_duplicates_go_and_distinct_dialogues_stay(tmp_path: Path, out: Path) -> None:
    original = talk("the bakery")
    changed = [(who, text.replace("will change", "could change")) for who, text in original]
    run = write_run(tmp_path / "run", [conversation(0, "c0", original), conversation(1, "c1", changed),
                                       conversation(2, "c2", talk("the river"))])
    report = harvest([run], "openai", out)
    assert [r["metadata"]["conversation_id"] for r in records(out)] == ["c0", "c2"]
    assert report.removed["near duplicate"] == 1 and report.removed["exact duplicate"] == 0


def test_the_split_is_stable_and_the_test_share_has_its_own_file(tmp_path: Path, out: Path) -> None:
    topics = [f"{topic} and {other}" for topic in TOPICS for other in TOPICS[:4]]
    run = town(tmp_path / "run", topics)
    options = HarvestOptions(test_fraction=0.25, dedup=False)
    report = harvest([run], "openai", out, options)
    test = out.with_name("corpus.test.jsonl")
    train_ids = [r["metadata"]["conversation_id"] for r in records(out)]
    test_ids = [r["metadata"]["conversation_id"] for r in records(test)]
    assert sorted(train_ids + test_ids) == sorted(f"c{n}" for n in range(len(topics)))
    assert 0 < len(test_ids) < len(train_ids) and report.records == {"train": len(train_ids), "test": len(test_ids)}
    harvest([run], "openai", out, options)
    assert [r["metadata"]["conversation_id"] for r in records(test)] == test_ids


def _card_table(card: str) -> dict[str, int]:
    rows = [line.strip("|").split("|") for line in card.splitlines() if line.startswith("| ")]
    return {row[0].strip(): int(row[1]) for row in rows if len(row) == 2 and row[1].strip().isdigit()}


def test_the_card_accounts_for_every_dialogue_read(tmp_path: Path, out: Path) -> None:
    runs = [town(tmp_path / "runs" / "a"), town(tmp_path / "runs" / "b", TOPICS[:3] + ["the lake"])]
    extra = write_run(tmp_path / "runs" / "c", [conversation(0, "short", chat("Hi."))])
    result = CliRunner().invoke(app, ["harvest", *map(str, [*runs, extra]), "-o", str(out), "--license", "cc-by-4.0",
                                      "--test-fraction", "0.2"])
    assert result.exit_code == 0, result.output
    card = (out.parent / "README.md").read_text()
    header = yaml.safe_load(card.split("---\n")[1])
    assert header["license"] == "cc-by-4.0" and header["task_categories"] == ["text-generation"]
    assert header["size_categories"] == ["n<1K"]
    assert header["configs"][0]["data_files"] == [{"split": "train", "path": "corpus.jsonl"},
                                                 {"split": "test", "path": "corpus.test.jsonl"}]
    table = _card_table(card)
    removed = sum(n for step, n in table.items() if step.startswith("removed:"))
    written = len(records(out)) + len(records(out.with_name("corpus.test.jsonl")))
    assert table["read"] == 15 and removed == 4 and table["kept"] == table["read"] - removed == written
    assert table["removed: exact duplicate"] == 3 and table["removed: --min-turns"] == 1
    assert all(f"| {run.name} | small-town | fake |" in card for run in [*runs, extra])
    assert "| dialogues | 11 (11 conversations, 0 role-play) |" in card
    assert (out.parent / "corpus.lengths.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_readme_that_is_not_a_card_is_never_replaced(tmp_path: Path, out: Path) -> None:
    """`-o corpus.jsonl` in a project folder must not overwrite the project's README: the card is skipped."""
    (out.parent / "README.md").write_text("# my notes\n")
    result = CliRunner().invoke(app, ["harvest", str(town(tmp_path / "run")), "-o", str(out)])
    assert result.exit_code == 0 and "dataset card not written" in result.output
    assert (out.parent / "README.md").read_text() == "# my notes\n" and len(records(out)) == len(TOPICS)
    assert not (out.parent / "corpus.lengths.png").exists()
    (out.parent / "README.md").unlink()
    CliRunner().invoke(app, ["harvest", str(tmp_path / "run"), "-o", str(out)])
    again = CliRunner().invoke(app, ["harvest", str(tmp_path / "run"), "-o", str(out), "--max-turns", "3"])
    assert again.exit_code == 0 and "| removed: --max-turns | 10 |" in (out.parent / "README.md").read_text()


def test_an_unreadable_run_is_named_and_skipped_and_strict_makes_it_fatal(tmp_path: Path, out: Path) -> None:
    good = town(tmp_path / "runs" / "a")
    broken = town(tmp_path / "runs" / "b", ["the lake", "the hill"])
    lines = (broken / "events.jsonl").read_text().splitlines(keepends=True)
    lines[-4] = lines[-4].replace('"speaker":"Bob"', '"speaker":7')  # the last talk's last line is malformed
    assert '"speaker":7' in lines[-4]
    (broken / "events.jsonl").write_text("".join(lines))
    newer = town(tmp_path / "runs" / "c", ["the sea"])
    first = json.loads((newer / "events.jsonl").read_text().splitlines()[0])
    rest = (newer / "events.jsonl").read_text().splitlines(keepends=True)[1:]
    (newer / "events.jsonl").write_text(json.dumps({**first, "log_format": 99}) + "\n" + "".join(rest))
    (tmp_path / "runs" / "empty").mkdir()
    runs = [str(p) for p in (good, broken, newer, tmp_path / "runs" / "empty")]
    result = CliRunner().invoke(app, ["harvest", *runs, "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert [r["metadata"]["run"] for r in records(out)] == ["a"] * len(TOPICS)
    for name in ("b", "c", "empty"):
        assert f"skipped {tmp_path / 'runs' / name}" in result.output
    assert "newer simulacra" in result.output and "not a run folder" in result.output
    before = out.read_text()
    strict = CliRunner().invoke(app, ["harvest", *runs, "-o", str(out), "--strict"])
    assert strict.exit_code == 2 and str(broken) in strict.output and "--strict" in strict.output
    assert out.read_text() == before, "the corpus already there is untouched"
    assert len(records(out.with_name("corpus.jsonl.partial"))) == len(TOPICS), "the runs before it are kept"


def test_perspective_chooses_who_plays_the_assistant(tmp_path: Path, out: Path) -> None:
    run = write_run(tmp_path / "run", [conversation(0, "c0", talk("the bakery")),
                                       conversation(1, "c1", talk("the river")),
                                       conversation(2, "c2", chat("Cy here, morning!", "Morning, Cy.", "Lovely day.",
                                                                  speakers=("Cy", "Ann")))])

    def sides(assistant: str) -> list[tuple[str, str]]:
        harvest([run], "openai", out, HarvestOptions(assistant=assistant))
        return [(r["metadata"]["conversation_id"], r["metadata"]["assistant_agent"]) for r in records(out)]

    assert sides("answerer") == [("c0", "Bob"), ("c1", "Bob"), ("c2", "Ann")]
    assert sides("first") == [("c0", "Ann"), ("c1", "Ann"), ("c2", "Cy")]
    assert sides("Cy") == [("c2", "Cy")]
    both = sides("both")
    assert both == [("c0", "Bob"), ("c0", "Ann"), ("c1", "Bob"), ("c1", "Ann"), ("c2", "Ann"), ("c2", "Cy")]
    first, second = records(out)[:2]
    assert [m["role"] for m in first["messages"][1:]] == ["user", "assistant"] * 2
    assert [m["role"] for m in second["messages"][1:]] == ["assistant", "user"] * 2
    assert [m["content"] for m in first["messages"][1:]] == [m["content"] for m in second["messages"][1:]]
    assert first["messages"][0]["content"].startswith("You are Bob") and second["messages"][0]["content"].startswith(
        "You are Ann")


def test_provenance_names_the_memories_retrieved_just_before_each_turn(tmp_path: Path, out: Path) -> None:
    lines = chat("Morning, Bob! The picnic is on Sunday.", "Lovely, Ann. I will bring the bread.")
    block = [
        retrieved(0, "Bob", "Ann: breakfast", [("Bob#0", "Bob had toast.")]),  # said nothing after it this tick
        *conversation(0, "warmup", chat("Hello there, Cy.", "Hello, Ann.", speakers=("Ann", "Cy"))),
    ]
    said = conversation(1, "c1", lines)
    talk_block = [said[0], retrieved(1, "Ann", "Bob: meeting them at Cafe", [("Ann#2", "Ann is hosting a picnic.")]),
                  retrieved(1, "Cy", "Cy: a walk", [("Cy#1", "Cy likes walks.")]), said[1],
                  retrieved(1, "Bob", "Ann: the picnic", [("Bob#4", "Ann is hosting a picnic."),
                                                           ("Bob#1", "Bob bakes on Saturdays.")]),
                  said[2], said[3]]
    run = write_run(tmp_path / "run", [block, talk_block])
    harvest([run], "openai", out, HarvestOptions(provenance=True))
    by_id = {r["metadata"]["conversation_id"]: r["metadata"]["provenance"] for r in records(out)}
    assert by_id["warmup"] == [{"speaker": "Ann", "memories": []}, {"speaker": "Cy", "memories": []}]
    assert by_id["c1"] == [
        {"speaker": "Ann", "memories": [{"id": "Ann#2", "text": "Ann is hosting a picnic."}]},
        {"speaker": "Bob", "memories": [{"id": "Bob#4", "text": "Ann is hosting a picnic."},
                                        {"id": "Bob#1", "text": "Bob bakes on Saturdays."}]},
    ]


def test_provenance_of_a_real_run_matches_each_lines_own_recall(tmp_path: Path, out: Path) -> None:
    """In a run, a line's recall is cued by the line before it (or the meeting): each turn's memories are that one's."""
    scenario = parse_scenario(PICNIC_TOWN)
    run = asyncio.run(execute_run(scenario, tmp_path / "runs", model=EchoFake("Cafe"),
                                  until=datetime(2023, 2, 13, 12, 0))).run_dir
    harvest([run], "openai", out, HarvestOptions(provenance=True, dedup=False))
    log = [json.loads(line) for line in (run / "events.jsonl").read_text().splitlines()]
    recalls = {(e["tick"], e["agent"], e["query"]): e["results"] for e in log if e["kind"] == "memory_retrieved"}
    talks = records(out)
    assert talks and sum(len(t["metadata"]["provenance"]) for t in talks) >= 2
    for record in talks:
        meta = record["metadata"]
        said = [e for e in log if e["kind"] == "utterance" and e["conversation_id"] == meta["conversation_id"]]
        assert [s["speaker"] for s in meta["provenance"]] == [e["speaker"] for e in said]
        for number, (source, line) in enumerate(zip(meta["provenance"], said)):
            partners = ", ".join(p for p in meta["participants"] if p != line["speaker"])
            cue = said[number - 1]["text"] if number else f"meeting them at {meta['place']}"
            expected = recalls[(line["tick"], line["speaker"], f"{partners}: {cue}")]
            assert source["memories"] == [{"id": r["id"], "text": r["text"]} for r in expected]


@pytest.mark.parametrize("args, message", [
    (["--max-echo", "2"], "--max-echo: Input should be less than or equal to 1"),
    (["--test-fraction", "1"], "--test-fraction: Input should be less than 1"),
    (["--dedup-threshold", "1"], "--dedup-threshold: Input should be less than 1"),
    (["--format", "dpo", "--provenance"], "--provenance:"),
    (["--no-metadata", "--provenance"], "--provenance:"),
    # a name or a reason that matches nothing would silently leave every dialogue out
    (["--assistant", "Nobody"], "--assistant Nobody: no agent of that name in any of the runs; give answerer, "
                                "first, both or one of Ann, Bob, Cy"),
    (["--end-reason", "farewell", "--end-reason", "nonsense"], "--end-reason: 'nonsense' is no end reason; "
                                                               "dialogues end for answered, context_limit,"),
])
def test_bad_options_are_input_errors_and_write_nothing(tmp_path: Path, out: Path, args: list[str],
                                                        message: str) -> None:
    result = CliRunner().invoke(app, ["harvest", str(town(tmp_path / "run")), "-o", str(out), *args])
    assert result.exit_code == 2 and message in result.output
    assert len(result.stderr.strip().splitlines()) == 1, "the error alone: no progress bar before it"
    assert list(out.parent.iterdir()) == []


def test_a_missing_output_folder_is_refused_before_the_progress_bar(tmp_path: Path) -> None:
    target = tmp_path / "nowhere" / "corpus.jsonl"
    result = CliRunner().invoke(app, ["harvest", str(town(tmp_path / "run")), "-o", str(target)])
    assert result.exit_code == 2
    assert result.stderr.strip() == f"error: --output {target}: no folder {target.parent} to write into"


def test_a_skipped_run_is_named_once(tmp_path: Path, out: Path) -> None:
    missing = tmp_path / "nope"
    result = CliRunner().invoke(app, ["harvest", str(town(tmp_path / "run")), str(missing), "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert f"skipped {missing}: not a run folder" in result.stderr and result.stderr.count(str(missing)) == 1


def test_no_readable_run_is_one_line_exit_2_and_the_old_output_stays(tmp_path: Path, out: Path) -> None:
    out.write_text("kept\n")
    missing = tmp_path / "nope"
    result = CliRunner().invoke(app, ["harvest", str(missing), "-o", str(out)])
    assert result.exit_code == 2
    assert result.stderr.strip().splitlines()[-1] == f"error: no run could be read: {missing}: not a run folder " \
        "(no events.jsonl); give the folder `simulacra run` printed"
    assert out.read_text() == "kept\n" and not list(out.parent.glob("*.partial"))


def test_an_agent_of_any_run_may_be_the_assistant(tmp_path: Path, out: Path) -> None:
    """The name is checked against the agents of every run given: one run that has the agent is enough."""
    run = write_run(tmp_path / "run", [conversation(0, "c0", talk("the bakery")),
                                       conversation(1, "c1", chat("Cy here, morning!", "Morning, Cy.", "Lovely day.",
                                                                  speakers=("Cy", "Ann")))])
    report = harvest([tmp_path / "nope", run], "openai", out, HarvestOptions(assistant="Cy"))
    assert len(report.skipped_runs) == 1 and report.skipped_runs[0].startswith(f"{tmp_path / 'nope'}: not a run")
    assert report.written and all(r["metadata"]["assistant_agent"] == "Cy" for r in records(out))


def test_the_harvest_reader_gives_what_the_event_reader_gives(tmp_path: Path) -> None:
    """Same events, same closed extent, on a log with an unclosed tick and a torn last line."""
    run = town(tmp_path / "run", TOPICS[:3])
    tail = "".join(e.model_dump_json() + "\n" for e in conversation(9, "open", talk("the lake"))[:3])
    with (run / "events.jsonl").open("a") as log:
        log.write(tail + '{"seq": 99, "kind": "utter')
    quick, plain = HarvestReader(run / "events.jsonl"), EventReader(run / "events.jsonl")
    assert quick.extent() == plain.extent()
    for kinds in ({"utterance"}, {"conversation_started", "conversation_ended", "run_started"}, None):
        for closed in (True, False):
            assert list(quick.events(kinds, closed)) == list(plain.events(kinds, closed))
