"""The error every eval failure derives from; below both the run directory and the runner, which raise it."""

from __future__ import annotations


class EvalError(RuntimeError):
    """An eval that cannot start or go on; the message says why."""


__all__ = ["EvalError"]
