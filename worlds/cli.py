"""The `simulacra` command: validate, schema, run (and `run --fork`), resume, stats, inspect, interview, replay,
diff, harvest, sweep."""

from __future__ import annotations

import asyncio
import functools
import json
import os
import signal
import sys
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

from agents.gateway.errors import ModelServerDownError
from memory.errors import InputError
from worlds.budget import SpendReport, flag_for
from worlds.cluster import RaySpec
from worlds.clock import Clock
from worlds.corpus.card import dialogue_kinds
from worlds.corpus.quality import QualityReport
from worlds.diffusion import ProbeAnswerReport, ProbeDiffusion
from worlds.engine import Engine
from worlds.events import EventBase
from worlds.fork import Fork, check_same_scenario, fork_run, plan_fork
from worlds.corpus.filters import HarvestFilters
from worlds.corpus.formats import HarvestFormat
from worlds.harvest import HarvestOptions, HarvestReport, check_assistant, harvest
from worlds.harvest_loops import LoopHarvestOptions
from worlds.runfolder import RunFolder, write_atomically
from worlds.runner import ResumeReport, RunSummary, execute_run, resume_run
from worlds.loopbatch import batch_inputs, run_loop_batch
from worlds.scenario import LoopBatchScenario, Scenario, ScenarioError, SocietyScenario, load_any
from worlds.social import social_graph_from_log
from worlds.society.batch import role_pairs, run_batch
from worlds.stats import RunStats, compute_stats
from worlds.sweep.plan import plan_sweep
from worlds.sweep.run import DONE, RESULTS_FILE, SweepSummary, run_sweep
from worlds.timeline.diff import diff_runs, print_diff
from worlds.timeline.inspect import checked_filter, inspect_run
from worlds.timeline.interview import INTERVIEWS_FILE, interview
from worlds.timeline.replay import build_replay
from worlds.timeline.replay_page import render_page
from worlds.timeparse import format_duration, parse_moment

app = typer.Typer(
    help="Multi-agent simulation engine for synthetic dialogue data.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True, emoji=False)  # a message quoting `:end:` stays text
F = TypeVar("F", bound=Callable[..., Any])

EXIT_BAD_INPUT = 2
EXIT_FAILURE = 1


def friendly_errors(command: F) -> F:
    """Input errors exit 2 with a located message; anything else exits 1 in one line (SIMULACRA_DEBUG=1 raises)."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except ScenarioError as exc:
            sys.stderr.write("".join(f"{problem}\n" for problem in exc.problems))
            raise typer.Exit(EXIT_BAD_INPUT) from None
        except InputError as exc:
            err.print(f"[red]error:[/red] {escape(str(exc))}", highlight=False)
            raise typer.Exit(EXIT_BAD_INPUT) from None
        except typer.Exit:
            raise
        except ModelServerDownError as exc:
            err.print(f"[red]error:[/red] {escape(str(exc))}", highlight=False)
            if exc.run_dir is not None:
                err.print(f"the log holds every tick before the one it stopped in; once the server answers again:\n"
                          f"  simulacra resume {escape(str(exc.run_dir))}", highlight=False)
            raise typer.Exit(EXIT_FAILURE) from None
        except Exception as exc:  # noqa: BLE001 - a bug or a failing model: one line unless debugging
            if os.environ.get("SIMULACRA_DEBUG"):
                raise
            first_line = next(iter(str(exc).splitlines()), "")
            err.print(
                f"[red]error:[/red] {type(exc).__name__}: {escape(first_line)} (SIMULACRA_DEBUG=1 shows the traceback)",
                highlight=False,
            )
            raise typer.Exit(EXIT_FAILURE) from None

    return wrapper  # type: ignore[return-value]


def _warn_skipped(path: Path, number: int, why: str) -> None:
    """A log line that is not a record is passed over; the reader should still know which, and why."""
    err.print(f"[yellow]{escape(str(path))}:{number}: skipped: {escape(why)}[/yellow]", highlight=False)


def _stop_time(until: str | None, clock: Clock) -> datetime:
    """Where `--until` ends the run; a malformed value is the user's to fix."""
    if until is None:
        return clock.stop
    try:
        return parse_moment(until, clock.start)
    except ValueError as exc:
        raise InputError(f"--until: {exc}") from None


def _output_file(path: Path, option: str) -> Path:
    """A file the user asked us to write: its folder must exist, or it is the user's to fix (exit 2)."""
    if not path.parent.is_dir():
        raise InputError(f"{option} {path}: no folder {path.parent} to write into")
    if path.is_dir():
        raise InputError(f"{option} {path}: is a folder, give a file name")
    return path


def _summary_line(scenario: Scenario, until: datetime) -> str:
    clock = scenario.clock
    ticks = clock.ticks_until(until)
    return (
        f"{scenario.name}: {len(scenario.agents)} agents, {len(scenario.place_names())} places, "
        f"{len(scenario.relationships)} relationships, {len(scenario.sessions)} sessions, "
        f"{len(scenario.probes)} probes; {ticks} ticks of {format_duration(clock.step)} from {clock.start:%Y-%m-%d %H:%M}"
    )


@app.command()
@friendly_errors
def validate(scenario: Annotated[Path, typer.Argument(help="Scenario YAML file.")]) -> None:
    """Check a scenario file; print every problem as FILE:LINE: field: message."""
    loaded = load_any(scenario)
    if isinstance(loaded, SocietyScenario):
        society = loaded.society
        out.print(f"[green]ok[/green] {scenario} — {loaded.name}: role-play batch, "
                  f"{len(society.assistant_roles.names)} assistant × {len(society.user_roles.names)} user roles, "
                  f"{society.tasks_per_pair} tasks per pair", highlight=False)
        return
    if isinstance(loaded, LoopBatchScenario):
        rows = batch_inputs(loaded, scenario)
        what = f"growing {loaded.loops.target} tasks" if loaded.loops.type == "self_instruct" else \
            f"{len(rows)} sessions from {loaded.loops.input}"
        out.print(f"[green]ok[/green] {scenario} — {loaded.name}: {loaded.loops.type} batch, {what}", highlight=False)
        return
    out.print(f"[green]ok[/green] {scenario} — {_summary_line(loaded, loaded.clock.stop)}", highlight=False)


@app.command()
@friendly_errors
def schema(
    kind: Annotated[str, typer.Argument(help="world, society (a role-play batch) or loops (a Self-* batch).")] = "world",
) -> None:
    """Print the JSON Schema of a scenario format (for editors and CI checks)."""
    models = {"world": Scenario, "society": SocietyScenario, "loops": LoopBatchScenario}
    if kind not in models:
        raise InputError(f"unknown scenario kind {kind!r}: give world, society or loops")
    sys.stdout.write(json.dumps(models[kind].model_json_schema(), indent=2) + "\n")


@app.command()
@friendly_errors
def run(
    scenario: Annotated[Path, typer.Argument(help="Scenario YAML file.")],
    model: Annotated[str | None, typer.Option(help="Model spec; overrides the scenario's models.default.")] = None,
    embeddings: Annotated[
        str | None, typer.Option(help="Embedder: embedded (MiniLM) or fake; overrides models.embeddings.")
    ] = None,
    out_dir: Annotated[Path, typer.Option("--out", help="Folder that receives the run folder.")] = Path("runs"),
    until: Annotated[str | None, typer.Option(help="Stop early: an ISO time or +DURATION from the start.")] = None,
    seed: Annotated[int | None, typer.Option(help="Override the scenario's seed.")] = None,
    replay: Annotated[
        Path | None, typer.Option(help="Answer every model call from this earlier run's cache; never call a model.")
    ] = None,
    fork: Annotated[
        str | None, typer.Option(metavar="RUN@TIME", help="Start from RUN's state at sim time TIME (a new folder).")
    ] = None,
    edits: Annotated[
        list[str], typer.Option("--set", metavar="PATH=VALUE", help="With --fork: an edit made at TIME (repeatable).")
    ] = [],  # noqa: B006
    max_calls: Annotated[int | None, typer.Option(min=0, help="Stop at the first tick boundary past this many paid "
                                                               "model calls (a batch: start no unit past it; "
                                                               "overrides budget.max_calls; 0: no limit).")] = None,
    max_tokens: Annotated[int | None, typer.Option(min=0, help="The same for prompt + completion tokens.")] = None,
    workers: Annotated[int | None, typer.Option(min=1, help="A batch: run its units as Ray tasks on this many "
                                                             "cores of this machine.")] = None,
    ray_address: Annotated[str | None, typer.Option("--ray", metavar="ADDRESS",
                                                    help="A batch: run its units as Ray tasks on this cluster "
                                                         "(ray://HOST:10001 or auto).")] = None,
) -> None:
    """Run a scenario into a new run folder, with a progress bar over simulated time.

    A batch (a scenario with `society:` or `loops:`) runs into `OUT/NAME/` instead, and the same
    command resumes it there, skipping every session already written; with --workers or --ray its
    units run as Ray tasks.
    """
    loaded = load_any(scenario)
    if edits and fork is None:
        raise InputError("--set makes an edit in a fork: give --fork RUN@TIME too")
    limited = max_calls is not None or max_tokens is not None
    if isinstance(loaded, SocietyScenario | LoopBatchScenario):
        if until or replay or embeddings or fork:
            raise InputError("--until, --replay, --fork and --embeddings apply to world runs, not to a batch")
        if ray_address is not None and workers is not None:
            raise InputError("--workers sizes Ray on this machine; a cluster given with --ray brings its own")
        cluster = RaySpec(address=ray_address, workers=workers) if ray_address or workers else None
        loaded = loaded.model_copy(update={"seed": seed}) if seed is not None else loaded
        loaded = loaded.model_copy(update={"budget": loaded.budget.with_limits(max_calls, max_tokens)})
        if isinstance(loaded, SocietyScenario):
            _run_batch(loaded, out_dir, model, cluster)
        else:
            _run_loop_batch(loaded, scenario, out_dir, model, cluster)
        return
    if workers is not None or ray_address is not None:
        raise InputError("--workers and --ray run a batch's units as Ray tasks; for world runs use simulacra sweep")
    if fork is not None:
        if model or embeddings or seed is not None or replay or limited:
            raise InputError("--fork runs with its parent's model, embeddings, seed and budget: leave out --model, "
                             "--embeddings, --seed, --replay, --max-calls and --max-tokens")
        _run_fork(loaded, scenario, fork, edits, until, out_dir)
        return
    if seed is not None:
        loaded = loaded.model_copy(update={"seed": seed})
    loaded = loaded.model_copy(update={"budget": loaded.budget.with_limits(max_calls, max_tokens)})
    stop = _stop_time(until, loaded.clock)
    replay_from = RunFolder.open(replay) if replay is not None else None
    if replay_from is not None:
        recorded = replay_from.scenario().models
        model = model or recorded.default
        embeddings = embeddings or recorded.embeddings
    err.print(f"[bold]simulacra[/bold] {_summary_line(loaded, stop)}", highlight=False)
    summary = asyncio.run(_run_with_progress(loaded, out_dir, model, embeddings, stop, replay_from))
    _print_run_summary(summary, loaded.clock.ticks_until(stop))


def _run_fork(loaded: Scenario, path: Path, fork: str, edits: list[str], until: str | None, out_dir: Path) -> None:
    """`run --fork RUN@TIME`: every input checked against the parent before a folder is made."""
    parent_path, at_sign, at = fork.rpartition("@")
    if not at_sign or not parent_path:
        raise InputError(f"--fork {fork}: give RUN@TIME, such as runs/town-20230213-090000@2023-02-13T12:00")
    parent = RunFolder.open(Path(parent_path))
    clock = parent.scenario().clock
    planned = plan_fork(parent, at, edits, _stop_time(until, clock) if until else None,
                        functools.partial(_warn_skipped, parent.events_path))
    check_same_scenario(loaded, path, planned)
    err.print(f"[bold]simulacra[/bold] fork of {escape(parent_path)} at {planned.origin.at:%Y-%m-%d %H:%M} (tick "
              f"{planned.origin.tick}), {len(edits)} edits; {_summary_line(planned.scenario, planned.stop)}",
              highlight=False)
    summary = asyncio.run(_run_with_progress(planned.base, out_dir, None, None, planned.stop, None, planned))
    _print_run_summary(summary, clock.ticks_until(planned.stop))


def _stop_on_ctrl_c(loop: asyncio.AbstractEventLoop) -> Callable[[Engine], None]:
    """An engine hook: the first Ctrl-C stops at the end of the tick, a second one at once."""

    def hook_engine(engine: Engine) -> None:
        def on_sigint() -> None:
            if engine.stop_requested:
                err.print("[red]second Ctrl-C: stopping at once; the last finished tick is safe[/red]")
                os._exit(130)
            engine.request_stop()
            err.print("[yellow]stopping at the end of this tick (Ctrl-C again to stop at once)[/yellow]")

        loop.add_signal_handler(signal.SIGINT, on_sigint)

    return hook_engine


async def _run_with_progress(
    scenario: Scenario,
    out_dir: Path,
    model: str | None,
    embeddings: str | None,
    stop: datetime,
    replay_from: RunFolder | None,
    fork: Fork | None = None,
) -> RunSummary:
    clock = scenario.clock
    lines = 0
    progress = Progress(
        TextColumn("[bold blue]{task.description}"), BarColumn(), MofNCompleteColumn(),
        TextColumn("{task.fields[lines]} lines"), TimeElapsedColumn(), console=err, transient=False,
    )
    task = progress.add_task(f"{clock.start:%a %H:%M}", total=clock.ticks_until(stop), lines=0)
    loop = asyncio.get_running_loop()
    hook_engine = _stop_on_ctrl_c(loop)

    def on_tick(tick: int, now: datetime, events: list[EventBase]) -> None:
        nonlocal lines
        lines += sum(1 for e in events if getattr(e, "kind", "") == "utterance")
        progress.update(task, advance=1, lines=lines, description=f"{clock.time_of(tick + 1):%a %H:%M}")

    with progress:
        try:
            if fork is not None:
                return await fork_run(fork, out_dir, on_engine=hook_engine, on_tick=on_tick)
            return await execute_run(
                scenario, out_dir, model=model, embeddings=embeddings, until=stop, replay_from=replay_from,
                on_engine=hook_engine, on_tick=on_tick,
            )
        finally:
            loop.remove_signal_handler(signal.SIGINT)


def _batch_skip_warning(folder: Path) -> Callable[[int, str], None]:
    """A batch log's line that is not a record: said, with what passing it over costs."""
    log = RunFolder(folder).events_path
    return lambda number, why: _warn_skipped(log, number, f"{why}; passed over (if it ended a session, that "
                                                          "session is run again)")


def _where(cluster: RaySpec | None) -> str:
    """Where a batch's units run, for its first line."""
    if cluster is None:
        return "in this process"
    return f"as Ray tasks on {cluster.address}" if cluster.address else f"as Ray tasks on {cluster.workers} cores"


def _run_batch(scenario: SocietyScenario, out_dir: Path, model: str | None, cluster: RaySpec | None) -> None:
    society = scenario.society
    pairs = len(role_pairs(scenario))
    err.print(f"[bold]simulacra[/bold] {scenario.name}: role-play batch, {len(society.assistant_roles.names)} assistant "
              f"× {len(society.user_roles.names)} user roles, {society.tasks_per_pair} tasks per pair, "
              f"{society.concurrency} sessions at once, {_where(cluster)} → {out_dir / scenario.name}", highlight=False)
    _batch_with_progress("sessions", pairs * society.tasks_per_pair, out_dir / scenario.name,
                         lambda progress: run_batch(scenario, out_dir, model, on_progress=progress, cluster=cluster,
                                                    on_skip=_batch_skip_warning(out_dir / scenario.name)),
                         extra=lambda s: [("role pairs without tasks", s.pairs_failed)])


def _run_loop_batch(scenario: LoopBatchScenario, path: Path, out_dir: Path, model: str | None,
                    cluster: RaySpec | None) -> None:
    spec = scenario.loops
    rows = batch_inputs(scenario, path)  # every bad input line is reported before anything starts
    unit = "tasks kept" if spec.type == "self_instruct" else "sessions"
    source = f"growing {spec.target} tasks from {len(spec.seeds) or 175} seeds" if spec.type == "self_instruct" \
        else f"{len(rows)} sessions, one per line of {spec.input}"
    err.print(f"[bold]simulacra[/bold] {scenario.name}: {spec.type} batch, {source}, {spec.concurrency} at once, "
              f"{_where(cluster)} → {out_dir / scenario.name}", highlight=False)
    _batch_with_progress(unit, 0, out_dir / scenario.name,
                         lambda progress: run_loop_batch(scenario, path, out_dir, model, on_progress=progress,
                                                         cluster=cluster,
                                                         on_skip=_batch_skip_warning(out_dir / scenario.name)))


def _batch_with_progress(unit: str, total: int, folder: Path, start, extra=lambda summary: []) -> None:
    """A batch under a progress bar, then its table; Ctrl-C keeps what finished and says how to go on."""
    progress = Progress(TextColumn(f"[bold blue]{unit}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                        console=err)
    task = progress.add_task(unit, total=total or None)
    try:
        with progress:
            summary = asyncio.run(start(lambda n, planned: progress.update(task, completed=n, total=planned)))
    except KeyboardInterrupt:
        err.print(f"[yellow]interrupted[/yellow]: everything finished is saved in {folder}; "
                  "run the same command again to carry on")
        raise typer.Exit(130) from None
    c = summary.counters
    table = Table(title=f"Batch {summary.folder}", show_header=False)
    table.add_column("what")
    table.add_column("count", justify="right")
    for label, value in ((f"{unit} planned", summary.planned), ("already done (skipped)", summary.skipped),
                         ("finished now", summary.finished), *extra(summary),
                         *((("units failed (tried again next time)", summary.units_failed),) if summary.units_failed
                           else ()),
                         *((f"ended: {reason}", n) for reason, n in summary.reasons.items()),
                         ("model calls", c.calls), ("retries", c.retries), ("repairs", c.repairs),
                         ("fallbacks", c.fallbacks)):
        table.add_row(label, str(value))
    out.print(table)
    if summary.stopped:
        out.print(f"[yellow]stopped by its budget[/yellow] ({escape(summary.stopped)}); the same command with a higher "
                  f"{flag_for(summary.stopped)} N carries on (0 lifts the limit)", highlight=False)
    out.print(f"next:\n  simulacra harvest {summary.folder} --format openai -o corpus.jsonl", highlight=False)
    if summary.units_failed:
        err.print(f"[red]{summary.units_failed} unit(s) failed[/red] (the `error` records in {summary.folder}/"
                  "events.jsonl say why): run the same command again to retry them", highlight=False)
        raise typer.Exit(EXIT_FAILURE)


def _print_run_summary(summary: RunSummary, total: int) -> None:
    c = summary.counters
    colour = {"completed": "green", "interrupted": "yellow", "budget": "yellow"}.get(summary.status, "red")
    out.print(
        f"[{colour}]{summary.status}[/{colour}] after {summary.ticks} of {total} ticks "
        f"(sim time {summary.sim_time:%Y-%m-%d %H:%M}); {c.calls} model calls ({c.cache_hits} cached), "
        f"{c.prompt_tokens + c.completion_tokens} tokens, {c.retries} retries, {c.repairs} repairs, "
        f"{c.fallbacks} fallbacks",
        highlight=False,
    )
    out.print(f"run folder: [bold]{summary.run_dir}[/bold]", highlight=False)
    out.print("next:", highlight=False)
    out.print(f"  simulacra stats {summary.run_dir}", highlight=False, markup=False)
    out.print(f"  simulacra harvest {summary.run_dir} --format openai -o corpus.jsonl", highlight=False, markup=False)
    if summary.status == "budget":
        out.print(f"[yellow]stopped by its budget[/yellow] ({escape(summary.detail)}); carry on with a higher limit:\n"
                  f"  simulacra resume {escape(str(summary.run_dir))} {flag_for(summary.detail)} N", highlight=False)
    if summary.status == "interrupted":
        raise typer.Exit(130)


@app.command()
@friendly_errors
def stats(
    run_dir: Annotated[Path, typer.Argument(metavar="RUN", help="A run folder.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object instead of tables.")] = False,
    graphml: Annotated[
        Path | None, typer.Option(help="Also write the social graph (who knows and talked to whom) as GraphML.")
    ] = None,
) -> None:
    """Events, conversations, model calls, tokens, failures, and how each probed fact spread; see docs/stats.md."""
    folder = RunFolder.open(run_dir)
    report = compute_stats(folder, functools.partial(_warn_skipped, folder.events_path))
    if as_json:
        sys.stdout.write(report.model_dump_json(indent=2) + "\n")
    else:
        _print_stats(report)
    if graphml is not None:
        social_graph_from_log(folder).to_graphml(_output_file(graphml, "--graphml"))
        err.print(f"social graph → [bold]{escape(str(graphml))}[/bold]", highlight=False)


def _print_stats(report: RunStats) -> None:
    out.print(
        f"[bold]{report.run}[/bold] ({report.scenario}, model {report.model}): {report.status}, {report.ticks} ticks",
        highlight=False,
    )
    if report.forked_from is not None:
        origin = report.forked_from
        out.print(f"forked from {escape(origin.parent)} at {origin.at:%Y-%m-%d %H:%M} (tick {origin.tick}): "
                  f"{escape('; '.join(origin.edits) or 'no edits')}", highlight=False)
    out.print(_totals_table(report))
    if report.agents:
        out.print(_agents_table(report))
    out.print(_purposes_table(report))
    out.print(_spend_table(report.spend))
    if report.quality.dialogues:
        out.print(_quality_table(report.quality))
    for probe in report.diffusion:
        out.print(_diffusion_table(probe))
        if probe.spread:
            out.print(_spread_line(probe), highlight=False)
    kinds = Table(title="Events by kind")
    kinds.add_column("kind")
    kinds.add_column("count", justify="right")
    for kind, count in report.events.items():
        kinds.add_row(kind, str(count))
    out.print(kinds)


def _totals_table(report: RunStats) -> Table:
    f = report.failures
    totals = Table(title="Totals", show_header=False)
    totals.add_column("what")
    totals.add_column("count", justify="right")
    for label, value in (
        ("conversations", report.conversations), ("utterances", report.utterances),
        ("sessions", report.sessions),
        *((f"  {kind.replace('_', '-')}", n) for kind, n in sorted(report.session_kinds.items())),
        ("session messages", report.session_messages),
        ("memories", report.memories), ("reflections", report.reflections), ("retrievals", report.retrievals),
        ("model calls", report.model_calls), ("cache hits", report.cache_hits),
        ("prompt tokens", report.tokens.prompt), ("completion tokens", report.tokens.completion),
        ("retries", f.retries), ("repairs", f.repairs), ("fallbacks", f.fallbacks),
        ("errors", f.errors), ("warnings", f.warnings),
    ):
        totals.add_row(label, f"[red]{value}[/red]" if value and label in {"errors", "fallbacks"} else str(value))
    for reason, count in report.session_ends.items():
        totals.add_row(f"sessions ended: {reason}", str(count))
    if report.sim_hours is not None:
        totals.add_row("simulated hours", f"{report.sim_hours:g}")
    if report.incomplete_tail_events:
        totals.add_row("left out: events of a tick cut short", f"[yellow]{report.incomplete_tail_events}[/yellow]")
    return totals


def _agents_table(report: RunStats) -> Table:
    agents = Table(title="Per agent")
    for column in ("agent", "convs", "lines", "mems", "refl", "calls", "calls/h", "tokens",
                   "retry", "repair", "fallbk", "errors"):
        agents.add_column(column, justify="left" if column == "agent" else "right")
    for name, a in report.agents.items():
        rate = "–" if a.calls_per_hour is None else f"{a.calls_per_hour:.2f}"
        agents.add_row(escape(name), *map(str, (a.conversations, a.utterances, a.memories, a.reflections,
                                                a.model_calls, rate, a.tokens.total,
                                                a.failures.retries, a.failures.repairs, a.failures.fallbacks,
                                                a.failures.errors)))
    return agents


def _purposes_table(report: RunStats) -> Table:
    purposes = Table(title="Model calls by purpose")
    for column in ("purpose", "calls", "cached", "prompt mean", "evaluated mean", "prompt max", "tokens", "latency s"):
        purposes.add_column(column, justify="left" if column == "purpose" else "right")
    for name, p in report.purposes.items():
        purposes.add_row(escape(name), str(p.calls), str(p.cached), f"{p.prompt_tokens_mean:.1f}",
                         f"{p.prompt_tokens_evaluated_mean:.1f}", str(p.prompt_tokens_max), str(p.tokens),
                         f"{p.latency_s:.2f}")
    return purposes


def _spend_table(spend: SpendReport) -> Table:
    """Calls the run paid for and their tokens, per agent then per purpose, priced where the scenario has prices."""
    budget, prices = spend.budget, spend.budget.prices
    limits = ", ".join(f"{name} {limit}" for name, limit in (("max calls", budget.max_calls),
                                                            ("max tokens", budget.max_tokens)) if limit is not None)
    caption = f"budget: {limits or 'none'}" + (f"; [yellow]stopped: {escape(spend.stopped)}[/yellow]"
                                               if spend.stopped else "")
    table = Table(title="Spend (calls paid for; another run's cached answers are free)", caption=caption)
    columns = ["", "calls", "prompt", "completion", "tokens", *([f"cost {prices.currency}"] if prices else [])]
    for column in columns:
        table.add_column(column, justify="left" if not column else "right")
    rows = [("[bold]all[/bold]", spend.total), *((escape(n), r) for n, r in spend.agents.items()),
            *((f"[dim]purpose[/dim] {escape(n)}", r) for n, r in spend.purposes.items())]
    for label, row in rows:
        cost = [f"{row.cost:.4f}"] if prices and row.cost is not None else []
        table.add_row(label, *map(str, (row.calls, row.prompt_tokens, row.completion_tokens, row.tokens)), *cost)
    return table


def _quality_table(quality: QualityReport) -> Table:
    table = Table(title="Dialogue quality (ended conversations and role-play sessions)", show_header=False)
    table.add_column("figure")
    table.add_column("value", justify="right")
    rows = [
        ("dialogues", f"{quality.dialogues} ({dialogue_kinds(quality)})"),
        ("mean lines per dialogue", f"{quality.mean_lines:.2f}"),
        *((f"ended: {reason}", f"{share:.0%}") for reason, share in quality.end_reasons.items()),
        ("self-address rate", f"{quality.self_address_rate:.1%}"), ("echo rate", f"{quality.echo_rate:.1%}"),
        ("truncated lines", f"{quality.truncated_rate:.1%}"),
        ("out of character (assistant, prompt read out)", f"{quality.out_of_character_rate:.1%}"),
        ("greets someone not in the talk", f"{quality.wrong_addressee_rate:.1%}"),
        ("distinct-1 / distinct-2", f"{quality.distinct_1:.3f} / {quality.distinct_2:.3f}"),
        ("near-duplicate dialogues", f"{quality.near_duplicate_rate:.1%}"),
    ]
    if quality.role_flip_rate is not None:
        rows.append(("role-play sessions with a role flip", f"{quality.role_flip_rate:.1%}"))
    for label, value in rows:
        table.add_row(escape(label), value)
    return table


#: Colour of an answer's verdict: the fact found in it (green), missing (red), found but unexplained (yellow).
_VERDICT_STYLE = {"seeded": "green", "heard": "green", "source not in log": "yellow", "did not know": "red"}


def _diffusion_table(probe: ProbeDiffusion) -> Table:
    checked = bool(probe.expect)
    table = Table(
        title=f"Diffusion: probe {probe.probe} — {escape(probe.question)}",
        caption=f"knew = answer contains any of: {escape(', '.join(probe.expect))}" if checked
        else "no expect words: answers are listed, not checked",
    )
    table.add_column("agent")
    if checked:
        for column in ("knew?", "how", "when"):
            table.add_column(column)
    table.add_column("answer", max_width=60, no_wrap=True, overflow="ellipsis")
    for a in probe.answers:
        style = _VERDICT_STYLE.get(a.verdict, "")
        when = f"{a.exposure.sim_time:%a %H:%M}" if a.exposure else "–"
        knew = [f"[{style}]{'yes' if a.knew else 'no'}[/{style}]", f"[{style}]{_how(a)}[/{style}]", when]
        table.add_row(escape(a.agent), *(knew if checked else []), escape(a.answer))
    return table


def _how(answer: ProbeAnswerReport) -> str:
    """Where the log shows the agent met the fact; a hearing after a "no" is kept: told, but not retained."""
    exposure = answer.exposure
    if exposure is None:
        return "source not in log" if answer.knew else "–"
    if exposure.source == "seeded":
        return "seeded"
    return escape(f"heard from {exposure.speaker} ({exposure.conversation_id})")


def _spread_line(probe: ProbeDiffusion) -> str:
    """The hours in which the count of agents who had met the fact changed (every hour is in --json)."""
    points = probe.spread
    changes = [p for before, p in zip([None, *points], points) if before is None or p.heard != before.heard]
    return "  had met the fact: " + ", ".join(f"{p.heard} by {p.at:%a %H:%M}" for p in changes)


@app.command()
@friendly_errors
def resume(
    run_dir: Annotated[Path, typer.Argument(metavar="RUN", help="An interrupted run folder.")],
    model: Annotated[str | None, typer.Option(help="The model spec the run used, if it was not its scenario's.")] = None,
    max_calls: Annotated[int | None, typer.Option(min=0, help="A new limit on model calls, the run's so far "
                                                               "included (0: no limit).")] = None,
    max_tokens: Annotated[int | None, typer.Option(min=0, help="A new limit on tokens, the run's so far included.")] = None,
) -> None:
    """Carry an interrupted run (Ctrl-C, a crash, kill -9, its budget) on from its last snapshot to the stop it was
    started with.

    The log is cut back to the snapshot; the ticks after it run again from the run's model cache, so
    the finished log is the one an uninterrupted run would have written. A batch resumes with `run`.
    """
    folder = RunFolder.open(run_dir)
    summary, report, total = asyncio.run(_resume_with_progress(folder, model, (max_calls, max_tokens)))
    repaired = " (its torn last line was repaired)" if report.torn_line else ""
    err.print(f"resumed from tick {report.from_tick}: {report.events_cut} events after the snapshot were cut and "
              f"written again{repaired}", highlight=False)
    _print_run_summary(summary, total)


async def _resume_with_progress(folder: RunFolder, model: str | None,
                                limits: tuple[int | None, int | None]) -> tuple[RunSummary, ResumeReport, int]:
    clock = folder.scenario().clock
    started = next(iter(folder.reader().events({"run_started"})), None)
    total = clock.ticks_until(started.until if started else clock.stop)
    state = folder.read_snapshot()
    progress = Progress(TextColumn("[bold blue]{task.description}"), BarColumn(), MofNCompleteColumn(),
                        TimeElapsedColumn(), console=err)
    task = progress.add_task("resuming", total=total, completed=state["next_tick"] if state else 0)
    loop = asyncio.get_running_loop()

    def on_tick(tick: int, now: datetime, events: list[EventBase]) -> None:
        progress.update(task, completed=tick + 1, description=f"{clock.time_of(tick + 1):%a %H:%M}")

    with progress:
        try:
            summary, report = await resume_run(folder, model=model, on_tick=on_tick, on_engine=_stop_on_ctrl_c(loop),
                                               limits=limits)
        finally:
            loop.remove_signal_handler(signal.SIGINT)
    return summary, report, total


@app.command()
@friendly_errors
def inspect(
    run_dir: Annotated[Path, typer.Argument(metavar="RUN", help="A run folder (or a batch folder).")],
    agent: Annotated[list[str], typer.Option(help="Only this agent's timeline (repeat for several).")] = [],  # noqa: B006
    kind: Annotated[list[str], typer.Option(help="Only events of this kind, e.g. utterance, plan (repeatable).")] = [],  # noqa: B006
    start: Annotated[str | None, typer.Option("--from", help="From this sim time (ISO).")] = None,
    end: Annotated[str | None, typer.Option("--to", help="Up to this sim time (ISO).")] = None,
    grep: Annotated[str | None, typer.Option(help="Only events whose text contains this (any case).")] = None,
    conversation: Annotated[str | None, typer.Option(help="Only this conversation or session id.")] = None,
    show_all: Annotated[bool, typer.Option("--all", help="Also model calls, retrievals and tick records.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Stream the selected events as JSONL.")] = False,
) -> None:
    """A run's timeline: moves, actions, plans, talk, memories, reflections, probe answers, failures."""
    folder = RunFolder.open(run_dir)
    chosen = checked_filter(folder, agent, kind, start, end, grep, conversation)
    inspect_run(folder, chosen, as_json, show_all, out, err)


@app.command("interview")
@friendly_errors
def interview_command(
    run_dir: Annotated[Path, typer.Argument(metavar="RUN", help="A run folder.")],
    agent: Annotated[str, typer.Argument(help="The agent to ask.")],
    question: Annotated[str, typer.Argument(help="The question.")],
    at: Annotated[str | None, typer.Option(help="The agent as it was at this sim time (ISO); default: the end.")] = None,
    model: Annotated[str | None, typer.Option(help="Model spec; default: the run's own.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the interview as one JSON object.")] = False,
) -> None:
    """Ask an agent a question; it answers from its own memories as they were at --at (the run is not changed)."""
    record = asyncio.run(interview(RunFolder.open(run_dir), agent, question, at, model))
    if as_json:
        sys.stdout.write(record.model_dump_json() + "\n")
        return
    out.print(f"[bold]{escape(agent)}[/bold] at {record.at:%Y-%m-%d %H:%M} "
              f"({record.memories_known} memories), asked: {escape(question)}", highlight=False)
    out.print(f"[cyan]{escape(record.answer)}[/cyan]", highlight=False)
    table = Table(title="memories it drew on", show_header=True)
    table.add_column("score", justify="right")
    table.add_column("memory")
    for text, score in zip(record.memories, record.scores):
        table.add_row(f"{score:.3f}", escape(text))
    out.print(table)
    out.print(f"saved to {run_dir / INTERVIEWS_FILE}", highlight=False)


@app.command()
@friendly_errors
def replay(
    run_dir: Annotated[Path, typer.Argument(metavar="RUN", help="A world run folder.")],
    output: Annotated[Path, typer.Option("-o", "--output", help="HTML file to write.")] = Path("replay.html"),
) -> None:
    """One self-contained HTML page of a run: lanes over sim time, a scrubber, the place graph, transcripts, plots."""
    folder = RunFolder.open(run_dir)
    target = _output_file(output, "--output")
    model = build_replay(folder, lambda message: err.print(f"[yellow]{escape(message)}[/yellow]", highlight=False))
    page = render_page(model)
    try:
        write_atomically(target, page)
    except OSError as exc:
        raise InputError(f"--output {output}: cannot write it: {exc.strerror or exc}") from None
    talks = sum(1 for d in model.dialogues if d.kind == "conversation")
    out.print(f"[green]replay[/green] → {escape(str(output))} ({len(page.encode()) / 1024:.0f} KB): "
              f"{len(model.agents)} agents, {len(model.frames)} ticks, {talks} conversations, "
              f"{len(model.dialogues) - talks} sessions, {len(model.reflections)} reflections, "
              f"{len(model.probes)} probes", highlight=False)


@app.command("diff")
@friendly_errors
def diff_command(
    run_a: Annotated[Path, typer.Argument(metavar="RUN_A", help="A run folder.")],
    run_b: Annotated[Path, typer.Argument(metavar="RUN_B", help="Another run folder (a fork of RUN_A, say).")],
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object instead of tables.")] = False,
) -> None:
    """Where two runs' timelines part, agent by agent, and how their probe answers and diffusion differ."""
    report = diff_runs(RunFolder.open(run_a), RunFolder.open(run_b), _warn_skipped)
    for warning in report.warnings:
        err.print(f"[yellow]warning:[/yellow] {escape(warning)}", highlight=False)
    if as_json:
        sys.stdout.write(report.model_dump_json(indent=2) + "\n")
    else:
        print_diff(report, out)


@app.command("harvest")
@friendly_errors
def harvest_command(
    runs: Annotated[list[Path], typer.Argument(metavar="RUN...", help="One or more run folders (runs/* works).")],
    fmt: Annotated[HarvestFormat, typer.Option(
        "--format", help="openai, sharegpt, parquet (openai messages), alpaca or dpo; see docs/harvest.md.")] = "openai",
    output: Annotated[Path, typer.Option("-o", "--output", help="Corpus file to write.")] = Path("corpus.jsonl"),
    assistant: Annotated[str, typer.Option(
        help="Who plays the assistant in a conversation: answerer, first, an agent's NAME, or both.")] = "answerer",
    min_turns: Annotated[int, typer.Option(help="Drop dialogues with fewer lines.")] = 2,
    max_turns: Annotated[int | None, typer.Option(help="Drop dialogues with more lines.")] = None,
    end_reason: Annotated[list[str], typer.Option(
        help="Keep only dialogues that ended for this reason (repeatable).")] = [],  # noqa: B006
    max_self_address: Annotated[float | None, typer.Option(
        help="Drop dialogues whose share of self-addressing lines is above this (0-1).")] = None,
    max_echo: Annotated[float | None, typer.Option(help="Drop dialogues whose share of echoed lines is above this.")] = None,
    max_out_of_character: Annotated[float | None, typer.Option(
        help="Drop dialogues whose share of lines out of character (assistant talk, prompt read out) is above this.")] = None,
    max_wrong_addressee: Annotated[float | None, typer.Option(
        help="Drop dialogues whose share of lines greeting someone not in the talk is above this.")] = None,
    max_role_flips: Annotated[int | None, typer.Option(help="Drop role-play sessions with more role flips.")] = None,
    max_repetition: Annotated[float | None, typer.Option(
        help="Drop dialogues whose repeated-trigram share is above this (0-1).")] = None,
    min_chars: Annotated[int | None, typer.Option(help="Drop dialogues with a turn shorter than this.")] = None,
    max_chars: Annotated[int | None, typer.Option(help="Drop dialogues with a turn longer than this.")] = None,
    min_p_true: Annotated[
        float | None, typer.Option(help="Self-Eval: keep only answers whose P(True) is at least this.")
    ] = None,
    dedup: Annotated[bool, typer.Option(help="Drop exact and near copies across all the runs.")] = True,
    dedup_threshold: Annotated[float, typer.Option(help="Near copy: estimated Jaccard similarity at least this.")] = 0.8,
    dedup_ngram: Annotated[int, typer.Option(help="Near copy: compare word n-grams of this size.")] = 3,
    test_fraction: Annotated[float, typer.Option(
        help="Share of dialogues for FILE's .test sibling, chosen by a hash of run and dialogue id.")] = 0.0,
    provenance: Annotated[bool, typer.Option(
        help="Per turn, the memories the speaker had just retrieved (ids and text), in the metadata.")] = False,
    metadata: Annotated[bool, typer.Option(help="Attach run/participants/place/time metadata.")] = True,
    with_thoughts: Annotated[bool, typer.Option(help="Self-Align: keep the thoughts before each answer.")] = False,
    failing_code: Annotated[bool, typer.Option(help="Self-Debug: keep sessions whose tests never passed.")] = False,
    strict: Annotated[bool, typer.Option(help="A run that cannot be read stops the harvest (exit 2).")] = False,
    card: Annotated[bool, typer.Option(help="Write a dataset card (README.md and a PNG) beside the corpus.")] = True,
    license_: Annotated[str, typer.Option("--license", help="The card's license field.")] = "other",
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as one JSON object.")] = False,
) -> None:
    """Turn the runs' conversations, role-play sessions and Self-* loops into a filtered, deduplicated corpus."""
    options = _harvest_options(**{k: v for k, v in locals().items() if k not in ("runs", "fmt", "output", "as_json")})
    if provenance and (fmt == "dpo" or not metadata):
        raise InputError("--provenance: the memories go in each record's metadata, per turn; dpo records have no "
                         "turns, and --no-metadata leaves no metadata")
    target = _output_file(output, "--output")
    check_assistant(runs, assistant)  # before the bar, so an input error is the only thing printed
    progress = Progress(TextColumn("[bold blue]{task.description}"), BarColumn(), MofNCompleteColumn(),
                        TextColumn("{task.fields[items]} dialogues"), TimeElapsedColumn(), console=err)
    task = progress.add_task("harvest", total=len(runs), items=0)
    finished_items = 0

    def on_progress(run: str, items: int, finished: bool) -> None:
        nonlocal finished_items
        progress.update(task, description=escape(run), items=finished_items + items, advance=int(finished))
        finished_items += items if finished else 0

    with progress:
        report = harvest(runs, fmt, target, options, on_progress=on_progress)
    for why in report.skipped_runs:
        err.print(f"[yellow]skipped[/yellow] {escape(why)}", highlight=False)
    for warning in report.warnings:
        err.print(f"[yellow]warning:[/yellow] {escape(warning)}", highlight=False)
    if as_json:
        sys.stdout.write(report.model_dump_json(indent=2) + "\n")
        return
    _print_harvest(report, fmt, output)


def _harvest_options(**given: Any) -> HarvestOptions:
    """The command's options as the harvest takes them; an out-of-range value is an input error (exit 2)."""
    try:
        return HarvestOptions(
            assistant=given["assistant"], with_metadata=given["metadata"], provenance=given["provenance"],
            dedup=given["dedup"], dedup_threshold=given["dedup_threshold"], dedup_ngram=given["dedup_ngram"],
            test_fraction=given["test_fraction"], strict=given["strict"], card=given["card"],
            license=given["license_"],
            loops=LoopHarvestOptions(with_thoughts=given["with_thoughts"], failing_code=given["failing_code"]),
            filters=HarvestFilters(
                min_turns=given["min_turns"], max_turns=given["max_turns"], end_reasons=given["end_reason"],
                max_self_address=given["max_self_address"], max_echo=given["max_echo"],
                max_out_of_character=given["max_out_of_character"], max_wrong_addressee=given["max_wrong_addressee"],
                max_role_flips=given["max_role_flips"], max_repetition=given["max_repetition"],
                min_chars=given["min_chars"], max_chars=given["max_chars"], min_p_true=given["min_p_true"]),
        )
    except ValidationError as exc:
        problem = exc.errors()[0]
        field = {"end_reasons": "end_reason"}.get(str(problem["loc"][-1]), str(problem["loc"][-1]))
        raise InputError(f"--{field.replace('_', '-')}: {problem['msg'].removeprefix('Value error, ')}") from None


def _print_harvest(report: HarvestReport, fmt: str, output: Path) -> None:
    talks = report.conversations
    out.print(f"[green]{report.written}[/green] records → {output} ({fmt}): {talks} conversations, "
              f"{report.sessions} role-play sessions, {report.loops} from Self-* loops", highlight=False)
    table = Table(title="Harvest", show_header=False)
    table.add_column("step")
    table.add_column("dialogues", justify="right")
    table.add_row("read", str(report.read))
    for why, count in report.removed.items():
        table.add_row(f"removed: {escape(why)}", f"[yellow]{count}[/yellow]" if count else "0")
    table.add_row("[bold]kept[/bold]", f"[bold]{report.kept}[/bold]")
    for split, count in report.records.items():
        table.add_row(f"records: {split}", str(count))
    out.print(table)
    if report.loops_left_out:
        out.print(f"[yellow]{report.loops_left_out} Self-* sessions gave no record[/yellow] (a failed end, a "
                  "placeholder message, or failing code)", highlight=False)
    if report.unfinished:
        out.print(f"[yellow]{report.unfinished} unfinished conversations or sessions skipped[/yellow] "
                  f"(no end in the log)", highlight=False)
    out.print("wrote " + ", ".join(escape(f) for f in report.files), highlight=False)


@app.command()
@friendly_errors
def sweep(
    sweep_file: Annotated[Path, typer.Argument(metavar="SWEEP", help="Sweep YAML: scenarios × seeds × overrides.")],
    out_dir: Annotated[Path, typer.Option("--out", help="Folder that receives the sweep folder.")] = Path("runs"),
    ray_address: Annotated[str | None, typer.Option("--ray", metavar="ADDRESS",
                                                    help="A Ray cluster (ray://HOST:10001 or auto); default: "
                                                         "Ray on this machine.")] = None,
    workers: Annotated[int | None, typer.Option(min=1, help="Units at once on this machine (default: its cores).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object instead of the table.")] = False,
) -> None:
    """Run every combination of a sweep's scenarios, seeds and overrides, each as a Ray task, into OUT/NAME/.

    A unit that fails is reported and the rest go on; running the same command again runs only the
    units not done yet. Exit 1 when a unit failed.
    """
    if ray_address is not None and workers is not None:
        raise InputError("--workers sizes Ray on this machine; a cluster given with --ray brings its own")
    spec, units = plan_sweep(sweep_file)
    err.print(f"[bold]simulacra[/bold] sweep {spec.name}: {len(units)} units ({len(spec.scenarios)} scenarios × "
              f"{len(spec.seed_list())} seeds × {len(spec.grid())} override combinations) → {out_dir / spec.name}", highlight=False)
    progress = Progress(TextColumn("[bold blue]units"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                        console=err, disable=as_json)
    task = progress.add_task("units", total=None)
    with progress:
        summary = run_sweep(spec, units, out_dir, ray_address, workers,
                            on_progress=lambda n, total: progress.update(task, completed=n, total=total))
    if as_json:
        sys.stdout.write(summary.model_dump_json(indent=2) + "\n")
    else:
        out.print(_sweep_table(summary))
        out.print(f"{summary.skipped} of {summary.planned} units were already done; results: "
                  f"{summary.folder / RESULTS_FILE}", highlight=False)
    if summary.failed:
        err.print(f"[red]{len(summary.failed)} unit(s) failed[/red]: run the same command again to retry them",
                  highlight=False)
        raise typer.Exit(EXIT_FAILURE)


def _sweep_table(summary: SweepSummary) -> Table:
    """One row per unit run now; each unit's run folder is OUT/NAME/UNIT/ (`--json` has the paths)."""
    table = Table(title=f"Sweep {summary.folder}")
    failed = bool(summary.failed)
    for column in ("unit", "status", "ticks", "calls", "convs", "lines", "tokens", "wall s", *(["error"] if failed else [])):
        table.add_column(column, justify="left" if column in {"unit", "status", "error"} else "right")
    for r in summary.results:
        status = f"[green]{r.status}[/green]" if r.status in DONE else f"[red]{r.status}[/red]"
        table.add_row(escape(r.id), status, *map(str, (r.ticks, r.model_calls, r.conversations, r.utterances, r.tokens,
                                                       f"{r.wall_s:.1f}")), *([escape(r.error)] if failed else []))
    return table


def main() -> None:
    app()
