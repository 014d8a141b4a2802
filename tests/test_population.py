"""A population, not a party: what an agent notices, lists and walks stays bounded however big the town is."""

from __future__ import annotations

import sys
from datetime import datetime
from pathlib import Path

import networkx as nx

from worlds.events import ActivityStarted, Moved, Utterance
from worlds.perception import Crowds, perceptions
from worlds.places import PlaceGraph

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from agent_day import town  # noqa: E402 - the benchmarks' town generator

T0 = datetime(2023, 3, 6, 7, 0)


def _crowd(n: int) -> dict[str, str]:
    return {f"P{i:03d}": "Cafe" for i in range(n)} | {"Zed": "Park"}


def test_in_a_crowd_each_event_is_noticed_by_the_earshot_nearest_only() -> None:
    positions = _crowd(100)
    events = [
        ActivityStarted(tick=0, sim_time=T0, seq=1, agents=["P050"], activity_id="a1", activity="action",
                        place="Cafe", description="reading"),
        Moved(tick=0, sim_time=T0, seq=2, agents=["Zed"], origin="Park", destination="Cafe"),
        Utterance(tick=0, sim_time=T0, seq=3, agents=["P000", "P001"], conversation_id="c1", speaker="P000",
                  place="Cafe", text="Hello"),
    ]
    seen = perceptions(events, positions, earshot=4)
    noticed = {name: [p.source_event for p in got] for name, got in seen.items() if got}
    reading = sorted(n for n, got in noticed.items() if 1 in got)
    assert reading == ["P048", "P049", "P051", "P052"], "two on each side in the standing order"
    arrival = [p.text for p in seen["Zed"]]
    assert arrival[0].startswith("Zed arrived at Cafe; ") and "and 96 others were there" in arrival[0]
    assert len([p for p in seen["Zed"] if p.arrival]) == 4
    heard = sorted(n for n, got in noticed.items() if 3 in got)
    assert len(heard) == 4 and not {"P000", "P001"} & set(heard)


def test_outside_a_crowd_everyone_present_notices_everything() -> None:
    positions = {"Ann": "Cafe", "Bob": "Cafe", "Cy": "Cafe"}
    event = ActivityStarted(tick=0, sim_time=T0, seq=1, agents=["Ann"], activity_id="a1", activity="action",
                            place="Cafe", description="baking")
    seen = perceptions([event], positions, earshot=2)
    assert [p.text for p in seen["Bob"]] == [p.text for p in seen["Cy"]] == ["Ann is baking at Cafe."]
    assert seen["Ann"] == []


def test_moves_keep_each_place_in_name_order() -> None:
    crowds = Crowds({"b": "X", "d": "X", "a": "Y"}, earshot=3)
    crowds.move("a", "X")
    crowds.move("d", "Y")
    assert crowds.ring["X"] == ["a", "b"] and crowds.ring["Y"] == ["d"]


def test_walks_in_a_town_without_routes_are_the_shortest_paths() -> None:
    graph = PlaceGraph(town(60, 1, "2023-03-06T07:00", "2023-03-06T08:00", "memory"))
    names = graph.place_names()
    for origin, destination in [(names[0], names[-1]), (names[3], names[9]), (names[-2], names[1]),
                                (names[5], names[5])]:
        expected = nx.shortest_path_length(graph.routes, origin, destination, weight="us")
        path = graph._path(origin, destination)
        assert sum(graph.routes.edges[a, b]["us"] for a, b in zip(path, path[1:])) == expected
        assert path[0] == origin and path[-1] == destination


def test_a_planning_prompt_lists_public_places_and_the_homes_an_agent_has_to_do_with() -> None:
    scenario = town(60, 1, "2023-03-06T07:00", "2023-03-06T08:00", "memory")
    graph = PlaceGraph(scenario)
    me, friend = scenario.agents[0], scenario.agents[1]
    listed = graph.places_to_list(me.home, [friend.name])
    assert me.home in listed and friend.home in listed
    assert scenario.agents[2].home not in listed and "Cafe" in listed
    assert len(listed) == 8 + 2
    small = PlaceGraph(town(5, 1, "2023-03-06T07:00", "2023-03-06T08:00", "memory"))
    assert small.places_to_list(me.home, []) == [p for p in small.place_names() if not p.endswith("'s home")
                                                 or p == me.home], "a small town lists no stranger's home either"
    assert graph.resolve_place("the cafe", "x") == "Cafe"
    assert graph.resolve_place(f"{friend.name.split()[0]} {friend.name.split()[1]}'s home", "x") == friend.home
