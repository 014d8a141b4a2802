"""Simulated time: a start, a fixed step, a stop, and the tick numbers in between."""

from __future__ import annotations

import math
from datetime import datetime

from pydantic import BaseModel, ConfigDict

from worlds.timeparse import Duration


class Clock(BaseModel):
    """The scenario's `clock` block; maps tick numbers to simulated moments (tick 0 is `start`)."""

    model_config = ConfigDict(extra="forbid")

    start: datetime
    step: Duration
    stop: datetime

    def time_of(self, tick: int) -> datetime:
        return self.start + tick * self.step

    def ticks_until(self, until: datetime) -> int:
        """How many ticks begin before `until` (never past `stop`)."""
        end = min(until, self.stop)
        return max(0, math.ceil((end - self.start) / self.step))
