"""A world scenario's sessions (role-plays and Self-* loops) as appointments on the scheduler's agenda."""

from __future__ import annotations

from typing import Any

from agents.loops import LOOPS, Loop
from agents.loops.instruct import shipped_seeds
from agents.roleplay.setup import RoleCard
from worlds.activities.loop import LoopActivity
from worlds.activities.roleplay import Roleplay, setup_from_scenario
from worlds.scenario import RoleplaySession as RoleplaySpec
from worlds.scenario import Scenario
from worlds.scheduler import Appointment


def loop_from_spec(session_id: str, spec: Any, seed: int, persona: str = "", task: str | None = None) -> Loop:
    """The loop a scenario entry describes (a batch gives each line's `task`): its options, its actor."""
    cls = LOOPS[spec.type]
    options = {name: getattr(spec, name) for name in cls.setup_type.model_fields if hasattr(spec, name)
               and name not in ("session_id", "seed", "actor", "task")}
    if spec.type == "self_instruct" and not options.get("seeds"):
        options["seeds"] = shipped_seeds()
    actor = RoleCard(role=getattr(spec, "role", None) or getattr(spec, "agent", None) or cls.actor_role,
                     agent=getattr(spec, "agent", None), persona=persona)
    task = task if task is not None else getattr(spec, "task", None) or cls.setup_type.model_fields["task"].default
    return cls(cls.setup_type(session_id=session_id, seed=seed, task=task, actor=actor, **options))


def session_appointments(scenario: Scenario) -> list[Appointment]:
    """Every session of the scenario as an appointment, numbered in file order (`session-1`, ...)."""
    booked = []
    personas = {p.name: p.describe() for p in scenario.agents}
    for number, spec in enumerate(scenario.sessions, 1):
        session_id = f"session-{number}"
        if isinstance(spec, RoleplaySpec):
            activity = Roleplay(session_id, setup_from_scenario(session_id, spec, scenario), spec.minutes_per_message)
            meeting = [spec.assistant.agent, spec.user.agent] if spec.at == "meeting" else []
        else:
            loop = loop_from_spec(session_id, spec, scenario.seed, personas.get(spec.agent or "", ""))
            activity, meeting = LoopActivity(session_id, loop, spec.minutes_per_message), []
        at = scenario.clock.start if spec.at in ("start", "meeting") else spec.at
        booked.append(Appointment(at=at, activity=activity.get_state(), order=number, meeting=meeting))
    return booked
