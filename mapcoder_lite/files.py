"""Writing result files so that a kill never leaves half a file (runs, datasets, manifests, state)."""

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
