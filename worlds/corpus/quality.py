"""Figures that say whether dialogue is worth training on: length, how it ended, self-address, echoes, variety.

Every figure is defined on lines a person can look at, so a bad number can be traced to the lines behind it
(see docs/quality.md for the exact rules and their known misses).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator

from pydantic import BaseModel, Field

from agents.cognition.lines import absent_addressees, echoes_words, names_self, out_of_character, truncated, words
from agents.roleplay.records import Side
from agents.roleplay.turns import Turn, flips_role
from worlds.corpus.dedup import NearDuplicates


class Line(BaseModel):
    """One line of a dialogue; `role` is the CAMEL side in a role-play session, None in a conversation."""

    speaker: str
    text: str
    role: Side | None = None


class Dialogue(BaseModel):
    """A conversation or a role-play session as the figures see it."""

    dialogue_id: str
    kind: str
    lines: list[Line]
    end_reason: str | None = None
    #: Everyone in the talk, those who never spoke too; the speakers alone when not given.
    participants: list[str] = Field(default_factory=list)


def repeated_trigram_share(texts: list[str]) -> float:
    """Share of a dialogue's word trigrams that occur more than once in it: loops score high."""
    grams = Counter(gram for text in texts for tokens in (words(text),) for gram in zip(tokens, tokens[1:], tokens[2:]))
    total = sum(grams.values())
    return round(sum(n for n in grams.values() if n > 1) / total, 4) if total else 0.0


class LineFlags(BaseModel):
    self_address: bool = False
    echo: bool = False
    truncated: bool = False
    role_flip: bool = False
    #: Speaks as a chat assistant or reads out its prompt ("It's my turn", "It is Monday at 07:20").
    out_of_character: bool = False
    #: Greets or thanks by name someone who does not speak in the dialogue.
    wrong_addressee: bool = False


class DialogueFigures(BaseModel):
    """One dialogue's figures: what the harvest filters test and the corpus figures add up."""

    lines: int
    speakers: int
    self_address: int
    echo: int
    truncated: int
    role_flips: int
    out_of_character: int
    wrong_addressee: int
    repeated_trigram_share: float
    min_chars: int
    max_chars: int


def line_flags(dialogue: Dialogue) -> list[LineFlags]:
    """Each line's faults, judged against the lines before it in the same dialogue."""
    return [LineFlags(**dict(zip(_FLAGS, row))) for row in _flag_rows(dialogue)]


#: LineFlags' fields in the order `_flag_rows` gives them.
_FLAGS = ("self_address", "echo", "truncated", "role_flip", "out_of_character", "wrong_addressee")


def _flag_rows(dialogue: Dialogue) -> Iterator[tuple[bool, ...]]:
    """Each line's flags in `_FLAGS` order, as plain tuples: a harvest counts them by the hundred thousand and
    needs no model per line."""
    said = [words(line.text) for line in dialogue.lines]
    present = {line.speaker for line in dialogue.lines} | set(dialogue.participants)
    for number, line in enumerate(dialogue.lines):
        yield (names_self(line.speaker, line.text), echoes_words(said[number], said[:number]), truncated(line.text),
               line.role is not None and flips_role(Turn(role=line.role, speaker=line.speaker, content=line.text)),
               out_of_character(line.text), bool(absent_addressees(line.text, present)))


def figures(dialogue: Dialogue, flags: list[LineFlags] | None = None) -> DialogueFigures:
    """One dialogue's figures, which both the harvest filters and the corpus tally read; `flags` spares working
    out each line's faults again when the caller has them."""
    rows = _flag_rows(dialogue) if flags is None else (tuple(getattr(f, name) for name in _FLAGS) for f in flags)
    self_address, echo, cut, flips, off, misaddressed = (sum(column) for column in zip(*rows, (0,) * len(_FLAGS)))
    sizes = [len(line.text) for line in dialogue.lines] or [0]
    return DialogueFigures(
        lines=len(dialogue.lines), speakers=len({line.speaker for line in dialogue.lines}),
        self_address=self_address, echo=echo, truncated=cut, role_flips=flips, out_of_character=off,
        wrong_addressee=misaddressed,
        repeated_trigram_share=repeated_trigram_share([line.text for line in dialogue.lines]),
        min_chars=min(sizes), max_chars=max(sizes),
    )


class QualityReport(BaseModel):
    """The corpus figures `simulacra stats` shows and the dataset card records; rates are shares of 1."""

    dialogues: int = 0
    conversations: int = 0
    roleplay_sessions: int = 0
    lines: int = 0
    mean_lines: float = 0.0
    #: Share of the ended dialogues that ended for each reason.
    end_reasons: dict[str, float] = {}
    self_address_rate: float = 0.0
    echo_rate: float = 0.0
    truncated_rate: float = 0.0
    #: Lines that speak as a chat assistant or read out the prompt, and lines that greet someone not in the talk.
    out_of_character_rate: float = 0.0
    wrong_addressee_rate: float = 0.0
    #: Distinct word unigrams and bigrams over all n-grams of all lines (no n-gram spans two lines).
    distinct_1: float = 0.0
    distinct_2: float = 0.0
    #: Share of dialogues that nearly copy an earlier one (MinHash LSH over word trigrams, Jaccard ≥ 0.8).
    near_duplicate_rate: float = 0.0
    #: Share of role-play sessions in which the assistant gave an instruction; None without role-play.
    role_flip_rate: float | None = None


def _share(part: int, whole: int) -> float:
    return round(part / whole, 4) if whole else 0.0


def measure(dialogues: Iterable[Dialogue]) -> QualityReport:
    """The corpus figures, in one pass; memory grows with the vocabulary, not with the number of lines."""
    tally = QualityTally()
    for dialogue in dialogues:
        tally.add(dialogue)
    return tally.report()


class QualityTally:
    """The corpus figures added up one dialogue at a time, so a harvest can count what it writes as it writes it.

    Tallies that share one `copies` can be merged: a harvest keeps one per run and merges it once the run is read.
    """

    def __init__(self, copies: NearDuplicates | None = None) -> None:
        self.copies = copies if copies is not None else NearDuplicates()
        self.totals: Counter[str] = Counter()
        self.ends: Counter[str] = Counter()
        self.unigrams: set[str] = set()
        self.bigrams: set[tuple[str, str]] = set()

    def add(self, dialogue: Dialogue, seen: DialogueFigures | None = None, near_copy: bool | None = None) -> None:
        """Count one dialogue; `seen` and `near_copy` spare working them out again when the caller knows them
        (a harvest that dropped near copies by the same rule knows that what it keeps copies nothing)."""
        seen = figures(dialogue) if seen is None else seen
        totals = self.totals
        totals["dialogues"] += 1
        totals["conversations"] += dialogue.kind == "conversation"
        totals["roleplay_sessions"] += dialogue.kind == "roleplay"
        if dialogue.end_reason is not None:
            self.ends[dialogue.end_reason] += 1
        totals["lines"] += seen.lines
        for field in ("self_address", "echo", "truncated", "out_of_character", "wrong_addressee"):
            totals[field] += getattr(seen, field)
        totals["flipped_sessions"] += dialogue.kind == "roleplay" and seen.role_flips > 0
        for line in dialogue.lines:
            tokens = words(line.text)
            self.unigrams.update(tokens)
            self.bigrams.update(zip(tokens, tokens[1:]))
            totals["unigrams"] += len(tokens)
            totals["bigrams"] += max(len(tokens) - 1, 0)
        if near_copy is None:
            text = "\n".join(line.text for line in dialogue.lines)
            near_copy = self.copies.near_copy(f"{len(self.copies)}", text)
        totals["near"] += near_copy

    def merge(self, other: QualityTally) -> None:
        """Add a run's tally once the run was read whole, so a run skipped part-way counts for nothing."""
        self.totals.update(other.totals)
        self.ends.update(other.ends)
        self.unigrams |= other.unigrams
        self.bigrams |= other.bigrams

    def report(self) -> QualityReport:
        """The counts as shares and means: the figures are comparable across corpora of any size."""
        totals = self.totals
        report = QualityReport(dialogues=totals["dialogues"], conversations=totals["conversations"],
                               roleplay_sessions=totals["roleplay_sessions"], lines=totals["lines"])
        report.mean_lines = round(report.lines / report.dialogues, 2) if report.dialogues else 0.0
        ended = sum(self.ends.values())
        report.end_reasons = {reason: _share(n, ended) for reason, n in sorted(self.ends.items())}
        report.self_address_rate = _share(totals["self_address"], report.lines)
        report.echo_rate = _share(totals["echo"], report.lines)
        report.truncated_rate = _share(totals["truncated"], report.lines)
        report.out_of_character_rate = _share(totals["out_of_character"], report.lines)
        report.wrong_addressee_rate = _share(totals["wrong_addressee"], report.lines)
        report.distinct_1 = _share(len(self.unigrams), totals["unigrams"])
        report.distinct_2 = _share(len(self.bigrams), totals["bigrams"])
        report.near_duplicate_rate = _share(totals["near"], report.dialogues)
        if report.roleplay_sessions:
            report.role_flip_rate = _share(totals["flipped_sessions"], report.roleplay_sessions)
        return report
