"""The world model: routes and travel times, resolving model-written names, object states, the social graph."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path

import networkx as nx
import pytest

from worlds.places import IDLE, PlaceGraph
from worlds.runfolder import RunFolder
from worlds.scenario import Scenario, parse_scenario
from worlds.social import SocialGraph, social_graph_from_log
from worlds.world import World

TOWN = """\
name: town
clock: {start: 2023-02-13T08:00, step: 10m, stop: 2023-02-13T12:00}
world:
  places:
    Town:
      Hobbs Cafe: [counter, espresso machine]
      Johnson Park: [bench]
    Campus:
      Oak Hill College: [desk]
      Oak Park: []
    Homes:
      Ann's flat: [bed]
      Bob's flat: [bed, desk]
agents:
  - {name: Ann, home: Ann's flat}
  - {name: Bob, home: Bob's flat}
  - {name: Cy, home: Bob's flat}
relationships:
  - {a: Ann, b: Bob, label: neighbours}
"""

#: Explicit routes: the cafe reaches Ann's flat quicker through the park (10 + 4) than directly (20).
ROUTES = """\
  routes:
    - {a: Hobbs Cafe, b: Johnson Park, minutes: 10}
    - {a: Johnson Park, b: Ann's flat, minutes: 4}
    - {a: Hobbs Cafe, b: Ann's flat, minutes: 20}
    - {a: Ann's flat, b: Bob's flat, minutes: 1}
    - {a: Ann's flat, b: Bob's flat, minutes: 3}
    - {a: Bob's flat, b: Oak Hill College, minutes: 7}
    - {a: Oak Park, b: Oak Hill College, minutes: 2}
"""


def town(extra_world: str = "") -> Scenario:
    return parse_scenario(TOWN.replace("agents:\n", extra_world + "agents:\n"))


def minutes(n: float) -> timedelta:
    return timedelta(minutes=n)


# --------------------------------------------------------------------------- the places tree


def test_places_tree_names_areas_places_and_objects() -> None:
    places = PlaceGraph(town())
    assert places.place_names() == [
        "Hobbs Cafe", "Johnson Park", "Oak Hill College", "Oak Park", "Ann's flat", "Bob's flat",
    ]
    assert places.tree.nodes["Oak Park"]["area"] == "Campus"
    assert places.tree.nodes["Hobbs Cafe/espresso machine"] == {
        "kind": "object", "place": "Hobbs Cafe", "name": "espresso machine", "state": IDLE,
    }


# --------------------------------------------------------------------------- routes through area centres


@pytest.mark.parametrize(
    ("origin", "destination", "walk", "expected"),
    [
        ("Hobbs Cafe", "Hobbs Cafe", 5, 0),
        ("Hobbs Cafe", "Johnson Park", 5, 10),  # same area: in to the centre and out again
        ("Hobbs Cafe", "Ann's flat", 5, 20),  # other area: plus the walk between centres (2 x walk)
        ("Oak Park", "Bob's flat", 3, 12),
    ],
)
def test_travel_time_through_area_centres(origin: str, destination: str, walk: int, expected: int) -> None:
    places = PlaceGraph(town(f"  walk: {walk}m\n"))
    assert places.travel_time(origin, destination) == minutes(expected)
    assert places.travel_time(destination, origin) == minutes(expected)


def test_route_through_centres_lists_only_places() -> None:
    places = PlaceGraph(town())
    assert places.route("Hobbs Cafe", "Ann's flat") == ["Hobbs Cafe", "Ann's flat"]
    assert places.route("Oak Park", "Oak Park") == ["Oak Park"]
    # The centres' legs are folded into the time of the next real place.
    assert places.hops("Hobbs Cafe", "Ann's flat") == [("Ann's flat", minutes(20))]
    assert places.hops("Oak Park", "Oak Park") == []


# --------------------------------------------------------------------------- explicit routes


def test_explicit_routes_pick_the_quickest_path() -> None:
    places = PlaceGraph(town(ROUTES))
    assert places.route("Hobbs Cafe", "Ann's flat") == ["Hobbs Cafe", "Johnson Park", "Ann's flat"]
    assert places.travel_time("Hobbs Cafe", "Ann's flat") == minutes(14)
    assert places.hops("Hobbs Cafe", "Ann's flat") == [("Johnson Park", minutes(10)), ("Ann's flat", minutes(4))]


def test_explicit_routes_are_the_only_connections() -> None:
    places = PlaceGraph(town(ROUTES))
    # No centres: the only way from the park to Oak Park is the chain of routes (a repeated route keeps its
    # shorter time, 1 minute, not 3).
    assert places.route("Johnson Park", "Oak Park") == [
        "Johnson Park", "Ann's flat", "Bob's flat", "Oak Hill College", "Oak Park",
    ]
    assert places.travel_time("Johnson Park", "Oak Park") == minutes(4 + 1 + 7 + 2)
    assert places.hops("Oak Park", "Johnson Park") == [
        ("Oak Hill College", minutes(2)), ("Bob's flat", minutes(7)), ("Ann's flat", minutes(1)),
        ("Johnson Park", minutes(4)),
    ]
    assert not places.routes.has_edge("Hobbs Cafe", "Oak Park")


def test_sub_minute_walks_add_up_exactly() -> None:
    places = PlaceGraph(town("  walk: 0.1s\n"))
    assert places.travel_time("Hobbs Cafe", "Ann's flat") == timedelta(milliseconds=400)


# --------------------------------------------------------------------------- names a small model wrote


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Hobbs Cafe", "Hobbs Cafe"),
        ("hobbs cafe.", "Hobbs Cafe"),
        ("  JOHNSON   park!! ", "Johnson Park"),
        ("the cafe", "Hobbs Cafe"),
        ("Hobbs Cafe counter", "Hobbs Cafe"),
        ("Café", "Hobbs Cafe"),
        ("ann's flat", "Ann's flat"),
        ("Bob flat", "Bob's flat"),
        ("the flat", "Ann's flat"),  # a tie goes to the first name in order
        ("oak", "Oak Park"),  # a tie on shared words goes to the name with fewer words left unsaid
        ("the college library", "Oak Hill College"),
        ("the moon", "Johnson Park"),
        ("", "Johnson Park"),
        ("the", "Johnson Park"),
    ],
)
def test_resolve_place(text: str, expected: str) -> None:
    assert PlaceGraph(town()).resolve_place(text, default="Johnson Park") == expected


@pytest.mark.parametrize(
    ("place", "text", "expected"),
    [
        ("Hobbs Cafe", "counter", "counter"),
        ("Hobbs Cafe", "Counter.", "counter"),
        ("Hobbs Cafe", "the espresso machine", "espresso machine"),
        ("Hobbs Cafe", "coffee machine", "espresso machine"),
        ("Hobbs Cafe", "sofa", None),
        ("Oak Park", "bench", None),
        ("Bob's flat", "Bob's desk", "desk"),
    ],
)
def test_resolve_object(place: str, text: str, expected: str | None) -> None:
    assert PlaceGraph(town()).resolve_object(place, text) == expected


# --------------------------------------------------------------------------- object states


def test_objects_start_idle_and_change_state() -> None:
    places = PlaceGraph(town())
    assert places.objects_at("Hobbs Cafe") == {"counter": IDLE, "espresso machine": IDLE}
    assert places.objects_at("Oak Park") == {}
    places.set_object_state("Hobbs Cafe", "espresso machine", "brewing coffee")
    assert places.objects_at("Hobbs Cafe") == {"counter": IDLE, "espresso machine": "brewing coffee"}
    with pytest.raises(KeyError):
        places.set_object_state("Hobbs Cafe", "piano", "played")


def test_object_states_survive_a_json_round_trip() -> None:
    places = PlaceGraph(town())
    places.set_object_state("Bob's flat", "desk", "covered in bicycle parts")
    state = json.loads(json.dumps(places.get_state()))
    assert "Oak Park" not in state  # nothing there to keep
    restored = PlaceGraph(town())
    restored.set_state(state)
    assert restored.get_state() == places.get_state()
    assert restored.objects_at("Bob's flat") == {"bed": IDLE, "desk": "covered in bicycle parts"}


# --------------------------------------------------------------------------- the social graph


WHEN = datetime(2023, 2, 13, 9, 30)


def test_conversations_count_per_pair() -> None:
    social = SocialGraph(town())
    assert social.relationship("Bob", "Ann") == "neighbours"
    assert social.relationship("Ann", "Cy") is None
    assert social.talks("Ann", "Cy") == 0 and social.last_talk("Ann", "Cy") is None
    social.record_conversation("Ann", "Cy", WHEN)
    social.record_conversation("Cy", "Ann", WHEN + timedelta(hours=2))
    assert social.talks("Ann", "Cy") == 2
    assert social.last_talk("Cy", "Ann") == WHEN + timedelta(hours=2)
    assert social.relationship("Ann", "Cy") is None  # talking is not a scenario relationship


def test_summaries_are_kept_per_direction() -> None:
    social = SocialGraph(town())
    social.set_summary("Ann", "Bob", "Bob is reliable.")
    assert social.summary("Ann", "Bob") == "Bob is reliable."
    assert social.summary("Bob", "Ann") is None
    social.set_summary("Bob", "Ann", "Ann talks a lot.")
    social.set_summary("Ann", "Bob", "Bob is reliable and kind.")
    assert (social.summary("Ann", "Bob"), social.summary("Bob", "Ann")) == ("Bob is reliable and kind.", "Ann talks a lot.")


def test_social_state_survives_a_json_round_trip() -> None:
    social = SocialGraph(town())
    social.record_conversation("Ann", "Cy", WHEN)
    social.set_summary("Cy", "Ann", "Ann bakes.")
    restored = SocialGraph(town())
    restored.set_state(json.loads(json.dumps(social.get_state())))
    assert restored.get_state() == social.get_state()
    assert restored.talks("Ann", "Cy") == 1 and restored.summary("Cy", "Ann") == "Ann bakes."


def test_graphml_round_trip_keeps_every_attribute(tmp_path: Path) -> None:
    social = SocialGraph(town())
    social.record_conversation("Ann", "Bob", WHEN)
    social.record_conversation("Ann", "Bob", WHEN + timedelta(hours=3))
    social.set_summary("Bob", "Ann", 'Ann said "hi" <loudly> & left.')
    path = tmp_path / "social.graphml"
    social.to_graphml(path)
    read = nx.read_graphml(path)
    assert set(read.nodes) == {"Ann", "Bob", "Cy"}
    assert read.edges["Ann", "Bob"] == {
        "label": "neighbours",
        "talks": 2,
        "last_talk": (WHEN + timedelta(hours=3)).isoformat(),
        "summary_Bob": 'Ann said "hi" <loudly> & left.',
    }


# --------------------------------------------------------------------------- rebuilt from a run folder


def _record(seq: int, tick: int, kind: str, agents: list[str], **fields: object) -> str:
    sim_time = (datetime(2023, 2, 13, 8, 0) + tick * timedelta(minutes=10)).isoformat()
    return json.dumps({"seq": seq, "tick": tick, "sim_time": sim_time, "wall_time": None, "agents": agents,
                       "kind": kind, **fields})


def test_social_graph_from_log(tmp_path: Path) -> None:
    (tmp_path / RunFolder.SCENARIO_FILE).write_text(TOWN)
    lines = [
        _record(0, 0, "conversation_ended", ["Ann", "Bob"], conversation_id="c0", place="Hobbs Cafe", reason="farewell", lines=4),
        _record(1, 0, "relationship", ["Ann"], other="Bob", summary="Bob is kind."),
        _record(2, 0, "tick", [], positions={}),
        _record(3, 1, "conversation_ended", ["Cy", "Ann"], conversation_id="c1", place="Johnson Park", reason="farewell", lines=4),
        _record(4, 1, "relationship", ["Ann"], other="Bob", summary="Bob is kind and funny."),
        _record(5, 1, "conversation_ended", ["Bob", "Ann"], conversation_id="c2", place="Oak Park", reason="farewell", lines=4),
        _record(6, 1, "tick", [], positions={}),
        # An unfinished tick (the run crashed in it) is left out.
        _record(7, 2, "conversation_ended", ["Bob", "Cy"], conversation_id="c3", place="Oak Park", reason="farewell", lines=4),
        _record(8, 2, "relationship", ["Bob"], other="Cy", summary="Cy writes."),
    ]
    (tmp_path / "events.jsonl").write_text("\n".join(lines) + "\n")
    social = social_graph_from_log(RunFolder.open(tmp_path))
    assert social.relationship("Ann", "Bob") == "neighbours"
    assert social.talks("Ann", "Bob") == 2
    assert social.last_talk("Ann", "Bob") == datetime(2023, 2, 13, 8, 10)
    assert social.talks("Ann", "Cy") == 1
    assert social.summary("Ann", "Bob") == "Bob is kind and funny."
    assert social.talks("Bob", "Cy") == 0 and social.summary("Bob", "Cy") is None


# --------------------------------------------------------------------------- the world as a whole


def test_world_state_round_trip() -> None:
    world = World(town())
    assert world.social.relationship("Ann", "Bob") == "neighbours"
    world.places.set_object_state("Hobbs Cafe", "counter", "being wiped")
    world.social.record_conversation("Bob", "Cy", WHEN)
    state = json.loads(json.dumps(world.get_state()))
    restored = World(town())
    restored.set_state(state)
    assert restored.get_state() == world.get_state()
    assert restored.places.objects_at("Hobbs Cafe")["counter"] == "being wiped"
    assert restored.social.talks("Cy", "Bob") == 1
