"""The talk step's guards: prompts name who speaks to whom, echoed labels go, loops end conversations."""

from datetime import datetime

from agents.cognition.converse import _strip_name_prefixes, next_line, repeats
from agents.gateway import CallScope, ModelGateway
from tests.conftest import Scripted
from tests.fakes import make_agent

NOW = datetime(2023, 2, 13, 9, 10)


async def test_prompt_names_speaker_listener_and_recollections():
    backend = Scripted(['{"line": "Morning, Bob!", "end_conversation": false}',
                        '{"line": "Bob Ray: Ann Lee: Fine, thanks.", "end_conversation": true}'])
    gateway = ModelGateway(backend)
    ann = make_agent("Ann Lee", "flat", age=30, traits="cheerful", persona="Ann bakes bread.")
    ann.relationship("Bob Ray").label = "old friend"
    said = await next_line(ann, ["Bob Ray"], "Cafe", [], ["Ann is hosting a picnic on Sunday."], gateway,
                           CallScope("Ann Lee", 1), NOW)
    opening = backend.calls[0].messages[1].content
    assert said.line == "Morning, Bob!"
    assert "Ann Lee, 30 years old. Personality: cheerful. Ann bakes bread." in opening
    assert "- Ann is hosting a picnic on Sunday." in opening
    assert "- Bob Ray: old friend" in opening and "what Ann says to Bob to open" in opening
    reply = await next_line(ann, ["Bob Ray"], "Cafe", [("Bob Ray", "Morning!")], [], gateway, CallScope("Ann Lee", 2), NOW)
    later = backend.calls[1].messages[1].content
    assert "Bob Ray: Morning!" in later and "what Ann says back to Bob" in later
    assert reply.line == "Fine, thanks." and reply.end_conversation


def test_echoed_name_labels_are_stripped():
    assert _strip_name_prefixes("Bob Ray: Ann Lee: Hi there", ["Ann Lee", "Bob Ray"]) == "Hi there"
    assert _strip_name_prefixes("Hi Bob Ray: nice day", ["Bob Ray"]) == "Hi Bob Ray: nice day"


def test_near_repeats_are_caught_and_new_lines_are_not():
    history = [("Ann Lee", "I'm so excited about the party on Friday at the cafe!")]
    assert repeats("I am so excited about the party on Friday at the cafe.", history)
    assert repeats("i'm SO excited about the party on friday at the cafe", history)
    assert not repeats("Did you fix the bike yet? The chain was squeaking.", history)
    assert not repeats("Anything", [])
