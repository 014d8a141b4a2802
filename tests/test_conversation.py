"""The talk step's guards: prompts name who speaks to whom, echoed labels go, loops end conversations."""

from datetime import datetime

from agents.cognition.converse import next_line
from agents.cognition.lines import _strip_name_prefixes, repeats, spoken
from agents.gateway import CallScope, ModelGateway
from tests.conftest import Scripted
from tests.fakes import make_agent

NOW = datetime(2023, 2, 13, 9, 10)


async def test_the_speaker_is_the_chat_models_own_voice():
    backend = Scripted(["Morning, Bob!", "Bob Ray: Ann Lee: Fine, thanks. See you at the picnic!"])
    gateway = ModelGateway(backend)
    ann = make_agent("Ann Lee", "flat", age=30, traits="cheerful", persona="Ann bakes bread.")
    ann.relationship("Bob Ray").label = "old friend"
    said = await next_line(ann, ["Bob Ray"], "Cafe", [], ["Ann is hosting a picnic on Sunday."], gateway,
                           CallScope("Ann Lee", 1), NOW, "opening")
    system, opener = backend.calls[0].messages
    assert said.line == "Morning, Bob!" and not said.end_conversation
    assert system.role == "system" and system.content.startswith("You are Ann Lee, chatting with Bob at Cafe")
    assert "Ann Lee, 30 years old. Personality: cheerful. Ann bakes bread." in system.content
    assert "- Ann is hosting a picnic on Sunday." in system.content and "- Bob Ray: old friend" in system.content
    assert "do not say goodbye yet" in system.content
    assert opener.role == "user" and "Say hello" in opener.content
    history = [("Bob Ray", "Morning! Busy day?"), ("Ann Lee", "Always, the ovens are full."),
               ("Bob Ray", "Save me a loaf?")]
    reply = await next_line(ann, ["Bob Ray"], "Cafe", history, [], gateway, CallScope("Ann Lee", 2), NOW, "closing")
    turns = backend.calls[1].messages
    # The partner speaks as the user, the speaker's own lines are the assistant's, and no name labels are shown.
    assert [(t.role, t.content) for t in turns[1:]] == [
        ("user", "Morning! Busy day?"), ("assistant", "Always, the ovens are full."), ("user", "Save me a loaf?")]
    assert "say goodbye" in turns[0].content
    assert reply.line == "Fine, thanks. See you at the picnic!" and reply.end_conversation


async def test_a_line_that_names_its_speaker_or_repeats_is_asked_again_and_logged():
    backend = Scripted(["Ann, I'm so glad to see you.", "Save me a loaf?", "Of course, I kept one for you."])
    gateway = ModelGateway(backend)
    ann = make_agent("Ann Lee", "flat")
    reports: list = []
    scope = CallScope("Ann Lee", 3, sink=reports.append)
    said = await next_line(ann, ["Bob Ray"], "Cafe", [("Bob Ray", "Save me a loaf?")], [], gateway, scope, NOW)
    assert said.line == "Of course, I kept one for you."
    assert len(backend.calls) == 3 and len({c.seed for c in backend.calls}) == 3
    retries = [r for r in reports if r.kind == "model_retry"]
    assert [r.detail.split(":")[0] for r in retries] == ["the line confuses who is speaking",
                                                          "the line repeats what was said"]
    assert gateway.counters.retries == 2


async def test_the_least_bad_try_stands_when_every_try_is_faulty():
    backend = Scripted(["Save me a loaf?", "Ann here: of course I will.", "Save me a loaf?"])
    ann = make_agent("Ann Lee", "flat")
    said = await next_line(ann, ["Bob Ray"], "Cafe", [("Bob Ray", "Save me a loaf?")], [], ModelGateway(backend),
                           CallScope("Ann Lee", 4), NOW)
    # A repeat would end the talk; a line that names its speaker is worse data but keeps it going.
    assert said.line == "Ann here: of course I will." and len(backend.calls) == 3


def test_spoken_keeps_only_the_words_said():
    names = ["Ann Lee", "Bob Ray"]
    assert spoken('Bob Ray: "Sure thing! *smiles* I was going to say that the fair is on Satur', names) == "Sure thing!"
    assert spoken("Great, see you there!\nBob: Bye Ann!", names) == "Great, see you there!"
    assert spoken("(laughs) Oh, you know me.", names) == "Oh, you know me."


def test_echoed_name_labels_are_stripped():
    assert _strip_name_prefixes("Bob Ray: Ann Lee: Hi there", ["Ann Lee", "Bob Ray"]) == "Hi there"
    assert _strip_name_prefixes("Hi Bob Ray: nice day", ["Bob Ray"]) == "Hi Bob Ray: nice day"


def test_near_repeats_are_caught_and_new_lines_are_not():
    history = [("Ann Lee", "I'm so excited about the party on Friday at the cafe!")]
    assert repeats("I am so excited about the party on Friday at the cafe.", history)
    assert repeats("i'm SO excited about the party on friday at the cafe", history)
    assert not repeats("Did you fix the bike yet? The chain was squeaking.", history)
    assert not repeats("Anything", [])


def test_a_greeting_that_differs_only_in_the_name_is_a_repeat():
    history = [("Ann Lee", "Hello Bob, how are you today?")]
    assert repeats("Hello Ann, how are you today?", history, ["Ann Lee", "Bob Ray"])
    assert not repeats("Hello Ann, the bread smells great today!", history, ["Ann Lee", "Bob Ray"])
