"""Who an agent is: the fixed facts a scenario gives it."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class Persona(BaseModel):
    """An agent's identity as written in a scenario file."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1)
    age: int | None = Field(default=None, ge=0, le=150)
    traits: str = ""
    persona: str = ""
    home: str = Field(min_length=1)
    memories: list[str] = Field(default_factory=list)

    def describe(self) -> str:
        """A second-person sketch used at the top of the agent's prompts."""
        age = f", {self.age} years old" if self.age is not None else ""
        traits = f" Your personality: {self.traits}." if self.traits else ""
        return f"You are {self.name}{age}.{traits} {self.persona}".strip()
