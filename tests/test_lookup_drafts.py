"""Draft tokens looked up in a call's own text: what the decoder guesses, and how a spec sets how many."""

from __future__ import annotations

import pytest

from agents.gateway import build_backend
from agents.gateway.backends.lookup_drafts import LookupDrafts
from agents.gateway.errors import ModelSpecError


def test_the_draft_is_what_followed_the_latest_earlier_appearance_of_the_ending():
    drafts = LookupDrafts([1, 2, 3, 4, 9, 1, 2, 3, 5, 6, 1, 2])
    assert drafts.draft(3) == [3, 5, 6]  # "1 2" last came before "3 5 6", not before "3 4 9"
    assert drafts.draft(1) == [3]


def test_a_longer_matching_ending_wins_over_a_more_recent_shorter_one():
    drafts = LookupDrafts([7, 8, 9, 1, 1, 8, 9, 2, 7, 8, 9])
    assert drafts.draft(2) == [1, 1]  # "7 8 9" came before "1 1"; "8 9" alone came last before "2"


def test_no_draft_from_a_lone_token_or_an_ending_never_seen():
    assert LookupDrafts([1, 2, 3, 4, 3]).draft(4) == []  # only "3" matches: too weak a guess
    assert LookupDrafts([1, 2, 3, 4]).draft(4) == []
    assert LookupDrafts([1, 2, 1, 2]).draft(0) == []


def test_tokens_added_later_are_looked_up_too():
    drafts = LookupDrafts([5, 6, 7])
    drafts.extend([8, 5, 6])
    assert drafts.draft(4) == [7, 8, 5, 6]
    drafts.extend([9, 8, 5])
    assert drafts.draft(2) == [6, 9]  # the newest "8 5" was followed by "6 9"


def test_draft_tokens_in_a_spec_must_not_be_negative():
    with pytest.raises(ModelSpecError, match="draft must be 0 or more"):
        build_backend("llamacpp:/no/such/model.gguf?draft=-1")
