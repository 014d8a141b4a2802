"""Where things are and how long the walk is: the places tree, the route graph, and object states."""

from __future__ import annotations

import functools
import re
import unicodedata
from collections import Counter
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


class NameIndex:
    """Names looked up by what free text says: exact, then ignoring case and punctuation, then most shared words.

    Words index the names, so a look-up scores only the names that share a word with the text, not all of them.
    """

    def __init__(self, names: Iterable[str]) -> None:
        ordered = sorted(set(names))
        self.exact = set(ordered)
        self.spelled: dict[tuple[str, ...], str] = {}
        self.by_word: dict[str, list[str]] = {}
        self.word_count: dict[str, int] = {}
        for name in ordered:  # in name order: the first of equals wins
            self.spelled.setdefault(_tokens(name), name)
            own = set(_tokens(name)) - _FILLER
            self.word_count[name] = len(own)
            for word in own:
                self.by_word.setdefault(word, []).append(name)

    def match(self, text: str) -> str | None:
        if text in self.exact:
            return text
        said = _tokens(text)
        if said in self.spelled:
            return self.spelled[said]
        shared: Counter[str] = Counter()
        for word in set(said) - _FILLER:
            shared.update(self.by_word.get(word, ()))
        # Most shared words first; among equals, the fewest words the text did not mention, then name order.
        return min(shared, key=lambda n: (-shared[n], self.word_count[n] - shared[n], n), default=None)


def best_match(text: str, names: Iterable[str]) -> str | None:
    """The name `text` means, or None when it shares no word with any."""
    return NameIndex(names).match(text)


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
        self.names = tuple(node for node, kind in self.tree.nodes(data="kind") if kind == "place")
        self.place_index = NameIndex(self.names)
        self.given_routes = bool(world.routes)
        #: Routes searched so far, per (origin, destination): a scenario's own routes are searched once each.
        self.searched: dict[tuple[str, str], list[str | _Hub]] = {}
        self.homes = {persona.name: persona.home for persona in scenario.agents}
        self.private = frozenset(self.homes.values())
        self.public = [place for place in self.names if place not in self.private]
        self.order = {place: i for i, place in enumerate(self.names)}
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
        return list(self.names)

    def places_to_list(self, home: str, known: list[str]) -> list[str]:
        """The places a planning prompt names: those that are nobody's home, the agent's own and those of people it
        knows; strangers' homes are no place to plan a visit to, and the prompt does not grow with the population."""
        homes = {self.homes[name] for name in known if name in self.homes} | {home}
        return sorted(self.public + [place for place in homes if place in self.private], key=self.order.__getitem__)

    def _path(self, origin: str, destination: str) -> list[str | _Hub]:
        """Without scenario routes every walk is place, centre(s), place: no search over a town of any size."""
        if self.given_routes or origin == destination:
            if (origin, destination) not in self.searched:
                self.searched[origin, destination] = nx.shortest_path(self.routes, origin, destination, weight="us")
            return self.searched[origin, destination]
        here, there = _Hub(self.tree.nodes[origin]["area"]), _Hub(self.tree.nodes[destination]["area"])
        return [origin, here, destination] if here == there else [origin, here, there, destination]

    def route(self, origin: str, destination: str) -> list[str]:
        """Places passed on the quickest way, both ends included, area centres left out."""
        return [node for node in self._path(origin, destination) if not isinstance(node, _Hub)]

    def travel_time(self, origin: str, destination: str) -> timedelta:
        path = self._path(origin, destination)
        return sum(self.routes.edges[a, b]["us"] for a, b in zip(path, path[1:])) * _US

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
        return self.place_index.match(text) or default

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
