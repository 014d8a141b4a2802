"""Telling copies apart from new dialogue: exact copies by a normalised hash, near copies by MinHash LSH."""

from __future__ import annotations

import hashlib

import mmh3
from datasketch import MinHash, MinHashLSH

from agents.cognition.lines import words
#: Permutations per signature: 128 keeps the Jaccard estimate within a few hundredths at little cost.
PERMUTATIONS = 128
#: Made once: drawing a MinHash's permutations costs more than hashing a dialogue's shingles.
_TEMPLATE = MinHash(num_perm=PERMUTATIONS, seed=1)


def _murmur32(shingle: bytes) -> int:
    """MurmurHash3, 32 bits: as good a spread as SHA-1's first four bytes (datasketch's default), at half the cost."""
    return mmh3.hash(shingle, signed=False)


def normalised_hash(text: str) -> str:
    """Equal for texts that differ only in case, punctuation and spacing."""
    return hashlib.sha256(" ".join(words(text)).encode()).hexdigest()


def _shingles(text: str, ngram: int) -> set[bytes]:
    tokens = words(text)
    if len(tokens) < ngram:
        return {" ".join(tokens).encode()}
    return {" ".join(tokens[i:i + ngram]).encode() for i in range(len(tokens) - ngram + 1)}


class NearDuplicates:
    """Remembers the texts it is shown and says whether each new one copies, or nearly copies, an earlier one.

    Near means an estimated Jaccard similarity of word `ngram`-shingles of at least `threshold`.
    Deterministic: MinHash's permutations come from a fixed seed.
    """

    def __init__(self, threshold: float = 0.8, ngram: int = 3) -> None:
        if not 0.0 < threshold <= 1.0:
            raise ValueError(f"near-duplicate threshold must be in (0, 1], not {threshold}")
        if ngram < 1:
            raise ValueError(f"n-gram size must be at least 1, not {ngram}")
        self.ngram = ngram
        self.threshold = threshold
        self._lsh = MinHashLSH(threshold=threshold, num_perm=PERMUTATIONS)
        self._exact: set[str] = set()
        self._remembered = 0
        #: One signature, cleared for each text: the LSH keeps only its band hashes, and a new MinHash costs more
        #: to set up than to fill.
        self._signature = MinHash(num_perm=PERMUTATIONS, seed=1, permutations=_TEMPLATE.permutations,
                                  scheme=_TEMPLATE.scheme, hashfunc=_murmur32)

    def __len__(self) -> int:
        """How many texts were remembered as new near-copy candidates (each under its own key)."""
        return self._remembered

    def exact_copy(self, text: str) -> bool:
        """Whether a text equal to this one (after normalising) was seen; records it either way."""
        digest = normalised_hash(text)
        seen = digest in self._exact
        self._exact.add(digest)
        return seen

    def near_copy(self, key: str, text: str) -> bool:
        """Whether an earlier text is near this one; a new text is remembered under `key` (unique)."""
        signature = self._signature
        signature.clear()
        signature.update_batch(sorted(_shingles(text, self.ngram)))
        if self._lsh.query(signature):
            return True
        self._lsh.insert(key, signature)
        self._remembered += 1
        return False
