"""Task brainstorming for a pair of roles, as CAMEL's AI Society data was made: k tasks per pair."""

from __future__ import annotations

from pydantic import BaseModel, Field

from agents.gateway import CallScope, ModelGateway
from agents.prompting import Section, assemble

SYSTEM = "You invent realistic, varied work that one professional could do for another in a single conversation."


class TaskIdeas(BaseModel):
    tasks: list[str] = Field(min_length=1, max_length=100)


async def brainstorm(assistant_role: str, user_role: str, count: int, gateway: ModelGateway,
                     scope: CallScope) -> list[str]:
    """`count` distinct one-sentence tasks; raises ModelUnavailableError when the model gives none usable."""
    ideas = await gateway.structured(
        assemble(SYSTEM, [Section(label="Roles", text=f"assistant: {assistant_role}\nuser: {user_role}")],
                 f"List {count} different tasks that a {assistant_role} could help a {user_role} with: each one "
                 f"sentence, concrete, drawing on what a {assistant_role} knows and mattering to a {user_role}. "
                 f"Vary the kind of work."),
        TaskIdeas, purpose="task_brainstorm", temperature=1.0, max_tokens=60 * count + 40, scope=scope,
    )
    seen: list[str] = []
    for task in (t.strip() for t in ideas.tasks):
        if task and task.lower() not in {s.lower() for s in seen}:
            seen.append(task)
    return seen[:count]
