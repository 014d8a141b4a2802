"""Planning (Generative Agents §4.3): day outline on waking, hour blocks, then 5-15 minute actions per block."""

from __future__ import annotations

from datetime import datetime, timedelta

from pydantic import BaseModel, Field

from agents.agent import Agent
from agents.cognition.places import Map
from agents.gateway import CallScope, ModelGateway
from agents.plans import DayPlan, PlanStep, lay_out_actions, lay_out_hours
from agents.prompting import Section, assemble, bullet_list

SYSTEM = "You plan the day of a character in a small-town life simulation. Keep every entry short and concrete."
#: How many memories inform a day plan or a re-plan.
PLAN_MEMORIES = 5
#: Fewer valid hours than this (or than the entries given) and the entries are spread evenly instead.
MIN_OUTLINE = 4


# Model-facing schemas carry no numeric bounds: small models break them, and code can clamp what a
# retry would cost a whole call to fix.


class OutlineItem(BaseModel):
    hour: int = Field(description="0-23")
    activity: str = Field(min_length=1, max_length=120)
    place: str = Field(min_length=1, max_length=80)


class DayOutline(BaseModel):
    items: list[OutlineItem] = Field(min_length=4, max_length=8)


class RestOfDay(BaseModel):
    items: list[OutlineItem] = Field(min_length=1, max_length=6)


class ActionItem(BaseModel):
    """One action; it happens at its hour block's place, so a small model cannot scatter an hour over town."""

    minutes: int = Field(description="5-15")
    action: str = Field(min_length=1, max_length=120)
    object: str = Field(default="", max_length=60, description="Object used, or empty.")
    object_state: str = Field(default="", max_length=60, description="What the object is doing meanwhile, or empty.")


class ActionList(BaseModel):
    actions: list[ActionItem] = Field(min_length=1, max_length=6)


def waking_day(agent: Agent, now: datetime) -> tuple[datetime, datetime]:
    """Today's wake and bed moments for the agent (bedtime after midnight belongs to this day)."""
    persona = agent.persona
    day = now.date()
    if persona.bedtime <= persona.wake and now.time() < persona.bedtime:
        day -= timedelta(days=1)  # past midnight, before a late bedtime: still yesterday's waking day
    wake = datetime.combine(day, persona.wake, tzinfo=now.tzinfo)
    bed = datetime.combine(day, persona.bedtime, tzinfo=now.tzinfo)
    if bed <= wake:
        bed += timedelta(days=1)
    return wake, bed


def _places_section(world: Map, agent: Agent) -> Section:
    names = world.places_to_list(agent.persona.home, sorted(agent.state.relationships))
    return Section(label="Places in town", text=", ".join(names) + f". Home is {agent.persona.home}.")


async def _context(agent: Agent, now: datetime, scope: CallScope, cue: str) -> list[Section]:
    """Persona, yesterday, and the memories most relevant to planning."""
    found = await agent.memory.retrieve(cue, now, k=PLAN_MEMORIES, trace=scope)
    return [
        agent.persona_section(),
        Section(label="Yesterday", text=agent.state.day_summary),
        Section(label="On your mind", text=bullet_list([m.text for m in found])),
    ]


async def plan_day(agent: Agent, world: Map, gateway: ModelGateway, scope: CallScope, now: datetime) -> DayPlan:
    """Outline the waking day in one call; hour blocks follow from the outline's hours, in code."""
    wake, bed = waking_day(agent, now)
    start = max(now, wake)
    first = agent.persona.first_name
    sections = [*await _context(agent, now, scope, f"{first}'s plans for today"), _places_section(world, agent)]
    home = agent.persona.home
    fallback = DayOutline(items=[
        OutlineItem(hour=wake.hour, activity="get ready for the day", place=home),
        OutlineItem(hour=(wake.hour + 2) % 24, activity="go about the usual work", place=home),
        OutlineItem(hour=(wake.hour + 6) % 24, activity="run errands in town", place=home),
        OutlineItem(hour=(bed.hour + 23) % 24, activity="wind down at home", place=home),
    ])
    outline = await gateway.structured(
        assemble(SYSTEM, sections,
                 f"{first} is up. Write {first}'s plan for {now:%A %B %d} in 4 to 8 entries, from {start:%H:%M} "
                 f"until bed at {bed:%H:%M}. Each entry: the hour it starts (0-23), what {first} does, and at "
                 "which of the places in town."),
        DayOutline, purpose="plan_day", default=fallback, temperature=0.7, max_tokens=400, scope=scope,
    )
    steps = _outline_steps(outline.items, world, home, start, bed)
    hours = lay_out_hours(start, bed, steps)
    return DayPlan(day=now.date(), wake=wake, bedtime=bed, outline=steps, hours=hours)


def _outline_steps(outline: list[OutlineItem], world: Map, home: str, start: datetime, bed: datetime) -> list[PlanStep]:
    """Outline entries in hour order, made contiguous from `start` to `bed`.

    The model's hours are kept when they fall inside the waking day and differ; when too few do
    (small models invent hours), the entries are spread evenly over the day in the order given.
    """
    items = sorted(outline, key=lambda i: i.hour)
    moments: dict[datetime, OutlineItem] = {}
    for item in items:
        if not 0 <= item.hour <= 23:
            continue
        at = max(start, start.replace(hour=item.hour, minute=0)) if item.hour == start.hour else \
            start.replace(hour=item.hour, minute=0)
        if start <= at < bed:
            moments.setdefault(at, item)
    if len(moments) < min(len(items), MIN_OUTLINE):
        span = (bed - start) / len(outline)
        moments = {start + i * span: item for i, item in enumerate(outline)}
    ordered = sorted(moments.items())
    ordered[0] = (start, ordered[0][1])
    steps = []
    for i, (at, item) in enumerate(ordered):
        end = ordered[i + 1][0] if i + 1 < len(ordered) else bed
        steps.append(PlanStep(start=at, end=end, description=item.activity.strip(),
                              place=world.resolve_place(item.place, home)))
    return steps


async def plan_actions(agent: Agent, world: Map, gateway: ModelGateway, scope: CallScope, now: datetime) -> list[PlanStep]:
    """Decompose the current hour block into 5-15 minute actions at its place, objects included, in one call."""
    plan = agent.state.plan
    assert plan is not None, "plan_actions needs a day plan"
    block = plan.block_at(now)
    if block is None:
        return []
    first = agent.persona.first_name
    objects = world.objects_at(block.place)
    sections = [
        agent.persona_section(),
        Section(label="This block", text=f"{block.start:%H:%M}-{block.end:%H:%M}: {block.description} at {block.place}"),
        Section(label=f"Things at {block.place}", text=", ".join(objects)),
    ]
    minutes = int((block.end - now).total_seconds() // 60)
    fallback = ActionList(actions=[ActionItem(minutes=15, action=block.description)])
    proposed = await gateway.structured(
        assemble(SYSTEM, sections,
                 f"Split the next {minutes} minutes at {block.place} into 3 to 6 actions of 5 to 15 minutes each. "
                 f"For each: minutes, what {first} does, one of the things there that {first} uses (or empty), "
                 "and what that thing is doing meanwhile (or empty)."),
        ActionList, purpose="plan_actions", default=fallback, temperature=0.6, max_tokens=360, scope=scope,
    )
    steps = []
    for item in proposed.actions:
        obj = world.resolve_object(block.place, item.object) if item.object.strip() else None
        state = item.object_state.strip() or ("in use" if obj else None)
        steps.append((item.minutes, PlanStep(start=now, end=now, description=item.action.strip(), place=block.place,
                                             object=obj, object_state=state if obj else None)))
    actions = lay_out_actions(block, now, steps)
    plan.actions = [a for a in plan.actions if a.end <= now] + actions
    return actions


async def replan(agent: Agent, world: Map, gateway: ModelGateway, scope: CallScope, now: datetime, why: str) -> list[PlanStep]:
    """Rewrite the rest of the day from now (after a reaction or a conversation); the past stays as it was."""
    plan = agent.state.plan
    assert plan is not None, "replan needs a day plan"
    if now >= plan.bedtime:
        return []
    first = agent.persona.first_name
    home = agent.persona.home
    ahead = [b for b in plan.outline if b.end > now]
    remaining = bullet_list([f"{max(b.start, now):%H:%M} {b.description} ({b.place})" for b in ahead])
    sections = [*await _context(agent, now, scope, why), Section(label="Plan for the rest of the day", text=remaining),
                _places_section(world, agent)]
    keep = RestOfDay(items=[OutlineItem(hour=max(b.start, now).hour, activity=b.description, place=b.place)
                            for b in ahead][:6] or [OutlineItem(hour=now.hour, activity="free time", place=home)])
    revised = await gateway.structured(
        assemble(SYSTEM, sections,
                 f"It is {now:%H:%M}. {why} Revise the rest of {first}'s day, until bed at {plan.bedtime:%H:%M}, in "
                 "1 to 6 entries: the hour each starts (0-23), what to do, and where. Keep what still makes sense."),
        RestOfDay, purpose="replan", default=keep, temperature=0.5, max_tokens=300, scope=scope,
    )
    steps = _outline_steps(revised.items, world, home, now, plan.bedtime)
    plan.rewrite_future(now, steps)
    return steps


async def summarize_day(agent: Agent, gateway: ModelGateway, scope: CallScope, now: datetime) -> str:
    """On waking, a few sentences about yesterday from the latest memories (empty on the first day)."""
    recent = [r.text for r in agent.memory.recent(30) if r.kind != "summary"]
    if not recent:
        return ""
    first = agent.persona.first_name
    text = await gateway.complete(
        assemble(SYSTEM, [agent.persona_section(), Section(label="What happened", text=bullet_list(recent))],
                 f"In two sentences, sum up {first}'s day for {first}'s diary."),
        purpose="day_summary", temperature=0.4, max_tokens=90, fallback="", scope=scope,
    )
    return text.strip()
