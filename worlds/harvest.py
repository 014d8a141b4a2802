"""Runs become a training corpus: their dialogues read as a stream, filtered, deduplicated, split and written,
with a dataset card beside the files."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from pathlib import Path

from pydantic import BaseModel, Field, ValidationError

from memory.errors import InputError
from worlds.corpus.card import CardFacts, Source, foreign_readme, write_card
from worlds.corpus.dedup import NearDuplicates
from worlds.corpus.filters import HarvestFilters
from worlds.corpus.formats import NOT_IN_FORMAT, HarvestFormat, RowWriter, open_writer, rows
from worlds.corpus.items import NO_LOOP_RESULT, NOT_A_PARTICIPANT, UNFINISHED, ItemOptions, run_items
from worlds.corpus.perspective import PERSPECTIVES
from worlds.corpus.quality import QualityReport, QualityTally, figures
from worlds.corpus.reading import HarvestReader
from worlds.corpus.split import held_out, held_out_path
from worlds.events import RunStarted
from worlds.harvest_loops import LoopHarvestOptions
from worlds.runfolder import RunFolder

EXACT_COPY = "exact duplicate"
NEAR_COPY = "near duplicate"
#: How often (in items read) the progress callback hears from a run.
PROGRESS_EVERY = 500


class HarvestOptions(BaseModel):
    """Every choice `simulacra harvest` offers beyond the format and the output file."""

    assistant: str = "answerer"
    filters: HarvestFilters = Field(default_factory=HarvestFilters)
    loops: LoopHarvestOptions = Field(default_factory=LoopHarvestOptions)
    with_metadata: bool = True
    provenance: bool = False
    dedup: bool = True
    #: Below 1: MinHash LSH needs some slack (1 would be exact copies only, which exact dedup finds anyway).
    dedup_threshold: float = Field(default=0.8, gt=0, lt=1)
    dedup_ngram: int = Field(default=3, ge=1)
    test_fraction: float = Field(default=0.0, ge=0, lt=1)
    strict: bool = False
    card: bool = True
    license: str = "other"


class HarvestReport(BaseModel):
    """What a harvest read, left out, and wrote; `read` minus every removal is `kept`."""

    read: int = 0
    removed: dict[str, int] = Field(default_factory=dict)
    kept: int = 0
    #: Records per split ("train", and "test" with a test fraction).
    records: dict[str, int] = Field(default_factory=dict)
    written: int = 0
    conversations: int = 0
    sessions: int = 0
    loops: int = 0
    #: Runs that could not be read, each as "PATH: why".
    skipped_runs: list[str] = Field(default_factory=list)
    warnings: list[str] = Field(default_factory=list)
    files: list[str] = Field(default_factory=list)
    quality: QualityReport = Field(default_factory=QualityReport)

    @property
    def unfinished(self) -> int:
        """Dialogues still open when their log ended: a crash or a stop, not a fault of the dialogue."""
        return self.removed.get(UNFINISHED, 0)

    @property
    def loops_left_out(self) -> int:
        """Self-* sessions that ended without a result to learn from, told apart from those a filter removed."""
        return self.removed.get(NO_LOOP_RESULT, 0)


class _RunTally(BaseModel):
    """One run's counts, added to the harvest's only once the run has been read to its end."""

    read: int = 0
    removed: Counter[str] = Field(default_factory=Counter)
    records: Counter[str] = Field(default_factory=Counter)
    kinds: Counter[str] = Field(default_factory=Counter)
    turns: Counter[int] = Field(default_factory=Counter)
    chars: Counter[int] = Field(default_factory=Counter)


#: Failures that make one run unreadable: not a run, a newer log format, a broken record, a file gone missing.
RUN_ERRORS = (InputError, OSError, ValueError, ValidationError)


def check_assistant(runs: list[Path | RunFolder], assistant: str) -> None:
    """An `--assistant` NAME that is no agent of any run would leave every conversation out: refuse it at once."""
    if assistant in PERSPECTIVES:
        return
    names: set[str] = set()
    readable = 0
    for run in runs:
        try:
            names.update(p.name for p in (run if isinstance(run, RunFolder) else RunFolder.open(run)).personas())
        except RUN_ERRORS:
            continue  # the harvest skips (or, with strict, refuses) this run, and says why
        readable += 1
    if not readable:
        return
    if not names:
        raise InputError(f"--assistant {assistant}: the runs have no world agents; give answerer, first or both")
    if assistant not in names:
        raise InputError(f"--assistant {assistant}: no agent of that name in any of the runs; give answerer, first, "
                         f"both or one of {', '.join(sorted(names))}")


def harvest(runs: list[Path | RunFolder], fmt: HarvestFormat, out: Path, options: HarvestOptions | None = None,
            on_progress: Callable[[str, int, bool], None] | None = None) -> HarvestReport:
    """Write every kept dialogue of the runs to `out` (and its `.test` sibling), streaming, run by run.

    Files are written as `NAME.partial` and renamed at the end, so an interrupted harvest never leaves
    half a corpus under the real name. A run that cannot be read is skipped and named in the report,
    none of its records kept (with `strict`, it stops the harvest with an input error instead); when no
    run at all can be read, that is an input error too and nothing is written.
    `on_progress(run, items, finished)` hears how far each run has got, and when it is done (or skipped).
    """
    options = options or HarvestOptions()
    check_assistant(runs, options.assistant)
    targets = {"train": out}
    if options.test_fraction > 0:
        targets["test"] = held_out_path(out)
    partials = {split: path.with_name(path.name + ".partial") for split, path in targets.items()}
    writers = {split: open_writer(path, fmt, options.with_metadata) for split, path in partials.items()}
    report = HarvestReport(removed={why: 0 for why in _removal_steps(fmt, options)})
    copies = NearDuplicates(options.dedup_threshold, options.dedup_ngram) if options.dedup else None
    quality = QualityTally()
    totals = _RunTally()
    sources: list[Source] = []
    item_options = ItemOptions(assistant=options.assistant, with_metadata=options.with_metadata,
                               provenance=options.provenance, preferences=fmt == "dpo", loops=options.loops)
    opened = 0
    try:
        for run in runs:
            path = run.path if isinstance(run, RunFolder) else run
            run_quality = QualityTally(copies=quality.copies)
            try:
                folder = RunFolder.open(path)
                tally, source = _harvest_run(folder, fmt, options, item_options, writers, copies, run_quality,
                                             on_progress)
            except RUN_ERRORS as exc:
                for writer in writers.values():
                    writer.rollback()
                first = next(iter(str(exc).splitlines()), type(exc).__name__)
                why = first if first.startswith((f"{path}:", f"{path}/")) else f"{path}: {first}"  # named once
                if options.strict:
                    raise InputError(f"{why} (--strict; the runs before it are in "
                                     f"{partials['train']})") from None
                report.skipped_runs.append(why)
                if on_progress is not None:
                    on_progress(path.name, 0, True)
                continue
            for writer in writers.values():
                writer.commit()
            opened += 1
            quality.merge(run_quality)
            _add(totals, tally)
            if source is not None:
                sources.append(source)
    finally:
        for writer in writers.values():
            writer.close()
    if not opened:  # nothing to harvest: an input error, and whatever is at the output stays as it was
        for partial in partials.values():
            partial.unlink(missing_ok=True)
        raise InputError("no run could be read: " + "; ".join(report.skipped_runs))
    for split, path in targets.items():
        partials[split].replace(path)
    report.read, report.kept = totals.read, totals.read - sum(totals.removed.values())
    report.removed = {why: report.removed.get(why, 0) + totals.removed.get(why, 0)
                      for why in [*report.removed, *totals.removed]}
    report.records = {split: totals.records[split] for split in targets}
    report.written = sum(report.records.values())
    report.conversations, report.sessions = totals.kinds["conversation"], totals.kinds["roleplay"]
    report.loops = report.written - report.conversations - report.sessions
    report.quality = quality.report()
    report.files = [str(path) for path in targets.values()]
    card_refused = foreign_readme(out.parent) if options.card else None
    if card_refused:
        report.warnings.append(card_refused)
    elif options.card:
        facts = CardFacts(name=out.stem, fmt=fmt, license=options.license,
                          files={split: path.name for split, path in targets.items()}, records=report.records,
                          sources=sources, read=report.read, removed=report.removed, kept=report.kept,
                          filters=options.filters.active(), dedup=_dedup_words(options), quality=report.quality,
                          turns=totals.turns, chars=totals.chars)
        report.files += [str(path) for path in write_card(out.parent, facts)]
    return report


def _removal_steps(fmt: HarvestFormat, options: HarvestOptions) -> list[str]:
    """Every step that can remove a dialogue, in the order they are tried: the summary shows each, zeros too."""
    steps = [UNFINISHED, NO_LOOP_RESULT]
    if options.assistant not in PERSPECTIVES:
        steps.append(NOT_A_PARTICIPANT)
    steps += options.filters.names()
    if fmt in NOT_IN_FORMAT:
        steps.append(NOT_IN_FORMAT[fmt])
    if options.dedup:
        steps += [EXACT_COPY, NEAR_COPY]
    return steps


def _dedup_words(options: HarvestOptions) -> str:
    if not options.dedup:
        return "off"
    return (f"exact (normalised text) and near (MinHash LSH, Jaccard ≥ {options.dedup_threshold} over word "
            f"{options.dedup_ngram}-grams), across all runs")


def _add(totals: _RunTally, tally: _RunTally) -> None:
    totals.read += tally.read
    for name in ("removed", "records", "kinds", "turns", "chars"):
        getattr(totals, name).update(getattr(tally, name))


def _harvest_run(folder: RunFolder, fmt: HarvestFormat, options: HarvestOptions, item_options: ItemOptions,
                 writers: dict[str, RowWriter], copies: NearDuplicates | None, quality: QualityTally,
                 on_progress: Callable[[str, int, bool], None] | None) -> tuple[_RunTally, Source | None]:
    """One run's items through the format, the filters and dedup into the writers (uncommitted)."""
    tally = _RunTally()
    started = next(iter(HarvestReader(folder.events_path).events({"run_started"})), None)
    source = Source(run=started.run_id, scenario=started.scenario, model=started.model) \
        if isinstance(started, RunStarted) else None
    same_rule = copies is not None and (copies.threshold, copies.ngram) == (quality.copies.threshold,
                                                                           quality.copies.ngram)
    for item in run_items(folder, item_options):
        tally.read += 1
        if on_progress is not None and tally.read % PROGRESS_EVERY == 0:
            on_progress(folder.path.name, tally.read, False)
        if item.left_out is not None:
            tally.removed[item.left_out] += 1
            continue
        seen = figures(item.dialogue)
        why = options.filters.rejects(item, seen)
        written = rows(item, fmt) if why is None else []
        if why is None and not written:  # a format that takes part of what runs hold, or a loop with a pair only
            why = NOT_IN_FORMAT.get(fmt, NO_LOOP_RESULT)
        if why is None and copies is not None:
            text = "\n".join(line.text for line in item.dialogue.lines)
            why = EXACT_COPY if copies.exact_copy(text) else NEAR_COPY if copies.near_copy(
                str(len(copies)), text) else None
        if why is not None:
            tally.removed[why] += 1
            continue
        split = "test" if held_out(item.run, item.key, options.test_fraction) else "train"
        for row in written:
            writers[split].write(row)
        tally.records[split] += len(written)
        tally.kinds[item.dialogue.kind] += len(written)
        quality.add(item.dialogue, seen, near_copy=False if same_rule else None)
        tally.turns[seen.lines] += 1
        tally.chars.update(len(line.text) for line in item.dialogue.lines)
    if on_progress is not None:
        on_progress(folder.path.name, tally.read, True)
    return tally, source
