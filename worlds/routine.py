"""What an agent with nothing holding it does next: digest what ended, plan, react, then pick an activity."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from agents.agent import Agent, Outcome
from agents.cognition.converse import digest
from agents.cognition.plan import (
    plan_actions,
    plan_day,
    replan,
    summarize_day,
    waking_day,
)
from agents.cognition.react import react
from agents.context import Phase, TickContext
from agents.gateway import CallScope
from agents.plans import PlanStep
from worlds.activities.action import Action
from worlds.activities.base import Activity, ActivityEnv
from worlds.activities.conversation import Conversation
from worlds.activities.sleep import Sleep
from worlds.activities.travel import Travel
from worlds.events import PlanMade, Reacted, RelationshipUpdated

#: Activities are created without an id; the scheduler numbers them as it starts them, in a fixed order.
NEW = ""


@dataclass
class Intent:
    """An activity an agent wants to start; the engine applies intents in name order."""

    activity: Activity
    #: For a conversation: who to wait for instead if the partner was taken by an earlier intent.
    otherwise_wait_for: str | None = None

    def refused(self, env: ActivityEnv) -> None:
        """Someone else got there first; a wish to talk becomes waiting to talk, not nothing."""
        if self.otherwise_wait_for is not None:
            env.agents[self.activity.participants[0]].state.waiting_for = self.otherwise_wait_for


def _plan_event(ctx: TickContext, agent: Agent, level: str, steps: list[PlanStep]) -> PlanMade:
    return PlanMade(tick=ctx.tick, sim_time=ctx.now, agents=[agent.name], level=level, items=list(steps))


def _remember_plan(agent: Agent, now: datetime, steps: list[PlanStep], label: str) -> None:
    """Plans are memories too: one line per plan, so retrieval can find what the agent meant to do."""
    listing = "; ".join(f"{s.start:%H:%M} {s.description} at {s.place}" for s in steps[:8])
    agent.memory.remember("plan", f"{agent.name}'s {label}: {listing}", now)


async def _digest(agent: Agent, outcome: Outcome, ctx: TickContext, env: ActivityEnv, scope: CallScope) -> None:
    """A finished conversation or session becomes a chat memory and fresh relationship lines; the day is re-planned.

    Relationship lines are kept for the world agents in it; a session's free roles are only named.
    """
    if outcome.activity == "loop":
        agent.memory.remember("session", f"{agent.persona.first_name} {outcome.summary}", ctx.now,
                              source_event=outcome.source_event)
        agent.state.replan_reason = f"{agent.persona.first_name} just {outcome.summary}"
        return
    if outcome.activity not in ("conversation", "roleplay"):
        return
    named = outcome.others or sorted({who for who, _ in outcome.transcript if who != agent.name})
    kept = await digest(agent, named, outcome.transcript, env.gateway, scope)
    agent.memory.remember("chat", kept.summary.strip(), ctx.now, source_event=outcome.source_event)
    for other in outcome.others:
        agent.relationship(other).summary = kept.relationship.strip()
        scope.emit(RelationshipUpdated(tick=ctx.tick, sim_time=ctx.now, agents=[agent.name], other=other,
                                       summary=kept.relationship.strip()))
    what = "talked with" if outcome.activity == "conversation" else "held a role-play session with"
    agent.state.replan_reason = (f"{agent.persona.first_name} just {what} {' and '.join(named)}: "
                                 f"{kept.summary.strip()}")


async def _start_day(agent: Agent, ctx: TickContext, env: ActivityEnv, scope: CallScope) -> None:
    if agent.state.plan is not None:
        agent.state.day_summary = await summarize_day(agent, env.gateway, scope, ctx.now)
        if agent.state.day_summary:
            agent.memory.remember("summary", agent.state.day_summary, ctx.now)
    plan = await plan_day(agent, env.world.places, env.gateway, scope, ctx.now)
    agent.state.plan = plan
    agent.state.replan_reason = ""
    scope.emit(_plan_event(ctx, agent, "day", plan.outline))
    scope.emit(_plan_event(ctx, agent, "hours", plan.hours))
    _remember_plan(agent, ctx.now, plan.outline, f"plan for {ctx.now:%A}")


def _can_talk(agent: Agent, other: Agent | None, now: datetime, env: ActivityEnv) -> bool:
    """The other is here, awake, not already talking, and the pair has not talked within the cooldown."""
    if other is None or other.asleep or other.state.activity_kind == "conversation":
        return False
    last = env.world.social.last_talk(agent.name, other.name)
    cooled = last is None or now - last >= env.scenario.conversation.cooldown
    return other.state.place == agent.state.place and cooled


async def _reaction(agent: Agent, ctx: TickContext, env: ActivityEnv, scope: CallScope) -> Intent | None:
    """At most one reaction call a tick, about the first person noticed who could be talked to.

    Someone arriving, or seen doing something, is weighed at most once per cooldown.

    `wait` means "once I finish what I am doing": the agent remembers whom it waits for, and talks
    to them when it is next free if they are still around, with no second call.
    """
    inbox, agent.state.inbox = agent.state.inbox, []
    cooldown = env.scenario.conversation.cooldown
    for seen in inbox:
        other = env.agents.get(seen.other or "")
        if not _can_talk(agent, other, ctx.now, env):
            continue
        weighed = agent.relationship(other.name).last_reaction
        if weighed is not None and ctx.now - weighed < cooldown:
            continue
        agent.relationship(other.name).last_reaction = ctx.now
        decision = await react(agent, other.name, seen.text, env.gateway, scope, ctx.now)
        scope.emit(Reacted(tick=ctx.tick, sim_time=ctx.now, agents=[agent.name], other=other.name,
                           decision=decision.decision, reason=decision.reason))
        if decision.decision == "talk":
            return Intent(Conversation(NEW, [agent.name, other.name], agent.state.place), other.name)
        if decision.decision == "wait":
            agent.state.waiting_for = other.name
        return None
    return None


def _waited_for(agent: Agent, ctx: TickContext, env: ActivityEnv) -> Intent | None:
    """Now free: talk to whoever the agent decided to wait for, if that is still possible."""
    other, agent.state.waiting_for = env.agents.get(agent.state.waiting_for or ""), None
    if _can_talk(agent, other, ctx.now, env):
        return Intent(Conversation(NEW, [agent.name, other.name], agent.state.place), other.name)
    return None


async def decide(agent: Agent, ctx: TickContext, env: ActivityEnv) -> Intent | None:
    """The agent's thinking for this tick; makes no model call when nothing changed for it."""
    scope = ctx.scope(Phase.DECIDE, agent.name, agent.name)
    outcomes, agent.state.outcomes = agent.state.outcomes, []
    for outcome in outcomes:
        if outcome.activity == "sleep":
            await _start_day(agent, ctx, env, scope)
        else:
            await _digest(agent, outcome, ctx, env, scope)
    if not agent.busy and agent.state.waiting_for and (intent := _waited_for(agent, ctx, env)) is not None:
        return intent
    if agent.state.inbox:
        intent = await _reaction(agent, ctx, env, scope)
        if intent is not None:
            return intent
    if agent.busy:
        return None
    wake, bed = waking_day(agent, ctx.now)
    if agent.state.plan is None and wake <= ctx.now < bed:
        await _start_day(agent, ctx, env, scope)
    plan = agent.state.plan
    if plan is None or ctx.now >= plan.bedtime or not wake <= ctx.now < bed:
        return _bed(agent, ctx, env)
    if agent.state.replan_reason:
        revised = await replan(agent, env.world.places, env.gateway, scope, ctx.now, agent.state.replan_reason)
        agent.state.replan_reason = ""
        scope.emit(_plan_event(ctx, agent, "replan", revised))
        _remember_plan(agent, ctx.now, revised, "revised plan")
    step = plan.action_at(ctx.now)
    if step is None:
        steps = await plan_actions(agent, env.world.places, env.gateway, scope, ctx.now)
        scope.emit(_plan_event(ctx, agent, "actions", steps))
        step = plan.action_at(ctx.now)
        if step is None:
            return None
    return _go_or_do(agent, step, ctx, env)


def _go_or_do(agent: Agent, step: PlanStep, ctx: TickContext, env: ActivityEnv) -> Intent:
    """Walk to the step's place first if the agent is elsewhere; else do it."""
    if step.place != agent.state.place:
        return _travel(agent, step.place, ctx, env)
    return Intent(Action(NEW, agent.name, step))


def _travel(agent: Agent, destination: str, ctx: TickContext, env: ActivityEnv) -> Intent:
    hops, moment = [], ctx.now
    for place, duration in env.world.places.hops(agent.state.place, destination):
        moment += duration
        hops.append((place, moment))
    return Intent(Travel(NEW, agent.name, agent.state.place, destination, hops))


def _bed(agent: Agent, ctx: TickContext, env: ActivityEnv) -> Intent:
    """Home first, then sleep until the next waking time."""
    home = agent.persona.home
    if agent.state.place != home:
        return _travel(agent, home, ctx, env)
    wake, _ = waking_day(agent, ctx.now)
    if wake <= ctx.now:
        wake += timedelta(days=1)
    return Intent(Sleep(NEW, agent.name, home, wake))
