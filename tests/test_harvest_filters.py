"""Each harvest filter on made-up dialogues either side of its threshold, and every removal counted in the summary."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.harvest_runs import chat, conversation, session, write_run
from worlds.cli import app
from worlds.corpus.filters import ONE_SPEAKER, HarvestFilters
from worlds.corpus.quality import Dialogue, Line, figures
from worlds.corpus.samples import Item

LONG = ("We should bake the bread early tomorrow morning.", "The oven at the cafe is free after six.",
        "Then I will bring the flour and the salt.", "Good, and Cy can carry the baskets.")


def item(lines: list[tuple[str, str]], kind: str = "conversation", end: str = "farewell",
         roles: bool = False, p_true: float | None = None) -> Item:
    sides = ["user", "assistant"]
    dialogue = Dialogue(dialogue_id="d", kind=kind, end_reason=end, lines=[
        Line(speaker=who, text=text, role=sides[n % 2] if roles else None) for n, (who, text) in enumerate(lines)])
    return Item(run="r", key="d", dialogue=dialogue, p_true=p_true)


SELF_ADDRESSING = item(chat("Ann, we should bake the bread early.", *LONG[1:]))  # 1 of 4 lines
ECHOING = item(chat(*LONG[:3], "The oven at the cafe is free after six."))  # the last line echoes the second
FLIPPED = item(chat("Instruction: list what we need.", "Instruction: you list it.", "Fine.", "Done."),
               kind="roleplay", roles=True)
OUT_OF_CHARACTER = item(chat("It's my turn.", *LONG[1:]))  # 1 of 4 lines reads out the prompt
MISADDRESSED = item(chat("Hello, Tom! We should bake the bread early.", *LONG[1:]))  # Tom is not in the talk
LOOPING = item(chat("see you at the party", "see you at the party", "the cake is ready"))
SELF_EVAL = item(chat("Name a colour.", "Blue."), kind="self_eval", p_true=0.6)


@pytest.mark.parametrize("option, kept, removed, case", [
    ("min_turns", 4, 5, item(chat(*LONG))),
    ("max_turns", 4, 3, item(chat(*LONG))),
    ("end_reasons", ["farewell"], ["max_lines"], item(chat(*LONG))),
    ("max_self_address", 0.25, 0.24, SELF_ADDRESSING),
    ("max_echo", 0.25, 0.24, ECHOING),
    ("max_out_of_character", 0.25, 0.24, OUT_OF_CHARACTER),
    ("max_wrong_addressee", 0.25, 0.24, MISADDRESSED),
    ("max_role_flips", 1, 0, FLIPPED),
    ("max_repetition", figures(LOOPING.dialogue).repeated_trigram_share,
     figures(LOOPING.dialogue).repeated_trigram_share - 0.01, LOOPING),
    ("min_chars", len(LONG[3]), len(LONG[3]) + 1, item(chat(*LONG))),
    ("max_chars", len(LONG[0]), len(LONG[0]) - 1, item(chat(*LONG))),
    ("min_p_true", 0.6, 0.61, SELF_EVAL),
])
def test_each_filter_keeps_at_its_threshold_and_removes_beyond_it(option: str, kept: object, removed: object,
                                                                  case: Item) -> None:
    seen = figures(case.dialogue)
    name = "--end-reason" if option == "end_reasons" else "--" + option.replace("_", "-")
    assert HarvestFilters(**{option: kept}).rejects(case, seen) is None
    assert HarvestFilters(**{option: removed}).rejects(case, seen) == name


def test_the_figures_behind_the_cases_are_the_ones_meant() -> None:
    assert figures(SELF_ADDRESSING.dialogue).self_address == 1 and figures(ECHOING.dialogue).echo == 1
    assert figures(FLIPPED.dialogue).role_flips == 1
    assert figures(OUT_OF_CHARACTER.dialogue).out_of_character == 1
    assert figures(MISADDRESSED.dialogue).wrong_addressee == 1
    assert 0 < figures(LOOPING.dialogue).repeated_trigram_share < 1


def test_p_true_applies_to_self_eval_only_and_one_speaker_is_never_kept() -> None:
    other = item(chat("Name a colour.", "Blue."), kind="self_consistency")
    assert HarvestFilters(min_p_true=0.9).rejects(other, figures(other.dialogue)) is None
    unknown = item(chat("Name a colour.", "Blue."), kind="self_eval")
    assert HarvestFilters(min_p_true=0.1).rejects(unknown, figures(unknown.dialogue)) == "--min-p-true"
    alone = item([("Ann", "Hello?"), ("Ann", "Anyone?")])
    assert HarvestFilters().rejects(alone, figures(alone.dialogue)) == ONE_SPEAKER


def test_the_summary_counts_what_each_filter_removed(tmp_path: Path) -> None:
    run = write_run(tmp_path / "run", [
        conversation(0, "short", chat("Hi.")),
        conversation(1, "long", chat(*LONG, *LONG[:2], "A wholly new line about the weather today.")),
        conversation(2, "cut", chat(*LONG), reason="max_lines"),
        conversation(3, "tiny", chat("Hi there, Bob.", "Oh.", "Yes.")),
        conversation(4, "good", chat(*LONG)),
        session(5, "s1", ["Instruction: plan it.", "Instruction: no, you plan it.", "Instruction: fine.", "Done."]),
    ])
    out = tmp_path / "out" / "corpus.jsonl"
    out.parent.mkdir()
    result = CliRunner().invoke(app, [
        "harvest", str(run), "-o", str(out), "--json", "--max-turns", "6", "--end-reason", "farewell",
        "--end-reason", "max_messages", "--min-chars", "4", "--max-role-flips", "0"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    removed = {why: n for why, n in report["removed"].items() if n}
    assert removed == {"--min-turns": 1, "--max-turns": 1, "--end-reason": 1, "--min-chars": 1,
                       "--max-role-flips": 1}
    assert report["read"] == 6 and report["kept"] == 1 == len(out.read_text().splitlines())
    assert json.loads(out.read_text())["metadata"]["conversation_id"] == "good"
    table = CliRunner().invoke(app, ["harvest", str(run), "-o", str(out), "--max-turns", "6"])
    assert "removed: --max-turns" in table.stdout and "kept" in table.stdout
