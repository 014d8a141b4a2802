"""The world as graphs: the places tree (area > place > object) and who knows whom."""

from __future__ import annotations

import networkx as nx

from worlds.scenario import Scenario


class World:
    """Places and relationships from a scenario, as networkx graphs that later issues can query."""

    def __init__(self, scenario: Scenario) -> None:
        self.places = nx.DiGraph()
        for area, area_places in scenario.world.places.items():
            self.places.add_node(area, kind="area")
            for place, objects in area_places.items():
                self.places.add_node(place, kind="place", area=area)
                self.places.add_edge(area, place)
                for obj in objects:
                    node = f"{place}/{obj}"
                    self.places.add_node(node, kind="object", place=place, name=obj)
                    self.places.add_edge(place, node)
        self.homes = {agent.name: agent.home for agent in scenario.agents}
        self.social = nx.Graph()
        self.social.add_nodes_from(self.homes)
        for rel in scenario.relationships:
            self.social.add_edge(rel.a, rel.b, label=rel.label)

    def place_names(self) -> list[str]:
        return [n for n, kind in self.places.nodes(data="kind") if kind == "place"]

    def public_places(self) -> list[str]:
        """Places that are nobody's home: where strangers can meet."""
        homes = set(self.homes.values())
        return [p for p in self.place_names() if p not in homes]

    def relationship(self, a: str, b: str) -> str | None:
        data = self.social.get_edge_data(a, b)
        return data["label"] if data else None
