"""Which memories a speaker had just retrieved when it said each line of a conversation.

A line is spoken right after its speaker's retrieval: `recall_for` retrieves (the log's
`memory_retrieved`, traced to the line's own call scope) and the line follows in the same scope,
so in the log the speaker's latest retrieval of the same tick before an utterance is the one
behind it. The speaker makes no other retrieval in between.
"""

from __future__ import annotations

from collections.abc import Iterator

from worlds.eventlog import EventReader
from worlds.events import ConversationEnded, ConversationStarted, MemoryRetrievedEvent, Utterance
from worlds.corpus.samples import Memory, TurnSource

_KINDS = {"memory_retrieved", "conversation_started", "utterance", "conversation_ended"}


def conversation_sources(reader: EventReader) -> Iterator[tuple[str, list[TurnSource]]]:
    """Each ended conversation's id and its lines' sources, in the order `read_conversations` yields them."""
    latest: dict[str, MemoryRetrievedEvent] = {}
    open_: dict[str, list[TurnSource]] = {}
    for event in reader.events(_KINDS, complete_ticks_only=True):
        if isinstance(event, MemoryRetrievedEvent):
            latest[event.agent] = event
        elif isinstance(event, ConversationStarted):
            open_[event.conversation_id] = []
        elif isinstance(event, Utterance) and event.conversation_id in open_:
            retrieval = latest.pop(event.speaker, None)
            memories = [Memory(id=found.id, text=found.text) for found in retrieval.results] \
                if retrieval is not None and retrieval.tick == event.tick else []
            open_[event.conversation_id].append(TurnSource(speaker=event.speaker, memories=memories))
        elif isinstance(event, ConversationEnded) and event.conversation_id in open_:
            yield event.conversation_id, open_.pop(event.conversation_id)
