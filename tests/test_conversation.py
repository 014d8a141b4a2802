"""The talk step's guards: prompts name who speaks to whom, echoed labels go, loops end conversations."""

from datetime import datetime

from agents.conversation import Setting, _prompt, _strip_name_prefixes, repeats
from agents.persona import Persona

ANN = Persona(name="Ann Lee", age=30, traits="cheerful", persona="Ann bakes bread.", home="flat")
SETTING = Setting(
    place="Cafe", time=datetime(2023, 2, 13, 9, 10),
    listeners=["Bob Ray"], relationships={"Bob Ray": "old friend"},
)


def test_prompt_names_speaker_listener_and_recollections():
    opening = _prompt(ANN, SETTING, [], ["Ann is hosting a picnic on Sunday."])[1].content
    assert "Ann Lee, 30 (cheerful). Ann bakes bread." in opening
    assert "- Ann is hosting a picnic on Sunday." in opening
    assert "Bob Ray, Ann's old friend" in opening and "what Ann says to Bob to open" in opening
    reply = _prompt(ANN, SETTING, [("Bob Ray", "Morning!")], [])[1].content
    assert "Bob Ray: Morning!" in reply and "what Ann says back to Bob" in reply


def test_echoed_name_labels_are_stripped():
    assert _strip_name_prefixes("Bob Ray: Ann Lee: Hi there", ["Ann Lee", "Bob Ray"]) == "Hi there"
    assert _strip_name_prefixes("Hi Bob Ray: nice day", ["Bob Ray"]) == "Hi Bob Ray: nice day"


def test_near_repeats_are_caught_and_new_lines_are_not():
    history = [("Ann Lee", "I'm so excited about the party on Friday at the cafe!")]
    assert repeats("I am so excited about the party on Friday at the cafe.", history)
    assert repeats("i'm SO excited about the party on friday at the cafe", history)
    assert not repeats("Did you fix the bike yet? The chain was squeaking.", history)
    assert not repeats("Anything", [])
