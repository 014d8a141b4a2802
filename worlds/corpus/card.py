"""The dataset card a harvest leaves beside its corpus: a Hugging Face README with where the data came from,
what was filtered out, the quality figures of what was kept, and a histogram of its lengths."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import yaml
from pydantic import BaseModel, Field

from worlds.corpus.quality import QualityReport
from worlds.runfolder import write_atomically

CARD_FILE = "README.md"
#: The card's first body line; a README.md without it is someone else's and is never replaced.
CARD_MARK = "<!-- dataset card written by simulacra harvest; a new harvest into this folder replaces it -->"
_SIZES = [(1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"), (1_000_000, "100K<n<1M"),
          (10_000_000, "1M<n<10M"), (100_000_000, "10M<n<100M")]


class Source(BaseModel):
    run: str
    scenario: str
    model: str


class CardFacts(BaseModel):
    """Everything the card states, gathered while harvesting."""

    name: str
    fmt: str
    license: str
    #: Split name → file name, beside the card.
    files: dict[str, str]
    records: dict[str, int]
    sources: list[Source]
    read: int
    removed: dict[str, int]
    kept: int
    filters: dict[str, object]
    dedup: str
    quality: QualityReport
    turns: Counter[int] = Field(default_factory=Counter)
    chars: Counter[int] = Field(default_factory=Counter)


def foreign_readme(folder: Path) -> str | None:
    """Why the card cannot go in this folder (a README.md that is not a card of ours would be lost), or None."""
    path = folder / CARD_FILE
    if path.is_file() and CARD_MARK not in path.read_text(encoding="utf-8", errors="replace"):
        return (f"dataset card not written: {path} is not a simulacra dataset card (harvest into a folder of "
                "its own to get one)")
    return None


def size_category(records: int) -> str:
    """The Hugging Face size bucket, so the Hub can list the dataset among others of its size."""
    return next((label for limit, label in _SIZES if records < limit), "n>100M")


def write_card(folder: Path, facts: CardFacts) -> list[Path]:
    """The README.md and its lengths histogram (PNG), each written atomically; the paths written."""
    picture = folder / f"{facts.name}.lengths.png"
    draw_lengths(picture, facts.turns, facts.chars)
    write_atomically(folder / CARD_FILE, render(facts, picture.name))
    return [folder / CARD_FILE, picture]


def dialogue_kinds(q: QualityReport) -> str:
    """What the measured dialogues are: a harvest keeps Self-* sessions too, which are neither kind `stats` names."""
    loops = q.dialogues - q.conversations - q.roleplay_sessions
    return (f"{q.conversations} conversations, {q.roleplay_sessions} role-play"
            + (f", {loops} Self-* loop sessions" if loops else ""))


def render(facts: CardFacts, picture: str) -> str:
    """The card as Markdown with its YAML header: the Hub reads the header, a person the tables."""
    header = {
        "license": facts.license,
        "task_categories": ["text-generation"],
        "tags": ["synthetic", "simulacra", facts.fmt],
        "size_categories": [size_category(sum(facts.records.values()))],
        "configs": [{"config_name": "default",
                     "data_files": [{"split": split, "path": name} for split, name in facts.files.items()]}],
    }
    q = facts.quality
    lines = [
        "---", yaml.safe_dump(header, sort_keys=False, allow_unicode=True).rstrip(), "---", CARD_MARK, "",
        f"# {facts.name}", "",
        f"Synthetic dialogue from {len(facts.sources)} simulacra run(s), harvested as `{facts.fmt}` records: "
        + ", ".join(f"{split} `{facts.files[split]}` ({n} records)" for split, n in facts.records.items()) + ".",
        "", "## Sources", "", "| run | scenario | model |", "|---|---|---|",
        *(f"| {s.run} | {s.scenario} | {s.model} |" for s in facts.sources),
        "", "## What was kept", "",
        f"Filters: {', '.join(f'`--{k} {v}`' for k, v in facts.filters.items()) or 'none'}; dedup: {facts.dedup}.",
        "Each dialogue is counted under the first step that removed it.", "",
        "| step | dialogues |", "|---|---|", f"| read | {facts.read} |",
        *(f"| removed: {why} | {n} |" for why, n in facts.removed.items()),
        f"| kept | {facts.kept} |",
        "", "## Quality of what was kept", "",
        "The figures `simulacra stats` reports, over the kept dialogues; rates are shares of lines.", "",
        "| figure | value |", "|---|---|",
        f"| dialogues | {q.dialogues} ({dialogue_kinds(q)}) |",
        f"| lines | {q.lines} (mean {q.mean_lines} per dialogue) |",
        *(f"| ended: {reason} | {share:.1%} |" for reason, share in q.end_reasons.items()),
        f"| self-address rate | {q.self_address_rate:.2%} |", f"| echo rate | {q.echo_rate:.2%} |",
        f"| truncated lines | {q.truncated_rate:.2%} |",
        f"| out of character (assistant, prompt read out) | {q.out_of_character_rate:.2%} |",
        f"| greets someone not in the talk | {q.wrong_addressee_rate:.2%} |",
        f"| distinct-1 / distinct-2 | {q.distinct_1:.3f} / {q.distinct_2:.3f} |",
        f"| near-duplicate dialogues | {q.near_duplicate_rate:.2%} |",
        *([f"| role-play sessions with a role flip | {q.role_flip_rate:.1%} |"] if q.role_flip_rate is not None else []),
        "", "## Lengths", "", f"![turns per dialogue and characters per turn]({picture})", "",
    ]
    return "\n".join(lines)


def draw_lengths(path: Path, turns: Counter[int], chars: Counter[int]) -> None:
    """Two histograms side by side: turns per kept dialogue, characters per turn."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot

    figure, (left, right) = pyplot.subplots(1, 2, figsize=(10, 3.6))
    left.bar(list(turns), list(turns.values()), color="#4c72b0")
    left.set(title="Turns per dialogue", xlabel="turns", ylabel="dialogues")
    right.hist(list(chars), bins=min(40, max(len(chars), 1)), weights=list(chars.values()), color="#55a868")
    right.set(title="Characters per turn", xlabel="characters", ylabel="turns")
    figure.tight_layout()
    figure.savefig(path, format="png", dpi=100)
    pyplot.close(figure)
