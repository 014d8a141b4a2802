"""Harvested samples as the rows of each training format, and the files those rows go into."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal, Protocol

import pyarrow as pa
import pyarrow.parquet as pq

from worlds.corpus.samples import Item, Preference, Sample

HarvestFormat = Literal["openai", "sharegpt", "parquet", "alpaca", "dpo"]
#: Why an item gives no row in a format that takes only part of what a run holds.
NOT_IN_FORMAT = {"alpaca": "not one exchange (alpaca)", "dpo": "no preference pair (dpo)"}
#: Parquet rows per row group written at once: bounds what a parquet harvest holds in memory.
PARQUET_BATCH = 5_000


def chat_messages(system: str, turns: list[tuple[str, str]]) -> list[dict[str, str]]:
    """OpenAI chat messages, the shape openai and parquet rows share, so both read the same to a trainer."""
    return [{"role": "system", "content": system}] + [{"role": role, "content": text} for role, text in turns]


def _with_metadata(row: dict[str, Any], metadata: dict[str, Any] | None) -> dict[str, Any]:
    if metadata is not None:
        row["metadata"] = metadata
    return row


def chat_row(sample: Sample, fmt: HarvestFormat) -> dict[str, Any]:
    """OpenAI chat messages (also parquet's `messages` column), or ShareGPT's system and human/gpt turns."""
    if fmt == "sharegpt":
        row = {"system": sample.system, "conversations": [
            {"from": "gpt" if role == "assistant" else "human", "value": text} for role, text in sample.turns]}
    else:
        row = {"messages": chat_messages(sample.system, sample.turns)}
    return _with_metadata(row, sample.metadata)


def alpaca_row(sample: Sample) -> dict[str, Any] | None:
    """Instruction, input and output from one exchange; None for anything longer (alpaca has no turns)."""
    if sample.instruction is not None:
        instruction, given = sample.instruction
    elif [role for role, _ in sample.turns] == ["user", "assistant"]:
        instruction, given = sample.turns[0][1], ""
    else:
        return None
    return _with_metadata({"instruction": instruction, "input": given, "output": sample.turns[-1][1]},
                          sample.metadata)


def dpo_row(pair: Preference) -> dict[str, Any]:
    """TRL's conversational preference shape: the prompt as messages, chosen and rejected as one reply each."""
    return _with_metadata({
        "prompt": chat_messages(pair.system, pair.prompt),
        "chosen": [{"role": "assistant", "content": pair.chosen}],
        "rejected": [{"role": "assistant", "content": pair.rejected}],
    }, pair.metadata)


def rows(item: Item, fmt: HarvestFormat) -> list[dict[str, Any]]:
    """Every row the item gives in the format (none when the format cannot hold it)."""
    if fmt == "dpo":
        return [dpo_row(pair) for pair in item.preferences]
    if fmt == "alpaca":
        return [row for sample in item.samples if (row := alpaca_row(sample)) is not None]
    return [chat_row(sample, fmt) for sample in item.samples]


class RowWriter(Protocol):
    """A corpus file that takes rows run by run: `commit` keeps what came since the last one, `rollback` drops it."""

    def write(self, row: dict[str, Any]) -> None:
        """Take a row, provisionally: it is kept only if its run is read to the end."""

    def commit(self) -> None:
        """Keep every row since the last commit: their run was read whole."""

    def rollback(self) -> None:
        """Drop every row since the last commit: their run failed part-way, and half a run is not kept."""

    def close(self) -> None:
        """Finish the file; rows not committed by now are not in it."""


class JsonlWriter:
    """One JSON object a line; a rollback cuts the file back to the last commit."""

    def __init__(self, path: Path) -> None:
        self._file = path.open("w", encoding="utf-8")
        self._committed = 0

    def write(self, row: dict[str, Any]) -> None:
        """Straight to the file: a rollback cuts it back, so nothing waits in memory."""
        self._file.write(json.dumps(row, ensure_ascii=False) + "\n")

    def commit(self) -> None:
        """Flushed first, so the position kept is where the rows on disk really end."""
        self._file.flush()
        self._committed = self._file.tell()

    def rollback(self) -> None:
        """Cut the file back to the last commit."""
        self._file.seek(self._committed)
        self._file.truncate()

    def close(self) -> None:
        """Close the file; the harvest renames it from `.partial` afterwards."""
        self._file.close()


#: Columns every parquet row has, taken from its metadata (the whole metadata is also kept as JSON).
_META_COLUMNS = {"run": pa.string(), "scenario": pa.string(), "model": pa.string(), "kind": pa.string(),
                 "dialogue_id": pa.string(), "end_reason": pa.string(), "turns": pa.int32()}
_MESSAGES = pa.list_(pa.struct([("role", pa.string()), ("content", pa.string())]))


class ParquetWriter:
    """A `messages` column of {role, content} structs plus metadata columns; a run's rows wait in a spool file
    until it commits, so a run that fails part-way leaves nothing in the parquet file."""

    def __init__(self, path: Path, with_metadata: bool) -> None:
        fields = [("messages", _MESSAGES)]
        if with_metadata:
            fields += [*_META_COLUMNS.items(), ("metadata", pa.string())]
        self.schema = pa.schema(fields)
        self._with_metadata = with_metadata
        self._parquet = pq.ParquetWriter(path, self.schema)
        self._spool_path = path.with_name(path.name + ".spool")
        self._spool = self._spool_path.open("w+", encoding="utf-8")

    def write(self, row: dict[str, Any]) -> None:
        """Into the spool: a parquet file cannot be cut back, so rows reach it only on commit."""
        self._spool.write(json.dumps(row, ensure_ascii=False) + "\n")

    def commit(self) -> None:
        """Move the spooled rows into the parquet file in row groups of `PARQUET_BATCH`, bounding memory."""
        self._spool.seek(0)
        batch: list[dict[str, Any]] = []
        for line in self._spool:
            batch.append(self._columns(json.loads(line)))
            if len(batch) == PARQUET_BATCH:
                self._write_batch(batch)
                batch = []
        if batch:
            self._write_batch(batch)
        self.rollback()

    def rollback(self) -> None:
        """Empty the spool: the parquet file never saw these rows."""
        self._spool.seek(0)
        self._spool.truncate()

    def close(self) -> None:
        """Write the parquet footer (the file is unreadable without it) and remove the spool."""
        self._parquet.close()
        self._spool.close()
        self._spool_path.unlink(missing_ok=True)

    def _columns(self, row: dict[str, Any]) -> dict[str, Any]:
        columns: dict[str, Any] = {"messages": row["messages"]}
        if self._with_metadata:
            meta = row.get("metadata") or {}
            for name in _META_COLUMNS:
                columns[name] = meta.get(name)
            columns["dialogue_id"] = meta.get("conversation_id") or meta.get("session_id")
            columns["turns"] = meta.get("turns", meta.get("messages"))
            columns["metadata"] = json.dumps(meta, ensure_ascii=False)
        return columns

    def _write_batch(self, batch: list[dict[str, Any]]) -> None:
        self._parquet.write_table(pa.Table.from_pylist(batch, schema=self.schema))


def open_writer(path: Path, fmt: HarvestFormat, with_metadata: bool) -> RowWriter:
    """Parquet needs a writer of its own (columns, a footer); every other format is JSON lines."""
    return ParquetWriter(path, with_metadata) if fmt == "parquet" else JsonlWriter(path)
