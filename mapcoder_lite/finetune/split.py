"""The train/validation split of the problems behind the training examples: one split for every role, so
no problem teaches one agent while it validates another; the samples of one problem stay together."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

SPLITS = ("train", "validation")
VALIDATION_FRACTION = 0.1  # the share of problems held out to validate training
SPLIT_SEED = 0


def hash_unit(seed: int, text: str) -> float:
    """A stable number in [0, 1) for `text`: the same on every machine and run."""
    digest = hashlib.sha256(f"{seed}:{text}".encode()).hexdigest()
    return int(digest[:13], 16) / 16**13


def split_problems(problems: Iterable[str], validation_fraction: float = VALIDATION_FRACTION,
                   seed: int = SPLIT_SEED) -> dict[str, str]:
    """problem -> "train" | "validation", by a stable hash; at least one of each side when there are
    two problems or more and the fraction is strictly between 0 and 1."""
    if not 0 <= validation_fraction < 1:
        raise ValueError(f"validation_fraction must be in [0, 1) (got {validation_fraction})")
    ordered = sorted(set(problems), key=lambda p: hash_unit(seed, p))
    sides = {p: "validation" if hash_unit(seed, p) < validation_fraction else "train" for p in ordered}
    if validation_fraction > 0 and len(ordered) >= 2:
        if "validation" not in sides.values():
            sides[ordered[0]] = "validation"
        if "train" not in sides.values():
            sides[ordered[-1]] = "train"
    return sides
