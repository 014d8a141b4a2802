"""The formats a corpus can take: parquet that `datasets` loads, alpaca from single exchanges and Self-Instruct,
and DPO pairs that put the critic's pick and Self-Refine's final draft on the chosen side."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from datasets import load_dataset

from tests.harvest_runs import chat, conversation, session, write_run
from worlds.harvest import HarvestOptions, harvest

POOL = {"pool": [{"instruction": "Name a fruit.", "instances": [{"input": "", "output": "A pear."}]},
                 {"instruction": "Translate to French.", "instances": [{"input": "cat", "output": "chat"},
                                                                      {"input": "dog", "output": "chien"}]}]}
REFINED = {"drafts": ["Bread, salt.", "Bread, salt, butter and a knife to cut the loaf."],
           "final": "Bread, salt, butter and a knife to cut the loaf.", "iterations": 2}


@pytest.fixture
def run(tmp_path: Path) -> Path:
    return write_run(tmp_path / "run", [
        conversation(0, "pair", chat("Is the cafe open today, Bob?", "It opens at nine, Ann.")),
        conversation(1, "long", chat("Morning, Bob.", "Morning, Ann. Bread is nearly ready.", "I will wait here.")),
        session(2, "instruct", ["Grow the task pool."], loop="self_instruct", reason="target_reached", result=POOL),
        session(3, "refine", ["List what a picnic needs.", REFINED["drafts"][0], "Add more items.",
                              REFINED["drafts"][1]], loop="self_refine", reason="max_iterations", result=REFINED),
        session(4, "critic", ["Instruction: choose a day.", "Sunday suits everyone best.",
                              "Instruction: choose a place.", "The meadow by the river."],
                choices=({"index": 1, "candidates": ["Monday, I suppose.", "Sunday suits everyone best."],
                          "chosen": 1},
                         {"index": 3, "candidates": ["The meadow by the river.", "Somewhere.", "Somewhere."],
                          "chosen": 0},
                         {"index": 2, "candidates": ["Instruction: choose a place.", "Hm."], "chosen": 0,
                          "fallback": True})),
    ])


def records(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_parquet_loads_with_datasets_and_keeps_messages_and_metadata(run: Path, tmp_path: Path) -> None:
    out = tmp_path / "corpus.parquet"
    report = harvest([run], "parquet", out, HarvestOptions(card=False))
    table = pq.read_table(out)
    assert {"messages", "run", "kind", "dialogue_id", "end_reason", "turns", "metadata"} <= set(table.column_names)
    loaded = load_dataset("parquet", data_files=str(out), split="train", cache_dir=str(tmp_path / "hf"))
    assert len(loaded) == report.written == table.num_rows
    first = loaded[0]
    assert first["dialogue_id"] == "pair" and first["kind"] == "conversation" and first["turns"] == 2
    assert first["messages"][1] == {"role": "user", "content": "Is the cafe open today, Bob?"}
    assert [m["role"] for m in first["messages"]] == ["system", "user", "assistant"]
    assert json.loads(first["metadata"])["assistant_agent"] == "Bob"
    assert sorted(loaded["dialogue_id"]) == sorted(["pair", "long", "instruct", "instruct", "instruct", "refine",
                                                    "critic"])


def test_alpaca_takes_single_exchanges_and_keeps_self_instruct_inputs_apart(run: Path, tmp_path: Path) -> None:
    out = tmp_path / "alpaca.jsonl"
    report = harvest([run], "alpaca", out, HarvestOptions(card=False))
    rows = [{k: r[k] for k in ("instruction", "input", "output")} for r in records(out)]
    assert rows == [
        {"instruction": "Is the cafe open today, Bob?", "input": "", "output": "It opens at nine, Ann."},
        {"instruction": "Name a fruit.", "input": "", "output": "A pear."},
        {"instruction": "Translate to French.", "input": "cat", "output": "chat"},
        {"instruction": "Translate to French.", "input": "dog", "output": "chien"},
    ]
    assert report.removed["not one exchange (alpaca)"] == 3, "the three-line talk, the refine loop, the session"


def test_dpo_pairs_put_the_better_reply_on_the_chosen_side(run: Path, tmp_path: Path) -> None:
    out = tmp_path / "dpo.jsonl"
    report = harvest([run], "dpo", out, HarvestOptions(card=False))
    pairs = records(out)
    got = [(p["metadata"]["preference"], p["chosen"][0]["content"], p["rejected"][0]["content"]) for p in pairs]
    assert got == [
        ("self_refine", REFINED["final"], REFINED["drafts"][0]),
        ("critic", "Sunday suits everyone best.", "Monday, I suppose."),
        ("critic", "The meadow by the river.", "Somewhere."),
    ], "the fallback pick and the repeated candidate give no pair"
    refine, sunday, meadow = pairs
    assert [m["content"] for m in refine["prompt"][1:]] == ["Plan a picnic"]
    assert [(m["role"], m["content"]) for m in sunday["prompt"][1:]] == [("user", "Instruction: choose a day.")]
    assert [m["role"] for m in meadow["prompt"]] == ["system", "user", "assistant", "user"]
    assert sunday["prompt"][0]["content"].startswith("You are the Baker")
    assert report.removed["no preference pair (dpo)"] == 5, "two conversations, three Self-Instruct records"


def test_the_card_names_every_kind_of_dialogue_it_measured(run: Path, tmp_path: Path) -> None:
    """The quality figures cover the Self-* sessions kept too: the card's count of dialogues says what they are."""
    report = harvest([run], "openai", tmp_path / "corpus.jsonl")
    q = report.quality
    loops = q.dialogues - q.conversations - q.roleplay_sessions
    assert (q.conversations, q.roleplay_sessions) == (2, 1) and loops > 0 and report.loops > 0
    card = (tmp_path / "README.md").read_text()
    assert f"| dialogues | {q.dialogues} (2 conversations, 1 role-play, {loops} Self-* loop sessions) |" in card
