"""The whole world an engine steps: places, who knows whom, and where everyone lives."""

from __future__ import annotations

from typing import Any

from worlds.places import PlaceGraph
from worlds.scenario import Scenario
from worlds.social import SocialGraph


class World:
    """A scenario's places and social graph, saved and restored together as one JSON-able state."""

    def __init__(self, scenario: Scenario) -> None:
        self.places = PlaceGraph(scenario)
        self.social = SocialGraph(scenario)

    def get_state(self) -> dict[str, Any]:
        return {"places": self.places.get_state(), "social": self.social.get_state()}

    def set_state(self, state: dict[str, Any]) -> None:
        self.places.set_state(state["places"])
        self.social.set_state(state["social"])
