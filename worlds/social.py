"""Who knows whom: scenario relationships plus what conversations add, exportable as GraphML."""

from __future__ import annotations

from datetime import datetime
from itertools import combinations
from pathlib import Path
from typing import Any

import networkx as nx

from worlds.events import ConversationEnded, RelationshipUpdated
from worlds.runfolder import RunFolder
from worlds.scenario import Scenario

#: Edge attribute holding what `owner` thinks of the other agent; one per direction, GraphML-safe text.
SUMMARY_PREFIX = "summary_"


class SocialGraph:
    """Agents as nodes; an edge per pair with a relationship or a talk.

    Edge attributes, all strings or ints so GraphML keeps them: `label` (the scenario's relationship),
    `talks` (conversations so far), `last_talk` (ISO time the latest ended) and `summary_<owner>`
    (the owner's latest summary of the other, e.g. `summary_Ann` on the Ann–Bob edge).
    """

    def __init__(self, scenario: Scenario) -> None:
        self.graph = nx.Graph()
        self.graph.add_nodes_from(agent.name for agent in scenario.agents)
        for rel in scenario.relationships:
            self.graph.add_edge(rel.a, rel.b, label=rel.label)

    def _edge(self, a: str, b: str) -> dict[str, Any]:
        """The attributes of the a–b edge, created empty if the two had no tie yet."""
        if not self.graph.has_edge(a, b):
            self.graph.add_edge(a, b)
        return self.graph.edges[a, b]

    def relationship(self, a: str, b: str) -> str | None:
        """The scenario's label for the pair, if it gave one."""
        return (self.graph.get_edge_data(a, b) or {}).get("label")

    def record_conversation(self, a: str, b: str, when: datetime) -> None:
        edge = self._edge(a, b)
        edge["talks"] = edge.get("talks", 0) + 1
        edge["last_talk"] = when.isoformat()

    def talks(self, a: str, b: str) -> int:
        return (self.graph.get_edge_data(a, b) or {}).get("talks", 0)

    def last_talk(self, a: str, b: str) -> datetime | None:
        moment = (self.graph.get_edge_data(a, b) or {}).get("last_talk")
        return datetime.fromisoformat(moment) if moment else None

    def set_summary(self, owner: str, other: str, summary: str) -> None:
        """Record how `owner` now sees `other` (the other direction is kept apart)."""
        self._edge(owner, other)[SUMMARY_PREFIX + owner] = summary

    def summary(self, owner: str, other: str) -> str | None:
        return (self.graph.get_edge_data(owner, other) or {}).get(SUMMARY_PREFIX + owner)

    def get_state(self) -> dict[str, list]:
        """Agents and every edge with its attributes, as plain JSON data."""
        return {
            "agents": list(self.graph.nodes),
            "edges": sorted(({"a": min(a, b), "b": max(a, b), "data": dict(sorted(data.items()))}
                             for a, b, data in self.graph.edges(data=True)), key=lambda e: (e["a"], e["b"])),
        }

    def set_state(self, state: dict[str, list]) -> None:
        """Replace the graph with one saved by `get_state`."""
        self.graph = nx.Graph()
        self.graph.add_nodes_from(state["agents"])
        for edge in state["edges"]:
            self.graph.add_edge(edge["a"], edge["b"], **edge["data"])

    def to_graphml(self, path: Path) -> None:
        nx.write_graphml(self.graph, path)


def social_graph_from_log(folder: RunFolder) -> SocialGraph:
    """Rebuild a run's social graph from its scenario and the finished ticks of its event log."""
    social = SocialGraph(folder.scenario())
    for event in folder.reader().events(kinds={"conversation_ended", "relationship"}, complete_ticks_only=True):
        if isinstance(event, ConversationEnded):
            for a, b in combinations(event.agents, 2):
                social.record_conversation(a, b, event.sim_time)
        elif isinstance(event, RelationshipUpdated):
            social.set_summary(event.agents[0], event.other, event.summary)
    return social
