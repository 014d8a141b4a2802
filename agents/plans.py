"""A day plan at three levels (outline, hour blocks, 5-15 minute actions), always contiguous in time."""

from __future__ import annotations

from datetime import date, datetime, timedelta

from pydantic import BaseModel, Field

HOUR = timedelta(hours=1)


class PlanStep(BaseModel):
    """One stretch of the day: what, where, and (for actions) which object it uses and leaves how."""

    start: datetime
    end: datetime
    description: str
    place: str
    object: str | None = None
    object_state: str | None = None

    def covers(self, moment: datetime) -> bool:
        return self.start <= moment < self.end


class DayPlan(BaseModel):
    """Generative Agents §4.3: a broad outline, hour blocks covering the waking day, and the actions decided so far."""

    day: date
    wake: datetime
    bedtime: datetime
    outline: list[PlanStep] = Field(default_factory=list)
    hours: list[PlanStep] = Field(default_factory=list)
    actions: list[PlanStep] = Field(default_factory=list)

    def block_at(self, moment: datetime) -> PlanStep | None:
        return next((b for b in self.hours if b.covers(moment)), None)

    def action_at(self, moment: datetime) -> PlanStep | None:
        return next((a for a in self.actions if a.covers(moment)), None)

    def rewrite_future(self, now: datetime, outline: list[PlanStep]) -> None:
        """Keep everything before `now`, cut what spans it, and plan from `outline` (starting at `now`) on."""
        self.outline = _cut(self.outline, now) + outline
        self.hours = _cut(self.hours, now) + lay_out_hours(now, self.bedtime, outline)
        self.actions = _cut(self.actions, now)


def _cut(steps: list[PlanStep], now: datetime) -> list[PlanStep]:
    """Steps that began before `now`, the one spanning it shortened to end there."""
    kept = [s for s in steps if s.start < now]
    return [s.model_copy(update={"end": min(s.end, now)}) for s in kept]


def hour_starts(start: datetime, end: datetime) -> list[datetime]:
    """Block boundaries from `start` to `end`: the first block runs to the next full hour."""
    starts = [start]
    nxt = start.replace(minute=0, second=0, microsecond=0) + HOUR
    while nxt < end:
        starts.append(nxt)
        nxt += HOUR
    return starts


def lay_out_hours(start: datetime, end: datetime, outline: list[PlanStep]) -> list[PlanStep]:
    """Contiguous hour blocks from `start` to `end`, each doing what the outline entry covering it says.

    The outline must cover [start, end) (as `_outline_steps` guarantees).
    """
    starts = hour_starts(start, end)
    blocks = []
    for i, begin in enumerate(starts):
        finish = starts[i + 1] if i + 1 < len(starts) else end
        covering = next(o for o in outline if o.start <= begin < o.end)
        blocks.append(PlanStep(start=begin, end=finish, description=covering.description, place=covering.place))
    return blocks


def lay_out_actions(block: PlanStep, start: datetime, proposed: list[tuple[int, PlanStep]],
                    shortest: int = 5, longest: int = 15) -> list[PlanStep]:
    """Actions that tile [start, block.end) exactly: model durations clamped to 5-15 minutes, gaps filled."""
    actions: list[PlanStep] = []
    cursor = start
    for minutes, step in proposed:
        if cursor >= block.end:
            break
        span = timedelta(minutes=min(longest, max(shortest, minutes)))
        end = min(block.end, cursor + span)
        actions.append(step.model_copy(update={"start": cursor, "end": end}))
        cursor = end
    while cursor < block.end:
        end = min(block.end, cursor + timedelta(minutes=longest))
        actions.append(PlanStep(start=cursor, end=end, description=block.description, place=block.place))
        cursor = end
    return actions
