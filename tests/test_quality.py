"""The dialogue quality figures on hand-made dialogues whose answers are known."""

from __future__ import annotations

from datetime import datetime

import pytest

from worlds.corpus.dedup import NearDuplicates, normalised_hash
from agents.cognition.lines import (
    absent_addressees,
    echoes,
    introduces_as,
    names_self,
    out_of_character,
    reads_out_prompt,
    sounds_like_an_assistant,
    truncated,
)
from worlds.corpus.quality import Dialogue, Line, figures, measure, repeated_trigram_share


def dialogue(*lines: tuple[str, str], kind: str = "conversation", end: str | None = "farewell",
             name: str = "d1") -> Dialogue:
    return Dialogue(dialogue_id=name, kind=kind, end_reason=end, lines=[Line(speaker=s, text=t) for s, t in lines])


@pytest.mark.parametrize("speaker, text, expected", [
    ("Sam Moore", "Sam, I'm really excited about the election.", True),
    ("Sam Moore", "Sam nods and pours another coffee.", True),
    ("Sam Moore", "Hi Tom, good to see you.", False),
    ("Sam Moore", "I'm Sam, by the way. And you are?", False),
    ("Sam Moore", "My name is Sam Moore and I'm running for mayor.", False),
    ("Sam Moore", "Samuel is my cousin.", False),
    ("Isabella Rodriguez", "Thanks, Isabella! See you at the party.", True),
])
def test_self_address(speaker: str, text: str, expected: bool) -> None:
    assert names_self(speaker, text) is expected


def test_echo_is_a_line_mostly_copied_from_an_earlier_one() -> None:
    earlier = ["I think the park is lovely this time of year, don't you?"]
    assert echoes("Yes, I think the park is lovely this time of year.", earlier)
    assert not echoes("The market opens at nine tomorrow, I heard.", earlier)
    assert not echoes("Yes, lovely.", earlier)  # too short to count as an echo


@pytest.mark.parametrize("text, expected", [
    ("I was going to say that the fair and t...", True),
    ("Well, I suppose we could try…", True),
    ("So... what brings you here?", False),
    ("See you at five.", False),
    ("We'll see what happens...\"", True),
])
def test_truncated(text: str, expected: bool) -> None:
    assert truncated(text) is expected


def test_repeated_trigram_share_is_high_for_loops() -> None:
    loop = ["see you at the party", "see you at the party", "see you at the party"]
    varied = ["see you at the party", "the cake is in the oven", "bring your sister along"]
    assert repeated_trigram_share(loop) == 1.0
    assert repeated_trigram_share(varied) == 0.0


def test_figures_count_each_fault_once_per_line() -> None:
    d = dialogue(("Sam Moore", "Sam here is thinking about the election a lot."),
                 ("Tom Moore", "You keep thinking about the election a lot, Sam."),
                 ("Sam Moore", "Well, maybe I do and t..."))
    seen = figures(d)
    assert (seen.lines, seen.speakers, seen.self_address, seen.echo, seen.truncated) == (3, 2, 1, 1, 1)
    assert seen.min_chars == len("Well, maybe I do and t...")


def test_role_flips_count_assistant_instructions_only() -> None:
    session = Dialogue(dialogue_id="s1", kind="roleplay", end_reason="role_flip", lines=[
        Line(speaker="Chef", role="user", text="Instruction: list the ingredients.\nInput: None"),
        Line(speaker="Cook", role="assistant", text="Instruction: you list them first."),
    ])
    calm = Dialogue(dialogue_id="s2", kind="roleplay", end_reason="task_done", lines=[
        Line(speaker="Chef", role="user", text="Instruction: list the ingredients.\nInput: None"),
        Line(speaker="Cook", role="assistant", text="Solution: flour, eggs, milk. Next request."),
    ])
    assert figures(session).role_flips == 1 and figures(calm).role_flips == 0
    report = measure([session, calm])
    assert report.role_flip_rate == 0.5
    assert report.roleplay_sessions == 2 and report.conversations == 0


def test_corpus_figures_on_known_dialogues() -> None:
    a = dialogue(("Ann", "hello there friend"), ("Bob", "hello there friend"), end="repetition", name="a")
    b = dialogue(("Ann", "the cake is ready"), ("Bob", "great news"), end="farewell", name="b")
    report = measure([a, b])
    assert report.dialogues == 2 and report.lines == 4 and report.mean_lines == 2.0
    assert report.end_reasons == {"farewell": 0.5, "repetition": 0.5}
    # Words: hello there friend ×2, the cake is ready, great news: 12 unigrams, 9 distinct.
    assert report.distinct_1 == round(9 / 12, 4)
    # Bigrams: 2 + 2 + 3 + 1 = 8, of which "hello there" and "there friend" repeat: 6 distinct.
    assert report.distinct_2 == 0.75
    assert report.role_flip_rate is None and report.self_address_rate == 0.0


def test_near_duplicates_found_with_a_few_words_changed_and_distinct_kept() -> None:
    base = ("Good morning! Did you hear that Isabella is throwing a Valentine's party at the cafe tomorrow "
            "from five to seven? Everyone in town is invited and she asked me to spread the word to "
            "all the neighbours on our street before the evening.")
    changed = base.replace("Good morning!", "Morning!").replace("the evening", "tonight")
    other = ("The library closes early on Sundays, so I usually study in the park by the fountain "
             "when the weather holds, and on rainy days I just stay home and read.")
    seen = NearDuplicates(threshold=0.7, ngram=3)
    assert not seen.near_copy("base", base)
    assert seen.near_copy("changed", changed)
    assert not seen.near_copy("other", other)
    assert measure([dialogue(("A", base), name="1"), dialogue(("A", changed), name="2"),
                    dialogue(("A", other), name="3")]).near_duplicate_rate == round(1 / 3, 4)


def test_exact_copies_ignore_case_and_punctuation() -> None:
    seen = NearDuplicates()
    assert not seen.exact_copy("See you at the party!")
    assert seen.exact_copy("see you at the PARTY")
    assert normalised_hash("a  b") == normalised_hash("A, b.")


def test_bad_dedup_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="threshold"):
        NearDuplicates(threshold=0)
    with pytest.raises(ValueError, match="n-gram"):
        NearDuplicates(ngram=0)


def test_a_speaker_who_introduces_himself_by_his_partners_name_is_caught() -> None:
    assert introduces_as("Sam Moore", "Hello! I'm Sam.")
    assert introduces_as("Sam Moore", "hi there, my name is sam")
    assert not introduces_as("Sam Moore", "Sam told me about the election.")
    assert not introduces_as("Sam Moore", "I'm Samuel's cousin.")


@pytest.mark.parametrize("line, assistant", [
    ("I'm sorry, but I can't assist with that.", True),
    ("If you have any other questions, please don't hesitate to ask.", True),
    ("You're welcome! Let me know if you need any other help.", True),
    ("As an AI, I have no plans.", True),
    ("Can you help me carry these chairs to the cafe?", False),
    ("I hesitated, then asked her anyway.", False),
    ("Any other ideas for the party?", False),
    ("You're welcome! I'm glad I could help.", True),
    ("I'm always here to help, whether you need advice or a chat.", True),
    ("I'm glad you found the information helpful.", True),
    ("Is there anything else I can help you with?", True),
    ("Anything else I can do for you today?", True),
    ("I’m here to help.", True),
    ("Feel free to ask if anything comes up.", True),
    ("I'm here to help with the party tonight.", False),
    ("Feel free to ask Maria, she knows.", False),
    ("I found the advice helpful, thanks.", False),
    ("Glad I could help you carry those boxes!", False),
    ("I need more information about the party.", False),
])
def test_what_chat_tuned_models_say_as_themselves_is_caught(line: str, assistant: bool):
    assert sounds_like_an_assistant(line) is assistant


@pytest.mark.parametrize("line, read_out", [
    ("Oh hello! It's my turn.", True),
    ("Tom Moore is my turn, but I'm sorry to hear that.", True),
    ("Hello, Isabella! It's Monday at 07:20.", True),
    ("It is Tuesday at 08:20, you know.", True),
    ("It’s my turn.", True),
    ("It is Tuesday at 8.20, you know.", False),  # not the prompt's format
    ("Maybe Isabella is at Hobbs Cafe.", False),
    ("So Tom Moore came to see me.", False),
    ("I think it has run its course.", False),
    ("Well, it is time to wrap up!", False),
    ("It's time to wrap up and finish your thought.", True),
    ('Sam Moore said to Isabella Rodriguez: "Thanks for letting me know!', True),
    ("Hello! Tom Moore is at Hobbs Cafe.", True),
    ("Then she said to me it was fine.", False),
    ("Tom said to Ann that it's late.", False),
    ("It's my turn to pay today.", False),
    ("See you Monday at 10:00!", False),
    ("Your turn to buy the coffee!", False),
])
def test_a_line_that_reads_out_its_prompt_is_caught(line: str, read_out: bool) -> None:
    assert reads_out_prompt(line) is read_out
    assert out_of_character(line) is read_out


def test_a_clock_line_counts_as_read_out_only_when_it_tells_the_moment() -> None:
    now = datetime(2026, 12, 5, 9, 0)  # a Saturday
    assert reads_out_prompt("It is Saturday at 09:00.", now)
    assert not reads_out_prompt("It is Saturday at 10:00, the party starts then.", now)


@pytest.mark.parametrize("line, present, absent", [
    ("Hello, Tom Moore! Good to see you.", ["Klaus Mueller"], ["Tom Moore"]),
    ("Thanks, Maria. See you later.", ["Isabella Rodriguez", "Tom Moore"], ["Maria"]),
    ("Nice. Hey there, Ann!", ["Bob"], ["Ann"]),
    ("Hello, Sam!", ["Klaus Mueller", "Sam Moore"], []),
    ("hi Klaus, how are you?", ["Klaus Mueller"], []),
    ("Hello, everyone! Thanks, man.", ["Bob"], []),
    ("Hello! Isabella is at the cafe.", ["Bob"], []),
    ("Hello, How are you?", ["Bob"], []),
    ("Thanks, Mr. Moore!", ["Tom Moore"], []),
    ("Thanks, Dr. Smith, see you.", ["Tom Moore"], ["Dr. Smith"]),
    ("See you Saturday! Bye Tom.", ["Klaus Mueller"], ["Tom"]),
    ("See you Soon! Morning, Sunshine! Hey Dude. Welcome Home!", ["Bob"], []),
    ("Thanks, Miss!", ["Bob"], []),
])
def test_greeting_someone_who_is_not_in_the_talk_is_caught(line: str, present: list[str], absent: list[str]) -> None:
    assert absent_addressees(line, present) == absent


def test_corpus_figures_count_out_of_character_lines_and_wrong_addressees() -> None:
    tom, isabella = "Tom Moore", "Isabella Rodriguez"
    talk = dialogue((tom, "Hello, Isabella! It's Monday at 07:20."), (isabella, "Oh hello! It's my turn."),
                    (tom, "Thanks, Maria, see you at the party."), (isabella, "I can't assist with that."),
                    (tom, "It's my turn to bring the cake, Isabella."))
    seen = figures(talk)
    assert (seen.out_of_character, seen.wrong_addressee) == (3, 1)
    report = measure([talk])
    assert report.out_of_character_rate == 0.6 and report.wrong_addressee_rate == 0.2


def test_greeting_someone_in_the_talk_who_never_spoke_is_not_a_wrong_addressee() -> None:
    talk = dialogue(("Tom Moore", "Hello, Maria! Good to see you both."), ("Isabella Rodriguez", "Morning, Tom."))
    assert figures(talk).wrong_addressee == 1
    talk.participants = ["Tom Moore", "Isabella Rodriguez", "Maria Lopez"]
    assert figures(talk).wrong_addressee == 0

