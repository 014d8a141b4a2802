"""Stats on hand-written logs: how probed facts spread, calls per agent-hour, prompt sizes, the GraphML export."""

from __future__ import annotations

import asyncio
import json
from datetime import datetime, timedelta
from pathlib import Path

import networkx as nx
from typer.testing import CliRunner

from agents.persona import Persona
from memory.records import MemoryRecord
from tests.conftest import SMALL_TOWN
from tests.fakes import EchoFake
from tests.test_logs import at, ended
from tests.test_world_run import PICNIC_TOWN
from worlds.cli import app
from worlds.events import (
    ConversationStarted,
    EventBase,
    MemoryAddedEvent,
    ModelCall,
    ProbeAnswered,
    RelationshipUpdated,
    RunEnded,
    RunStarted,
    TickCompleted,
    Utterance,
)
from worlds.runfolder import RunFolder
from worlds.runner import execute_run
from worlds.scenario import Probe, Scenario, parse_scenario
from worlds.stats import compute_stats

T0 = at(0)["sim_time"]
POSITIONS = {"Ann": "Cafe", "Bob": "Cafe", "Cy": "Park", "Dee": "Park"}
PICNIC = Probe(at="end", ask="all", question="Is anyone hosting a picnic?", expect=["picnic", "Lake party"])
POEM = Probe(at="end", ask=["Cy"], question="What are you writing?")


def town(*probes: Probe) -> Scenario:
    """The small town with a fourth agent and the given probes."""
    scenario = parse_scenario(SMALL_TOWN)
    return scenario.model_copy(update={
        "agents": [*scenario.agents, Persona(name="Dee", home="Park")], "probes": list(probes),
    })


def write_run(tmp_path: Path, scenario: Scenario, events: list[EventBase]) -> RunFolder:
    """A run folder holding the scenario's YAML and the events, numbered, one per line."""
    folder = RunFolder.create(tmp_path, scenario)
    lines = [e.model_copy(update={"seq": n}).model_dump_json() + "\n" for n, e in enumerate(events)]
    folder.events_path.write_text("".join(lines))
    return folder


def memory(tick: int, agent: str, text: str, kind: str = "observation", source: int | None = None) -> MemoryAddedEvent:
    when = at(tick)["sim_time"]
    record = MemoryRecord(id=f"{agent}-{tick}-{len(text)}", agent=agent, kind=kind, text=text, created=when,
                          last_accessed=when, importance=5, source_event=source)
    return MemoryAddedEvent(**at(tick), agents=[agent], agent=agent, memory=record)


def call(tick: int, agent: str | None, purpose: str, prompt_tokens: int, reused: int = 0,
         cached: bool = False) -> ModelCall:
    return ModelCall(**at(tick), agents=[agent] if agent else [], agent=agent, purpose=purpose, model="fake",
                     request_key="k", seed=0, structured=None, messages=[], response="", prompt_tokens=prompt_tokens,
                     prompt_tokens_reused=reused, completion_tokens=10, cached=cached, retries=0, latency_s=0.5)


def said(tick: int, speaker: str, text: str) -> Utterance:
    """A line of Ann and Bob's conversation c1; both are its participants."""
    return Utterance(**at(tick), agents=["Ann", "Bob"], conversation_id="c1", speaker=speaker, place="Cafe", text=text)


def answer(tick: int, agent: str, probe: int, text: str) -> ProbeAnswered:
    question = (PICNIC, POEM)[probe].question
    return ProbeAnswered(**at(tick), agents=[agent], probe=probe, question=question, answer=text, memories=[])


def picnic_log() -> list[EventBase]:
    """Ann starts with the news and tells Bob (after Bob names it himself); Cy knows it unexplained; Dee never hears."""
    return [
        RunStarted(**at(0), run_id="town-1", scenario="small-town", seed=3, model="fake", until=at(3)["sim_time"]),
        memory(0, "Ann", "Ann is hosting a PICNIC on Sunday."),
        memory(0, "Bob", "Bob fixes bicycles."),
        memory(0, "Cy", "Cy's plan: write about a picnic.", kind="plan"),  # first tick, but a plan: not seeded
        call(0, "Ann", "plan_day", 100),
        call(0, None, "plan_day", 40),
        TickCompleted(**at(0), positions=POSITIONS),
        ConversationStarted(**at(1), agents=["Ann", "Bob"], conversation_id="c1", place="Cafe"),
        said(1, "Bob", "Is it true there's a picnic?"),
        said(1, "Ann", "Morning, Bob!"),
        TickCompleted(**at(1), positions=POSITIONS),
        said(2, "Ann", "Yes: my lake party on Sunday."),
        ended(2, "c1", ["Ann", "Bob"], "Cafe", "farewell", 3),
        RelationshipUpdated(**at(2), agents=["Ann"], other="Bob", summary="a fellow picnicker"),
        memory(2, "Dee", "Dee plans a picnic alone.", kind="plan"),  # no source, but not seeded: tick 2
        call(2, "Ann", "utterance", 300),
        call(2, "Ann", "utterance", 500),
        call(2, "Bob", "utterance", 100),
        TickCompleted(**at(2), positions=POSITIONS),
        answer(3, "Ann", 0, "My picnic, of course."),
        answer(3, "Bob", 0, "Ann's lake party!"),
        answer(3, "Cy", 0, "I think there's a picnic."),
        answer(3, "Dee", 0, "No idea."),
        answer(3, "Cy", 1, "A poem about [rain]."),
        RunEnded(**at(3), status="completed", ticks=3),
    ]


def test_diffusion_tells_seeded_heard_and_unexplained_apart(tmp_path: Path):
    report = compute_stats(write_run(tmp_path, town(PICNIC, POEM), picnic_log()))
    picnic, poem = report.diffusion
    answers = {a.agent: a for a in picnic.answers}
    assert {name: a.verdict for name, a in answers.items()} == {
        "Ann": "seeded", "Bob": "heard", "Cy": "source not in log", "Dee": "did not know",
    }
    assert answers["Ann"].exposure.sim_time == T0
    bob = answers["Bob"].exposure  # Bob's own "picnic?" taught him nothing; Ann's "lake party" did
    assert (bob.speaker, bob.conversation_id, bob.sim_time) == ("Ann", "c1", at(2)["sim_time"])
    assert answers["Cy"].knew and answers["Cy"].exposure is None
    assert not answers["Dee"].knew and answers["Dee"].exposure is None  # a plan at tick 2 is not a seed
    assert [(p.at, p.heard) for p in picnic.spread] == [(T0, 1), (T0 + timedelta(hours=1), 2)]
    assert poem.expect == [] and poem.spread == []
    assert [(a.agent, a.answer, a.knew, a.verdict) for a in poem.answers] == [
        ("Cy", "A poem about [rain].", None, "not checked"),
    ]


def test_a_hearing_after_the_answer_does_not_explain_it(tmp_path: Path):
    early = PICNIC.model_copy(update={"at": at(1)["sim_time"], "ask": ["Bob"]})
    events = [e for e in picnic_log() if not isinstance(e, ProbeAnswered)]
    close_tick_1 = next(n for n, e in enumerate(events) if isinstance(e, TickCompleted) and e.tick == 1)
    events.insert(close_tick_1, answer(1, "Bob", 0, "A picnic, I think."))
    (probe,) = compute_stats(write_run(tmp_path, town(early), events)).diffusion
    (bob,) = probe.answers
    assert bob.verdict == "source not in log" and bob.exposure is None


def test_calls_per_agent_hour_and_prompt_sizes_by_purpose(tmp_path: Path):
    report = compute_stats(write_run(tmp_path, town(PICNIC, POEM), picnic_log()))
    assert report.ticks == 3 and report.sim_hours == 0.5  # three closed ticks of 10 minutes
    assert report.agents["Ann"].model_calls == 3 and report.agents["Ann"].calls_per_hour == 6.0
    assert report.agents["Bob"].calls_per_hour == 2.0
    assert report.agents["Ann"].conversations == 1 and report.agents["Ann"].utterances == 2
    utterance, plan = report.purposes["utterance"], report.purposes["plan_day"]
    assert (utterance.calls, utterance.prompt_tokens_mean, utterance.prompt_tokens_max) == (3, 300.0, 500)
    assert (plan.calls, plan.prompt_tokens_mean, plan.prompt_tokens_max) == (2, 70.0, 100)


def test_prompt_tokens_restored_or_cached_are_not_counted_as_evaluated(tmp_path: Path):
    events = [e for e in picnic_log() if not (isinstance(e, ModelCall) and e.purpose == "utterance")]
    close = next(n for n, e in enumerate(events) if isinstance(e, TickCompleted) and e.tick == 2)
    events[close:close] = [call(2, "Ann", "utterance", 300, reused=200), call(2, "Ann", "utterance", 500, cached=True),
                           call(2, "Bob", "utterance", 100)]
    utterance = compute_stats(write_run(tmp_path, town(PICNIC, POEM), events)).purposes["utterance"]
    assert (utterance.prompt_tokens_mean, utterance.prompt_tokens_saved) == (300.0, 700)
    assert utterance.prompt_tokens_evaluated_mean == 66.7  # (300 - 200 + 0 + 100) / 3


def test_a_bare_log_gets_counts_without_rates_or_diffusion(tmp_path: Path):
    report = compute_stats(write_run(tmp_path, town(PICNIC, POEM), picnic_log()).reader())
    assert report.model_calls == 5 and report.sim_hours is None and report.diffusion == []
    assert report.agents["Ann"].calls_per_hour is None


def test_cli_shows_diffusion_and_writes_graphml(tmp_path: Path):
    folder = write_run(tmp_path, town(PICNIC, POEM), picnic_log())
    graph_file = tmp_path / "social.graphml"
    runner = CliRunner()
    shown = runner.invoke(app, ["stats", str(folder.path), "--graphml", str(graph_file)], env={"COLUMNS": "200"})
    assert shown.exit_code == 0, shown.output
    assert "Diffusion: probe 0" in shown.stdout and "heard from Ann (c1)" in shown.stdout
    assert "source not in log" in shown.stdout and "[rain]" in shown.stdout
    assert "Dialogue quality" in shown.stdout and "ended: farewell" in shown.stdout
    assert f"social graph → {graph_file}" in shown.stderr
    graph = nx.read_graphml(graph_file)
    assert set(graph.nodes) == {"Ann", "Bob", "Cy", "Dee"}
    edge = graph.edges["Ann", "Bob"]
    assert edge["label"] == "old friend" and edge["talks"] == 1 and edge["summary_Ann"] == "a fellow picnicker"
    as_json = runner.invoke(app, ["stats", str(folder.path), "--json"])
    report = json.loads(as_json.stdout)
    assert report["diffusion"][0]["answers"][1]["exposure"]["speaker"] == "Ann"
    assert report["purposes"]["utterance"]["prompt_tokens_mean"] == 300.0
    quality = report["quality"]
    assert (quality["conversations"], quality["lines"], quality["end_reasons"]) == (1, 3, {"farewell": 1.0})
    assert quality["self_address_rate"] == 0.0 and quality["echo_rate"] == 0.0


def test_a_real_run_shows_who_heard_the_picnic_from_whom(tmp_path: Path):
    scenario = parse_scenario(PICNIC_TOWN)
    probes = [probe.model_copy(update={"expect": ["picnic"]}) for probe in scenario.probes]
    scenario = scenario.model_copy(update={"probes": probes})
    summary = asyncio.run(execute_run(scenario, tmp_path, model=EchoFake("Cafe"),
                                      until=datetime.fromisoformat("2023-02-13T12:00")))
    (picnic,) = compute_stats(RunFolder(summary.run_dir)).diffusion
    answers = {a.agent: a for a in picnic.answers}
    assert answers["Bob"].verdict == "heard" and answers["Bob"].exposure.speaker == "Ann"
    cy = answers["Cy"]
    assert cy.verdict in {"heard", "did not know"}
    if cy.exposure is not None:  # the log shows who told Cy: Ann, or Bob once he had heard it
        assert cy.exposure.speaker == "Ann" or (
            cy.exposure.speaker == "Bob" and cy.exposure.sim_time >= answers["Bob"].exposure.sim_time)
    assert picnic.spread[0].heard == 1  # Ann, seeded
    assert picnic.spread[-1].heard == 1 + sum(a.exposure is not None for a in picnic.answers)
