"""Figures that say whether dialogue is worth training on: length, how it ended, self-address, echoes, variety.

Every figure is defined on lines a person can look at, so a bad number can be traced to the lines behind it
(see docs/quality.md for the exact rules and their known misses).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable

from pydantic import BaseModel
from rouge_score import rouge_scorer

from agents.roleplay.records import Side
from agents.roleplay.turns import Turn, flips_role
from worlds.corpus.dedup import NearDuplicates, words

#: A line echoes when at least this share of its words is one common subsequence with an earlier line.
ECHO_SHARE = 0.6
#: Lines shorter than this are never echoes: "Sure, see you then." may well be said twice.
ECHO_MIN_WORDS = 4
#: Naming oneself right after these words is introducing oneself, not addressing oneself.
_INTRODUCTION = re.compile(r"(?:\bi'?m|\bi am|\bname is|\bname's|\bit's|\bit is|\bthis is|\bcall me)\s*$", re.I)
#: Short words people do trail off on ("so...", "oh...") are not cut-off words.
_SPOKEN = {"a", "i", "ah", "oh", "so", "no", "ok", "um", "uh", "hm", "mm", "we", "me", "be", "go", "do", "to",
           "it", "is", "or", "on", "in", "at", "if", "my", "he", "us", "an", "as", "by", "of", "up", "yo", "ha"}
_ELLIPSIS = r"(?:\.\.\.|…)"
_ENDS_ON_ELLIPSIS = re.compile(_ELLIPSIS + r"[\s\"')\]]*$")
_FRAGMENT = re.compile(r"\b([a-z]{1,2})" + _ELLIPSIS)
_SCORER = rouge_scorer.RougeScorer(["rougeL"])


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


def names_self(speaker: str, text: str) -> bool:
    """The line names its own speaker other than in an introduction: self-address, or narrating oneself."""
    first = speaker.split()[0] if speaker.split() else speaker
    for found in re.finditer(rf"(?<![\w']){re.escape(first)}(?![\w])", text):
        if not _INTRODUCTION.search(text[: found.start()]):
            return True
    return False


def echoes(text: str, earlier: Iterable[str]) -> bool:
    """Most of the line's words, in order, were already said in one earlier line (ROUGE-L precision)."""
    if len(words(text)) < ECHO_MIN_WORDS:
        return False
    return any(_SCORER.score(before, text)["rougeL"].precision >= ECHO_SHARE for before in earlier)


def truncated(text: str) -> bool:
    """The line trails off on an ellipsis, or breaks a word off before one ("and t...")."""
    if _ENDS_ON_ELLIPSIS.search(text.strip()):
        return True
    return any(found.group(1) not in _SPOKEN for found in _FRAGMENT.finditer(text))


def repeated_trigram_share(texts: list[str]) -> float:
    """Share of a dialogue's word trigrams that occur more than once in it: loops score high."""
    grams = Counter(gram for text in texts for gram in _ngrams(words(text), 3))
    total = sum(grams.values())
    return round(sum(n for n in grams.values() if n > 1) / total, 4) if total else 0.0


def _ngrams(tokens: list[str], n: int) -> list[tuple[str, ...]]:
    return [tuple(tokens[i:i + n]) for i in range(len(tokens) - n + 1)]


class LineFlags(BaseModel):
    self_address: bool = False
    echo: bool = False
    truncated: bool = False
    role_flip: bool = False


class DialogueFigures(BaseModel):
    """One dialogue's figures: what the harvest filters test and the corpus figures add up."""

    lines: int
    speakers: int
    self_address: int
    echo: int
    truncated: int
    role_flips: int
    repeated_trigram_share: float
    min_chars: int
    max_chars: int


def line_flags(dialogue: Dialogue) -> list[LineFlags]:
    """Each line's faults, judged against the lines before it in the same dialogue."""
    flags = []
    for number, line in enumerate(dialogue.lines):
        earlier = [before.text for before in dialogue.lines[:number]]
        flags.append(LineFlags(
            self_address=names_self(line.speaker, line.text),
            echo=echoes(line.text, earlier),
            truncated=truncated(line.text),
            role_flip=line.role is not None and flips_role(Turn(role=line.role, speaker=line.speaker,
                                                                content=line.text)),
        ))
    return flags


def figures(dialogue: Dialogue, flags: list[LineFlags] | None = None) -> DialogueFigures:
    flags = line_flags(dialogue) if flags is None else flags
    sizes = [len(line.text) for line in dialogue.lines] or [0]
    return DialogueFigures(
        lines=len(dialogue.lines), speakers=len({line.speaker for line in dialogue.lines}),
        self_address=sum(f.self_address for f in flags), echo=sum(f.echo for f in flags),
        truncated=sum(f.truncated for f in flags), role_flips=sum(f.role_flip for f in flags),
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
    report = QualityReport()
    ends: Counter[str] = Counter()
    unigrams: set[tuple[str, ...]] = set()
    bigrams: set[tuple[str, ...]] = set()
    totals = Counter()
    copies = NearDuplicates()
    flipped_sessions = 0
    for dialogue in dialogues:
        report.dialogues += 1
        report.conversations += dialogue.kind == "conversation"
        report.roleplay_sessions += dialogue.kind == "roleplay"
        if dialogue.end_reason is not None:
            ends[dialogue.end_reason] += 1
        seen = figures(dialogue)
        report.lines += seen.lines
        for field in ("self_address", "echo", "truncated"):
            totals[field] += getattr(seen, field)
        flipped_sessions += dialogue.kind == "roleplay" and seen.role_flips > 0
        for line in dialogue.lines:
            tokens = words(line.text)
            grams_1, grams_2 = _ngrams(tokens, 1), _ngrams(tokens, 2)
            unigrams.update(grams_1)
            bigrams.update(grams_2)
            totals["unigrams"] += len(grams_1)
            totals["bigrams"] += len(grams_2)
        text = "\n".join(line.text for line in dialogue.lines)
        totals["near"] += copies.near_copy(f"{report.dialogues}", text)
    report.mean_lines = round(report.lines / report.dialogues, 2) if report.dialogues else 0.0
    ended = sum(ends.values())
    report.end_reasons = {reason: _share(n, ended) for reason, n in sorted(ends.items())}
    report.self_address_rate = _share(totals["self_address"], report.lines)
    report.echo_rate = _share(totals["echo"], report.lines)
    report.truncated_rate = _share(totals["truncated"], report.lines)
    report.distinct_1 = _share(len(unigrams), totals["unigrams"])
    report.distinct_2 = _share(len(bigrams), totals["bigrams"])
    report.near_duplicate_rate = _share(totals["near"], report.dialogues)
    if report.roleplay_sessions:
        report.role_flip_rate = _share(flipped_sessions, report.roleplay_sessions)
    return report
