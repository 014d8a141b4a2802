"""Putting memories in the speaker's own words, and taking a speaker's own name out of the greeting."""

import pytest

from agents.cognition.voice import in_first_person, without_address_to


@pytest.mark.parametrize(("name", "memory", "said"), [
    ("Isabella Rodriguez", "Isabella is planning a party at Hobbs Cafe.", "I am planning a party at Hobbs Cafe."),
    ("Klaus Mueller", "Klaus has a crush on Maria Lopez.", "I have a crush on Maria Lopez."),
    ("Sam Moore", "Sam Moore wants to hear what people care about.", "I want to hear what people care about."),
    ("Sam Moore", "Tom thinks Sam Moore would make a fine mayor.", "Tom thinks I would make a fine mayor."),
    ("Klaus Mueller", "Maria studies with Klaus at the library.", "Maria studies with me at the library."),
    ("Ann Lee", "Ann Lee's plan for Monday: bake.", "My plan for Monday: bake."),
    ("Ann Lee", "Bob mended the fence.", "Bob mended the fence."),
    ("Ann", "Ann goes to the market.", "I go to the market."),
    ("Klaus", "Maria gave Klaus flowers.", "Maria gave me flowers."),
    ("Ann", "Ann always bakes.", "I always bake."),
    ("Klaus", "Klaus' bike is red.", "My bike is red."),
    ("", "Bob's cat is here.", "Bob's cat is here."),
])
def test_memories_about_the_speaker_become_first_person(name: str, memory: str, said: str) -> None:
    assert in_first_person(name, memory) == said


@pytest.mark.parametrize(("speaker", "line", "mended"), [
    ("Klaus Mueller", "Hi Klaus! It's nice to meet you, Sam.", "Hi! It's nice to meet you, Sam."),
    ("Maria Lopez", "Hello Klaus, Maria! How are you?", "Hello Klaus! How are you?"),
    ("Tom Moore", "Tom, it's great to see you!", "It's great to see you!"),
    ("Sam Moore", "Thanks, Sam Moore.", "Thanks."),
    ("Mr. Smith", "Thanks, Mr. Smith!", "Thanks!"),
    ("Ann Lee", "See you, Ann Lee.", "See you."),
    # Not an address: left alone for the checks to ask again.
    ("Tom Moore", "I am Tom.", "I am Tom."),
    ("Ann Lee", "Ann thinks the bread is ready.", "Ann thinks the bread is ready."),
])
def test_only_a_speakers_own_name_as_addressee_is_taken_out(speaker: str, line: str, mended: str) -> None:
    assert without_address_to(speaker, line) == mended
