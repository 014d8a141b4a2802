"""The talk step's guards: prompts name who speaks to whom, echoed labels go, loops end conversations."""

from datetime import datetime

import pytest

from agents.cognition.converse import _PACE, LINE_TEMPERATURES, _addressed_right, next_line
from agents.cognition.lines import _strip_name_prefixes, first_sentences, repeats, spoken
from agents.cognition.noticed import is_overheard, overheard
from agents.context import Phase, TickContext
from agents.gateway import CallScope, ModelGateway
from tests.conftest import SMALL_TOWN, Scripted
from tests.fakes import make_agent
from worlds.activities.base import ActivityEnv
from worlds.activities.conversation import Conversation
from worlds.scenario import parse_scenario
from worlds.world import World

NOW = datetime(2023, 2, 13, 9, 10)


async def test_the_speaker_is_the_chat_models_own_voice():
    backend = Scripted(["Morning, Bob!", "Bob Ray: Ann Lee: Fine, thanks. See you at the picnic!"])
    gateway = ModelGateway(backend)
    ann = make_agent("Ann Lee", "flat", age=30, traits="cheerful", persona="Ann bakes bread.")
    ann.relationship("Bob Ray").label = "old friend"
    said = await next_line(ann, ["Bob Ray"], "Cafe", [], ["Ann is hosting a picnic on Sunday."], gateway,
                           CallScope("Ann Lee", 1), NOW, "opening")
    system, moment, opener = backend.calls[0].messages
    assert said.line == "Morning, Bob!" and not said.end_conversation
    # What holds for the whole talk first (a prefix a backend can keep), then the moment.
    assert system.role == "system" and system.content.startswith("You are Ann Lee, chatting with Bob at Cafe.")
    assert "Ann Lee, 30 years old. Personality: cheerful. Ann bakes bread." in system.content
    assert "- Bob Ray: old friend" in system.content and f"{NOW:%H:%M}" not in system.content
    assert moment.role == "system" and moment.content.startswith(f"It is {NOW:%A} at {NOW:%H:%M}.")
    assert "- Ann is hosting a picnic on Sunday." in moment.content and "do not say goodbye yet" in moment.content
    assert opener.role == "user" and "Say hello" in opener.content
    history = [("Bob Ray", "Morning! Busy day?"), ("Ann Lee", "Always, the ovens are full."),
               ("Bob Ray", "Save me a loaf?")]
    reply = await next_line(ann, ["Bob Ray"], "Cafe", history, [], gateway, CallScope("Ann Lee", 2), NOW, "closing")
    turns = backend.calls[1].messages
    # The partner speaks as the user, the speaker's own lines are the assistant's, and no name labels are shown.
    assert turns[0].content == system.content  # the same talk, the same prefix
    assert [(t.role, t.content) for t in turns[2:]] == [
        ("user", "Morning! Busy day?"), ("assistant", "Always, the ovens are full."), ("user", "Save me a loaf?")]
    assert "say goodbye" in turns[1].content
    assert reply.line == "Fine, thanks. See you at the picnic!" and reply.end_conversation


async def test_a_line_that_names_its_speaker_or_repeats_is_asked_again_and_logged():
    backend = Scripted(["As Ann always says, bread first.", "Save me a loaf?", "Of course, I kept one for you."])
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
    backend = Scripted(["Save me a loaf?", "Ann here: of course I will.", "How can I help you today?",
                        "Save me a loaf!", "Save me a loaf?"])
    ann = make_agent("Ann Lee", "flat")
    said = await next_line(ann, ["Bob Ray"], "Cafe", [("Bob Ray", "Save me a loaf?")], [], ModelGateway(backend),
                           CallScope("Ann Lee", 4), NOW)
    # A repeat would end the talk; a line that names its speaker is worse data but keeps it going.
    assert said.line == "Ann here: of course I will." and len(backend.calls) == len(LINE_TEMPERATURES)


async def test_a_line_that_only_greets_its_own_speaker_is_mended_and_the_repair_logged():
    backend = Scripted(["Hi Ann! Lovely morning for it."])
    gateway = ModelGateway(backend)
    reports: list = []
    said = await next_line(make_agent("Ann Lee", "flat"), ["Bob Ray"], "Cafe", [("Bob Ray", "Morning!")], [],
                           gateway, CallScope("Ann Lee", 5, sink=reports.append), NOW)
    assert said.line == "Hi! Lovely morning for it." and len(backend.calls) == 1
    assert gateway.counters.repairs == 1 and gateway.counters.retries == 0
    [repair] = [r for r in reports if r.kind == "model_repair"]
    assert (repair.raw, repair.repaired, repair.purpose) == ("Hi Ann! Lovely morning for it.", said.line, "utterance")


async def test_a_line_that_greets_someone_not_in_the_talk_is_mended_and_one_reading_out_the_prompt_asked_again():
    backend = Scripted(["Hello, Tom Moore! The ovens are full today."])
    gateway = ModelGateway(backend)
    reports: list = []
    said = await next_line(make_agent("Ann Lee", "flat"), ["Bob Ray"], "Cafe", [("Bob Ray", "Morning!")], [],
                           gateway, CallScope("Ann Lee", 6, sink=reports.append), NOW)
    assert said.line == "Hello! The ovens are full today." and gateway.counters.repairs == 1
    backend = Scripted(["Oh hello! It's my turn.", f"It is {NOW:%A} at {NOW:%H:%M}.", "Morning, Bob! Fresh bread?"])
    reports = []
    said = await next_line(make_agent("Ann Lee", "flat"), ["Bob Ray"], "Cafe", [("Bob Ray", "Morning!")], [],
                           ModelGateway(backend), CallScope("Ann Lee", 7, sink=reports.append), NOW)
    assert said.line == "Morning, Bob! Fresh bread?"
    assert [r.detail.split(":")[0] for r in reports if r.kind == "model_retry"] == [
        "the line repeats its instructions"] * 2


@pytest.mark.parametrize(("line", "mended"), [
    ("Hi Tom! Thanks, Maria.", "Hi! Thanks."),  # two absent names, both taken out
    ("Hello Bob, Ann! Thanks, Mr. Smith.", "Hello Bob! Thanks."),  # the speaker and a titled stranger
    ("Thanks, Mr. Ray!", "Thanks, Mr. Ray!"),  # the partner, by title and surname: nothing to mend
    ("Hello Tom, Maria! Fresh bread.", "Hello, Maria! Fresh bread."),  # only a greeting's name goes
])
def test_names_of_the_speaker_and_of_the_absent_are_taken_out_of_greetings(line: str, mended: str) -> None:
    assert _addressed_right("Ann Lee", ["Bob Ray", "Cy Dee"], line) == mended


async def test_a_mend_that_leaves_a_fault_is_not_kept_and_everyday_words_are_not_faults():
    # "Hello, Maria!" is what mending leaves of the first try: still to someone absent, so it is asked again.
    backend = Scripted(["Hello Tom, Maria! Fresh bread.", "Thanks, Mr. Ray! See you Saturday at the fair?"])
    gateway = ModelGateway(backend)
    reports: list = []
    said = await next_line(make_agent("Ann Lee", "flat"), ["Bob Ray"], "Cafe", [("Bob Ray", "Morning!")], [],
                           gateway, CallScope("Ann Lee", 10, sink=reports.append), NOW)
    assert said.line == "Thanks, Mr. Ray! See you Saturday at the fair?" and gateway.counters.repairs == 0
    assert [r.detail.split(":")[0] for r in reports if r.kind == "model_retry"] == [
        "the line greets someone not in the talk"]
    backend = Scripted([f"It is {NOW:%A} at 23:59 already? Well, it is time to wrap up!"])
    said = await next_line(make_agent("Ann Lee", "flat"), ["Bob Ray"], "Cafe", [("Bob Ray", "Is it late?")], [],
                           ModelGateway(backend), CallScope("Ann Lee", 11), NOW)
    assert len(backend.calls) == 1 and said.line.startswith("It is")


async def test_a_line_reciting_the_speakers_description_is_asked_again():
    backend = Scripted(["Hi, I'm Ann Lee, a 30-year-old baker, and I bake bread.", "Fresh loaves are out, want one?"])
    ann = make_agent("Ann Lee", "flat", age=30, traits="cheerful", persona="Ann bakes bread.")
    reports: list = []
    said = await next_line(ann, ["Bob Ray"], "Cafe", [("Bob Ray", "Morning!")], [], ModelGateway(backend),
                           CallScope("Ann Lee", 8, sink=reports.append), NOW)
    assert said.line == "Fresh loaves are out, want one?"
    assert [r.detail.split(":")[0] for r in reports if r.kind == "model_retry"] == [
        "the line recites the speaker's description"]
    backend = Scripted(["I've baked here 30 years now, you know."])  # years, not the age read out
    said = await next_line(ann, ["Bob Ray"], "Cafe", [("Bob Ray", "Morning!")], [], ModelGateway(backend),
                           CallScope("Ann Lee", 9), NOW)
    assert said.line == "I've baked here 30 years now, you know." and len(backend.calls) == 1


async def test_each_try_is_given_the_next_recollection_not_yet_talked_about():
    backend = Scripted(["How can I help you today?", "Mention: the picnic.", "The fair is on Saturday, are you going?"])
    recollections = ["Ann Lee is hosting a picnic on Sunday.", "Ann's oven broke on Monday.",
                     "The street fair is on Saturday."]
    history = [("Bob Ray", "Save me a loaf? The oven at home broke on Monday.")]
    said = await next_line(make_agent("Ann Lee", "flat"), ["Bob Ray"], "Cafe", history, recollections,
                           ModelGateway(backend), CallScope("Ann Lee", 6), NOW)
    cues = [call.messages[-1].content.splitlines()[-1] for call in backend.calls]
    # The broken oven was already talked about; the others are put in Ann's own words, one per try.
    assert cues == ["(Answer briefly, then mention: I am hosting a picnic on Sunday.)",
                    "(Answer briefly, then mention: The street fair is on Saturday.)",
                    "(Answer briefly, then mention: I am hosting a picnic on Sunday.)"]
    assert said.line == "The fair is on Saturday, are you going?" and not said.wrapping_up


async def test_overheard_words_are_never_the_thing_to_bring_up_and_rules_read_back_are_asked_again():
    backend = Scripted(["Keep the talk going, Bob!", "The fair is on Saturday, are you going?"])
    recollections = [overheard("Cy Dee", "Bob Ray", "The bakery is closed."), "The street fair is on Saturday."]
    reports: list = []
    said = await next_line(make_agent("Ann Lee", "flat"), ["Bob Ray"], "Cafe", [("Bob Ray", "Morning!")],
                           recollections, ModelGateway(backend), CallScope("Ann Lee", 8, sink=reports.append), NOW)
    cues = [call.messages[-1].content.splitlines()[-1] for call in backend.calls]
    assert cues == ["(Answer briefly, then mention: The street fair is on Saturday.)"] * 2
    assert '- Cy Dee said to Bob Ray: "The bakery is closed."' in backend.calls[0].messages[1].content  # still known
    assert said.line == "The fair is on Saturday, are you going?"
    assert [r.detail.split(":")[0] for r in reports if r.kind == "model_retry"] == ["the line repeats its instructions"]


async def test_when_every_try_repeats_the_last_asks_for_a_goodbye_that_may_end_the_talk_early():
    backend = Scripted(["Save me a loaf?"] * (len(LINE_TEMPERATURES) - 1) + ["Right, I must get back to the ovens. Bye!"])
    said = await next_line(make_agent("Ann Lee", "flat"), ["Bob Ray"], "Cafe", [("Bob Ray", "Save me a loaf?")], [],
                           ModelGateway(backend), CallScope("Ann Lee", 7), NOW, "opening")
    assert "do not say goodbye yet" in backend.calls[0].messages[1].content
    assert _PACE["closing"] in backend.calls[-1].messages[1].content
    assert "do not say goodbye yet" not in backend.calls[-1].messages[1].content
    assert backend.calls[-1].messages[-1].content.endswith("(Now say goodbye to Bob: give a reason to leave, in one short sentence.)")
    assert said.end_conversation and said.wrapping_up


def test_spoken_keeps_only_the_words_said():
    names = ["Ann Lee", "Bob Ray"]
    assert spoken('Bob Ray: "Sure thing! *smiles* I was going to say that the fair is on Satur', names) == "Sure thing!"
    assert spoken("Great, see you there!\nBob: Bye Ann!", names) == "Great, see you there!"
    assert spoken("(laughs) Oh, you know me.", names) == "Oh, you know me."
    assert spoken("(Oh, the fair? I'm going.", names) == "Oh, the fair? I'm going."  # a cue's bracket, copied
    assert first_sentences("Thanks, Mr. Ray! Dr. Lee says hi. Bye.", 2) == "Thanks, Mr. Ray! Dr. Lee says hi."


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


async def test_a_talk_that_ran_dry_ends_on_its_goodbye_before_min_lines():
    scenario = parse_scenario(SMALL_TOWN.replace("conversation: {max_lines: 4,", "conversation: {min_lines: 6, max_lines: 8,"))
    backend = Scripted(["Morning, the bread is out.", "Great, I'll take two loaves."]
                       + ["Great, I'll take two loaves!"] * (len(LINE_TEMPERATURES) - 1) + ["Must dash, bye now!"])
    agents = {n: make_agent(n, "Cafe") for n in ("Ann Lee", "Bob Ray")}
    env = ActivityEnv(world=World(scenario), agents=agents, gateway=ModelGateway(backend), scenario=scenario)
    talk, reports = Conversation("c1", ["Ann Lee", "Bob Ray"], "Cafe"), []
    for tick in range(2):
        ctx = TickContext(tick=tick, now=scenario.clock.start, step=scenario.clock.step, run_seed=1)
        if tick == 0:
            talk.start(ctx, env, ctx.scope(Phase.APPLY, "c1"))
        await talk.advance(ctx, env)
        reports += ctx.drain()
    [ended] = [r for r in reports if getattr(r, "kind", "") == "conversation_ended"]
    assert (ended.reason, ended.lines) == ("farewell", 3) and talk.history[-1] == ("Ann Lee", "Must dash, bye now!")


def test_an_overheard_line_is_known_again_by_its_shape():
    assert is_overheard(overheard("Cy Dee", "Ann and Bob", "Hi there."))
    assert not is_overheard("Cy Dee said the bakery is closed.")
