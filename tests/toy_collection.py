"""Toy problems and scripted agents for collection runs, and a collection over them.

Each problem's statement carries a mark ``[MARK-i]``, so a scripted agent can tell (from any prompt
of it) which problem it answers and answer rightly or wrongly on purpose; the hidden test uses
SECRET and the reference solution REFERENCE, neither of which may reach an agent's prompt.
"""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path
from typing import Any

from mapcoder_lite.collection import collect_problems
from mapcoder_lite.evals import Problem
from mapcoder_lite.graph import Context

SECRET = 987654
REFERENCE = "REFERENCE-SOLUTION"
STRICT = ("<root>\n<problem>\n<description>Add a constant MARK</description>\n<code>y = x + 1</code>\n"
          "<planning>1. add</planning>\n</problem>\n<algorithm>Arithmetic</algorithm>\n</root>")
CONFIDENT = "<root><explanation>looks right</explanation><confidence>90</confidence></root>"


def toy(count: int = 4) -> list[Problem]:
    return [Problem(id=f"T/{i}", problem=f"Write plus{i}(x) returning x + {i}. [MARK-{i}]",
                    sample_tests=[f"assert plus{i}(1) == {1 + i}"], entry_point=f"plus{i}",
                    hidden_tests=[f"assert plus{i}({SECRET}) == {SECRET + i}"],
                    reference=f"def plus{i}(x):\n    return x + {i}  # {REFERENCE}") for i in range(count)]


def mark(prompt: str) -> int:
    return int(re.search(r"MARK-(\d+)", prompt).group(1))


def code(i: int, body: str) -> str:
    return f"```python\ndef plus{i}(x):\n    return {body}\n```"


def solution(prompt: str) -> str:
    return code(mark(prompt), f"x + {mark(prompt)}")


def sample_only(prompt: str) -> str:  # passes plus_i(1) == 1 + i, fails the hidden test
    return code(mark(prompt), f"{1 + mark(prompt)} if x == 1 else x")


def base_scripts(**overrides: Any) -> dict[str, Any]:
    """Every agent answering in format and solving the problem, but for the roles overridden."""
    return {"retriever": lambda p: STRICT, "planner": lambda p: "1. add the constant",
            "confidence": lambda p: CONFIDENT, "coder": solution, "debugger": solution} | overrides


def collect(track: str, problems: list[Problem], out: Path, models: dict[str, Any], context: Context,
            **options: Any) -> Any:
    return asyncio.run(collect_problems(track, problems, dataset="toy", split="train", context=context,
                                        out_dir=out, chat_models=models, progress=False, **options))


# Reading what a collection's extraction wrote (under <out>/datasets/<role>/).
def jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def kept(out: Path, role: str) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    folder = out / "datasets" / role
    return [pair for side in ("train", "validation")
            for pair in zip(jsonl(folder / f"{side}.jsonl"), jsonl(folder / f"{side}.meta.jsonl"), strict=True)]


def stats(out: Path, role: str) -> dict[str, Any]:
    return json.loads((out / "datasets" / role / "stats.json").read_text())


def mbpp_training_data(root: Path) -> Path:
    """An MBPP file of two training problems (601, 602: return the argument) for the collect command's
    --data-dir: the second test of each holds SECRET and the reference REFERENCE, neither of which may
    reach a prompt."""
    data = root / "data"
    (data / "MBPPEval").mkdir(parents=True)
    rows = [{"task_id": i, "text": f"Return the argument unchanged ({i}).", "test_setup_code": "",
             "code": f"def f(x):\n    return x  # {REFERENCE}",
             "test_list": [f"assert f({i}) == {i}", f"assert f({SECRET}) == {SECRET}"]} for i in (601, 602)]
    (data / "MBPPEval" / "MBPP.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return data
