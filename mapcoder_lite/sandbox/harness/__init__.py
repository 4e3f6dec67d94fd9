"""The two programs a function test runs in the sandbox: the program under test answering questions
(candidate.py) and the test judging the answers (checker.py), each a separate run; codec.py is the
plain-data format between them and the host.

Each is shipped as one self-contained source (codec.py inlined, then the harness, then a call of its
`main` with the run's spec), so the sandbox needs nothing of this package.
"""

from __future__ import annotations

import json
import re
from functools import cache
from pathlib import Path
from typing import Any, Literal

_HERE = Path(__file__).parent
# The block importing the codec from this package: the shipped program has the codec above it instead.
_CODEC_IMPORT = re.compile(r"^from mapcoder_lite\.sandbox\.harness\.codec import \([^)]*\)\n", re.MULTILINE)


@cache
def _source(name: str) -> str:
    codec = (_HERE / "codec.py").read_text(encoding="utf-8")
    harness = (_HERE / f"{name}.py").read_text(encoding="utf-8")
    inlined, count = _CODEC_IMPORT.subn("", harness)
    if count != 1:
        raise RuntimeError(f"harness {name}.py must import the codec in exactly one block")
    return f"{codec}\n\n{inlined}"


def program(name: Literal["candidate", "checker"], spec: dict[str, Any]) -> str:
    """The program text of one harness run."""
    return f"{_source(name)}\n\nmain(_json.loads({json.dumps(spec)!r}))\n"
