"""Writing result files so that a kill never leaves half a file (runs, datasets, manifests, state), and
reading back a JSON Lines file that a kill may have cut short."""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

# What a folder was made from and how (a trained adapter, a training set, an exemplar bank): one name for all.
MANIFEST_FILE = "manifest.json"


def write_atomic(path: str | os.PathLike[str], text: str) -> None:
    """Write to a temporary file beside `path`, flush it to disk, then rename it over `path`."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", encoding="utf-8") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


def jsonl(rows: Iterable[dict[str, Any]]) -> str:
    """Rows as JSON Lines text, one object per line, each ending in a newline."""
    return "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)


class JsonlError(ValueError):
    """A line of a JSON Lines file that is not JSON, and not the last line a kill can cut short."""

    def __init__(self, path: Path, line: int, reason: str) -> None:
        self.path, self.line, self.reason = path, line, reason
        super().__init__(f"{path}:{line}: not a JSON line ({reason}); only the last line may be cut short")


def read_jsonl(path: str | os.PathLike[str]) -> list[tuple[int, Any]]:
    """(line number, value) for each non-blank line of a file appended line by line; none when there is
    no file. The last line is skipped when it is not JSON (a kill mid-write cut it); any other such line
    is a JsonlError naming the file and line."""
    path = Path(path)
    if not path.is_file():
        return []
    lines = path.read_text(encoding="utf-8").splitlines()
    last = max((i for i, line in enumerate(lines) if line.strip()), default=-1)
    values = []
    for index, line in enumerate(lines):
        if not line.strip():
            continue
        try:
            values.append((index + 1, json.loads(line)))
        except json.JSONDecodeError as exc:
            if index != last:
                raise JsonlError(path, index + 1, exc.msg) from None
    return values


def cut_partial_line(path: str | os.PathLike[str]) -> None:
    """Drop a last line without its newline (a kill during a write) before appending to the file, so
    that the next line does not join it."""
    path = Path(path)
    if not path.is_file():
        return
    with open(path, "rb+") as handle:
        data = handle.read()
        if data and not data.endswith(b"\n"):
            handle.truncate(data.rfind(b"\n") + 1)
