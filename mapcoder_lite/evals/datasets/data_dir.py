"""Where the benchmark files are: the data directory, and a benchmark's file in it."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from mapcoder_lite.evals.datasets.errors import DatasetError

DATA_DIR_ENV = "MAPCODER_LITE_DATA_DIR"


def repo_root() -> Path:
    return Path(__file__).resolve().parents[3]


def default_data_dir() -> Path | None:
    """$MAPCODER_LITE_DATA_DIR, else ../shared/data beside the repository (or the working dir)."""
    env = os.environ.get(DATA_DIR_ENV)
    if env:
        return Path(env)
    for base in (repo_root(), Path.cwd()):
        candidate = (base / ".." / "shared" / "data").resolve()
        if candidate.is_dir():
            return candidate
    return None


def find_file(data_dir: Path | None, candidates: tuple[str, ...], label: str,
              fallback: Callable[[tuple[str, ...]], Path] | None = None) -> Path:
    """The first of `candidates` (paths relative to the data directory) that is there.

    Without one, `fallback` (given the candidates) finds the file elsewhere or raises; without a
    fallback, the error says what to pass.
    """
    if data_dir is not None:
        for relative in candidates:
            if (data_dir / relative).is_file():
                return data_dir / relative
    if fallback is not None:
        return fallback(candidates)
    if data_dir is None:
        raise DatasetError(
            f"{label}: no data directory; pass --data-dir (or set ${DATA_DIR_ENV}) to a folder laid out "
            f"like MapCoder's data/ (e.g. {candidates[0]}), or use --source hub")
    raise DatasetError(f"{label}: none of {', '.join(candidates)} under {data_dir}; "
                       "pass --data-dir, or --source hub when the network is there")
