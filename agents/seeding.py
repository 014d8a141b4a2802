"""Seeds derived from names, equal in every process (unlike hash()), so runs repeat byte for byte."""

from __future__ import annotations

import hashlib
import random


def stable_int(*parts: object, bits: int = 64) -> int:
    """A non-negative integer of `bits` bits drawn from the parts' SHA-256."""
    digest = hashlib.sha256("|".join(map(str, parts)).encode()).digest()
    return int.from_bytes(digest[:8], "big") >> (64 - bits)


def stable_rng(*parts: object) -> random.Random:
    """A random generator seeded from the parts."""
    return random.Random(stable_int(*parts))
