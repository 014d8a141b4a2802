"""What cognition needs to know of the world's map, as a protocol so agents never import worlds."""

from __future__ import annotations

from typing import Protocol


class Map(Protocol):
    """Place names, and turning a model's free-text place or object into a known one."""

    def place_names(self) -> list[str]: ...

    def places_to_list(self, home: str, known: list[str]) -> list[str]: ...

    def objects_at(self, place: str) -> dict[str, str]: ...

    def resolve_place(self, text: str, default: str) -> str: ...

    def resolve_object(self, place: str, text: str) -> str | None: ...
