"""Who an agent is: the fixed facts a scenario gives it."""

from __future__ import annotations

from datetime import time
from typing import Annotated

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field


def _clock_time(value: object) -> object:
    """YAML 1.1 reads an unquoted 07:00 as the sexagesimal number 420 (minutes); take both spellings."""
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 24 * 60:
        return time(value // 60, value % 60)
    return value


ClockTime = Annotated[time, BeforeValidator(_clock_time)]


class Persona(BaseModel):
    """An agent's identity as written in a scenario file."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, pattern=r"\S")
    age: int | None = Field(default=None, ge=0, le=150)
    traits: str = ""
    persona: str = ""
    home: str = Field(min_length=1, pattern=r"\S")
    memories: list[str] = Field(default_factory=list)
    wake: ClockTime = Field(default=time(7, 0), description="When the agent gets up (HH:MM).")
    bedtime: ClockTime = Field(default=time(22, 30), description="When the agent goes to sleep (HH:MM).")

    @property
    def first_name(self) -> str:
        return self.name.split()[0]

    def describe(self) -> str:
        """The one rendering of who the agent is, used by every prompt and by harvested system prompts."""
        age = f", {self.age} years old" if self.age is not None else ""
        traits = f" Personality: {self.traits}." if self.traits else ""
        return f"{self.name}{age}.{traits} {self.persona}".strip()
