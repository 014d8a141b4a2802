"""Planning: the day decomposes into contiguous actions covering the waking day; re-planning rewrites only the future."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from agents.cognition.plan import plan_actions, plan_day, replan
from agents.gateway import CallScope, ModelGateway, build_backend
from agents.plans import PlanStep, lay_out_actions
from tests.conftest import SMALL_TOWN
from tests.fakes import make_agent
from worlds.places import PlaceGraph
from worlds.scenario import parse_scenario

MORNING = datetime(2023, 2, 13, 7, 0)


def _contiguous(steps: list[PlanStep], start: datetime, end: datetime) -> None:
    assert steps[0].start == start and steps[-1].end == end
    for before, after in zip(steps, steps[1:]):
        assert before.end == after.start, (before, after)
    assert all(s.start < s.end for s in steps)


@pytest.mark.parametrize("seed", range(6))
async def test_a_day_decomposes_into_contiguous_actions_covering_the_waking_day(seed: int):
    places = PlaceGraph(parse_scenario(SMALL_TOWN))
    gateway = ModelGateway(build_backend("fake"))
    agent = make_agent("Ann", "Ann's flat", gateway, wake="07:00", bedtime="22:30")
    scope = CallScope("Ann", seed)
    agent.state.plan = await plan_day(agent, places, gateway, scope, MORNING)
    plan = agent.state.plan
    _contiguous(plan.outline, plan.wake, plan.bedtime)
    _contiguous(plan.hours, plan.wake, plan.bedtime)
    assert 4 <= len(plan.outline) <= 8 and all(b.end - b.start <= timedelta(hours=1) for b in plan.hours)
    now = plan.wake
    while now < plan.bedtime:  # walk the day as the engine does: decompose each block when it starts
        if plan.action_at(now) is None:
            await plan_actions(agent, places, gateway, scope, now)
        step = plan.action_at(now)
        assert step is not None and step.place in places.place_names()
        now = step.end
    _contiguous(plan.actions, plan.wake, plan.bedtime)
    assert all(a.end - a.start <= timedelta(minutes=15) for a in plan.actions)


async def test_replanning_keeps_the_past_and_rewrites_the_future():
    places = PlaceGraph(parse_scenario(SMALL_TOWN))
    gateway = ModelGateway(build_backend("fake"))
    agent = make_agent("Ann", "Ann's flat", gateway)
    scope = CallScope("Ann", 1)
    agent.state.plan = plan = await plan_day(agent, places, gateway, scope, MORNING)
    for hour in (7, 8):
        await plan_actions(agent, places, gateway, scope, MORNING.replace(hour=hour))
    now = MORNING.replace(hour=8, minute=20)
    past_actions = [a for a in plan.actions if a.end <= now]
    past_hours = [h for h in plan.hours if h.end <= now]
    await replan(agent, places, gateway, CallScope("Ann", 2), now, "Bob asked for help.")
    assert plan.actions[: len(past_actions)] == past_actions and all(a.end <= now for a in plan.actions)
    assert plan.hours[: len(past_hours)] == past_hours
    _contiguous(plan.hours, plan.wake, plan.bedtime)
    assert any(h.start == now for h in plan.hours)


def test_model_durations_are_clamped_and_gaps_filled():
    block = PlanStep(start=MORNING, end=MORNING + timedelta(hours=1), description="bake", place="Cafe")
    proposed = [(90, block.model_copy(update={"description": "knead"})), (1, block.model_copy(update={"description": "rest"}))]
    actions = lay_out_actions(block, MORNING, proposed)
    _contiguous(actions, block.start, block.end)
    assert [a.description for a in actions[:2]] == ["knead", "rest"]
    assert [(a.end - a.start).seconds // 60 for a in actions[:2]] == [15, 5]
