"""Where things are and how long the walk is: the places tree, the route graph, and object states."""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import timedelta

import networkx as nx

from worlds.scenario import Scenario

#: The state every object starts in.
IDLE = "idle"
#: Words that say nothing about which place is meant ("the cafe", "Isabella's flat").
_FILLER = frozenset({"the", "a", "an", "at", "to", "in", "on", "of", "by", "my", "s"})
_US = timedelta(microseconds=1)


@functools.lru_cache(maxsize=8192)
def _tokens(text: str) -> tuple[str, ...]:
    """Lower-case words without accents or punctuation, so LLM spellings compare equal (cached: names recur)."""
    plain = "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))
    return tuple(re.findall(r"[^\W_]+", plain.casefold()))


def best_match(text: str, names: Iterable[str]) -> str | None:
    """The name `text` means: exact, then ignoring case and punctuation, then most shared words."""
    ordered = sorted(names)
    if text in ordered:
        return text
    said = _tokens(text)
    for name in ordered:
        if _tokens(name) == said:
            return name
    words = set(said) - _FILLER

    def score(name: str) -> tuple[int, int]:
        # Most shared words first; among equals, the name with fewest words the text did not mention.
        own = set(_tokens(name)) - _FILLER
        return len(own & words), -len(own - words)

    best = max(ordered, key=score, default=None)  # max keeps the first of equals: ties go by name order
    return best if best is not None and score(best)[0] > 0 else None


@dataclass(frozen=True)
class _Hub:
    """An area's centre in the route graph; its own type, so it never equals a place name."""

    area: str


class PlaceGraph:
    """The scenario's places as a tree (area > place > object) and a weighted graph of walking routes."""

    def __init__(self, scenario: Scenario) -> None:
        world = scenario.world
        self.tree = nx.DiGraph()
        self.routes = nx.Graph()
        for area, area_places in world.places.items():
            self.tree.add_node(area, kind="area")
            for place, objects in area_places.items():
                self.tree.add_node(place, kind="place", area=area)
                self.tree.add_edge(area, place)
                self.routes.add_node(place)
                for obj in objects:
                    node = f"{place}/{obj}"
                    self.tree.add_node(node, kind="object", place=place, name=obj, state=IDLE)
                    self.tree.add_edge(place, node)
        if world.routes:
            for route in world.routes:
                self._connect(route.a, route.b, timedelta(minutes=route.minutes))
        else:
            hubs = [_Hub(area) for area in world.places]
            for hub in hubs:
                for place in world.places[hub.area]:
                    self._connect(hub, place, world.walk)
            for i, hub in enumerate(hubs):
                for other in hubs[i + 1:]:
                    self._connect(hub, other, 2 * world.walk)

    def _connect(self, a: str | _Hub, b: str | _Hub, time: timedelta) -> None:
        # Weights are whole microseconds: exact sums, and Dijkstra cannot add timedeltas to its 0.
        weight = time // _US
        if not self.routes.has_edge(a, b) or weight < self.routes.edges[a, b]["us"]:
            self.routes.add_edge(a, b, us=weight)

    def place_names(self) -> list[str]:
        return [node for node, kind in self.tree.nodes(data="kind") if kind == "place"]

    def _path(self, origin: str, destination: str) -> list[str | _Hub]:
        return nx.shortest_path(self.routes, origin, destination, weight="us")

    def route(self, origin: str, destination: str) -> list[str]:
        """Places passed on the quickest way, both ends included, area centres left out."""
        return [node for node in self._path(origin, destination) if not isinstance(node, _Hub)]

    def travel_time(self, origin: str, destination: str) -> timedelta:
        return nx.shortest_path_length(self.routes, origin, destination, weight="us") * _US

    def hops(self, origin: str, destination: str) -> list[tuple[str, timedelta]]:
        """Each next place on the quickest way and the time from the one before (centres folded in)."""
        out: list[tuple[str, timedelta]] = []
        path = self._path(origin, destination)
        elapsed = 0
        for before, node in zip(path, path[1:]):
            elapsed += self.routes.edges[before, node]["us"]
            if not isinstance(node, _Hub):
                out.append((node, elapsed * _US))
                elapsed = 0
        return out

    def resolve_place(self, text: str, default: str) -> str:
        """The place free text (a model's answer) most likely means, or `default` if none fits."""
        return best_match(text, self.place_names()) or default

    def objects_at(self, place: str) -> dict[str, str]:
        """Each object at `place` and its current state."""
        return {self.tree.nodes[node]["name"]: self.tree.nodes[node]["state"] for node in self.tree.successors(place)}

    def resolve_object(self, place: str, text: str) -> str | None:
        """The object at `place` free text most likely means, or None if none fits."""
        return best_match(text, self.objects_at(place))

    def set_object_state(self, place: str, obj: str, state: str) -> None:
        """Change one object's state; an unknown place or object is a KeyError."""
        self.tree.nodes[f"{place}/{obj}"]["state"] = state

    def get_state(self) -> dict[str, dict[str, str]]:
        """Every object's state by place: the only part of the places that changes during a run."""
        return {place: states for place in self.place_names() if (states := self.objects_at(place))}

    def set_state(self, state: Mapping[str, Mapping[str, str]]) -> None:
        """Restore object states saved by `get_state`."""
        for place, states in state.items():
            for obj, value in states.items():
                self.set_object_state(place, obj, value)
