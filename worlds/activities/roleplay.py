"""A CAMEL role-play session on the clock: it holds its world agents while messages take simulated time."""

from __future__ import annotations

from agents.agent import Outcome
from agents.roleplay.session import RoleplaySession
from agents.roleplay.setup import CriticSetup, RoleCard, RoleplayOptions, RoleplaySetup
from worlds.activities.base import register
from worlds.activities.hosted import HostedSession
from worlds.scenario import RoleplaySession as RoleplaySpec
from worlds.scenario import Scenario, SessionRole


def _card(side: SessionRole, scenario: Scenario) -> RoleCard:
    persona = next((p for p in scenario.agents if p.name == side.agent), None)
    return RoleCard(role=side.role or side.agent or "", agent=side.agent,
                    persona=persona.describe() if persona else "")


def setup_from_scenario(session_id: str, spec: RoleplaySpec, scenario: Scenario) -> RoleplaySetup:
    """The session's self-contained inputs, with world agents' personas filled in (memories come at start)."""
    critic = None
    if spec.critic is not None:
        persona = next((p.describe() for p in scenario.agents if p.name == spec.critic.agent), "")
        critic = CriticSetup(**spec.critic.model_dump(), persona=persona)
    options = {name: getattr(spec, name) for name in RoleplayOptions.model_fields}
    return RoleplaySetup(session_id=session_id, seed=scenario.seed, assistant=_card(spec.assistant, scenario),
                         user=_card(spec.user, scenario), task=spec.task, critic=critic, **options)


@register
class Roleplay(HostedSession):
    kind = "roleplay"
    machine = RoleplaySession

    def __init__(self, activity_id: str, setup: RoleplaySetup, minutes_per_message: int) -> None:
        players = [c.agent for c in (setup.assistant, setup.user) if c.agent]
        if setup.critic is not None and setup.critic.agent and setup.critic.agent not in players:
            players.append(setup.critic.agent)
        super().__init__(activity_id, players, RoleplaySession(setup), minutes_per_message)

    def cards(self) -> list[RoleCard]:
        return [self.session.setup.assistant, self.session.setup.user]

    def status(self, agent: str) -> str:
        setup = self.session.setup
        card = setup.assistant if setup.assistant.agent == agent else setup.user if setup.user.agent == agent else None
        if card is None:
            return f"judging a role-play session: {setup.task[:60]}"
        side = "assistant" if card is setup.assistant else "user"
        role = f"the {side}" if card.role == agent else f"{card.role} ({side})"
        return f"in a role-play session as {role}: {setup.task[:60]}"

    def outcome(self, agent: str) -> Outcome | None:
        turns = self.session.progress.turns
        if not turns:
            return None
        others = [p for p in self.participants if p != agent]
        return Outcome(activity=self.kind, activity_id=self.id, place=self.place, others=others,
                       transcript=[(t.speaker, t.content) for t in turns])
