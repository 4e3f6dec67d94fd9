"""A benchmark's records, from a local JSONL file or a Hugging Face dataset, each problem once.

Every loader reads its records through `distinct_records`: a row that repeats an earlier one
exactly is loaded once (published files do this), and two different rows with one id are an error.
"""

from __future__ import annotations

import gzip
import json
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mapcoder_lite.evals.datasets.errors import DataFileError, DatasetError

_log = logging.getLogger(__package__)  # mapcoder_lite.evals.datasets: one logger for the package


def numbered_jsonl(path: Path) -> list[tuple[int, Any]]:
    """(line number, value) of each non-blank line: the numbers let an error point into the file."""
    opener = gzip.open if path.suffix == ".gz" else open
    rows = []
    with opener(path, "rt", encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            if not line.strip():
                continue
            try:
                rows.append((number, json.loads(line)))
            except json.JSONDecodeError as exc:
                raise DataFileError(f"{path}:{number}: not valid JSON ({exc.msg})") from exc
    return rows


@dataclass
class Records:
    """A benchmark file's records with every exact repeat dropped: what a loader converts.

    `repeats` counts, by problem id, the rows dropped as copies of an earlier row; with it a run
    can say how many rows of the file stood behind the problems it scored.
    """

    source: str  # the file's path, or the hub dataset and split
    items: list[dict[str, Any]]
    repeats: dict[str, int] = field(default_factory=dict)

    @property
    def rows(self) -> int:
        return len(self.items) + sum(self.repeats.values())


def distinct_records(numbered: Iterable[tuple[int, Any]], key: Callable[[dict[str, Any]], str],
                     source: str, unit: str = "line") -> Records:
    """Every loader's records pass through here, so the rule is the same for all benchmarks.

    Published files repeat rows (MapCoder's APPS selected150.jsonl holds 150 rows for 128
    problems): a row identical to an earlier one with its id is dropped, with one warning per file,
    so each problem is scored once. Two rows with one id and different content are an error: which
    one is the benchmark cannot be guessed. `key` gives a record's problem id (as its Problem has
    it); `unit` names what the numbers count ("line" in a file, "row" of a hub dataset).
    """
    first: dict[str, tuple[int, dict[str, Any]]] = {}
    records = Records(source, [])
    for number, record in numbered:
        ident = _record_id(record, key, source, f"{unit} {number}")
        if ident not in first:
            first[ident] = (number, record)
            records.items.append(record)
            continue
        earlier, kept = first[ident]
        if record != kept:
            differing = sorted(k for k in kept.keys() | record.keys() if kept.get(k) != record.get(k))
            raise DataFileError(
                f"{source}: {unit}s {earlier} and {number} both hold {ident} but differ (in "
                f"{', '.join(differing)}); keep the one that is right and delete the other, or give it its own id")
        records.repeats[ident] = records.repeats.get(ident, 0) + 1
    dropped = sum(records.repeats.values())
    if dropped:
        _log.warning("%s: dropped %d %s%s that repeat an earlier %s exactly: %d distinct problems in %d %ss",
                     source, dropped, unit, "s" if dropped > 1 else "", unit, len(records.items), records.rows, unit)
    return records


def _record_id(record: Any, key: Callable[[dict[str, Any]], str], source: str, where: str) -> str:
    if not isinstance(record, dict):
        raise DataFileError(f"{source}: {where} is a JSON {type(record).__name__}, not an object (one problem a line)")
    try:
        return key(record)
    except KeyError as exc:
        raise DataFileError(f"{source}: {where} has no {exc} field, which names its problem") from exc


def read_records(path: Path, key: Callable[[dict[str, Any]], str]) -> Records:
    """A local benchmark file's distinct records (see `distinct_records`)."""
    return distinct_records(numbered_jsonl(path), key, str(path))


def hub_records(name: str, config: str | None, split: str, key: Callable[[dict[str, Any]], str]) -> Records:
    """The distinct rows of a Hugging Face dataset (see `distinct_records`; `key` gives a row's
    problem id); `datasets` is imported lazily, and a clear error when offline."""
    try:
        import datasets  # heavy and optional: only the hub path needs it
    except ImportError as exc:
        raise DatasetError(f"loading {name} from the Hugging Face Hub needs the datasets package "
                           "(pip install datasets); or load a local file with --data-dir") from exc
    try:
        rows = datasets.load_dataset(name, config, split=split) if config else \
            datasets.load_dataset(name, split=split)
    except Exception as exc:  # offline, renamed, gated: all end the same way for the user
        raise DatasetError(f"could not load {name} (split {split!r}) from the Hugging Face Hub: "
                           f"{type(exc).__name__}: {str(exc)[:300]}. Without network, point --data-dir at "
                           "a local copy laid out like MapCoder's data/ folder") from exc
    source = f"{name}{f' ({config})' if config else ''}, {split} split, on the Hugging Face Hub"
    return distinct_records(enumerate((dict(row) for row in rows), 1), key, source, unit="row")
