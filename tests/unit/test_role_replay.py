"""benchmarks/role_replay.py: which recorded prompts it replays, with which labels, and how it judges."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from types import ModuleType

from mapcoder_lite.graph import Context
from tests.modules import load_benchmark
from tests.scripted import scripted
from tests.toy_collection import base_scripts, collect, mark, sample_only, solution, toy


def replay_module() -> ModuleType:
    return load_benchmark("role_replay")


def test_replayed_confidence_prompts_carry_their_plans_outcome_and_answers_are_judged(tmp_path: Path) -> None:
    replay = replay_module()
    models = scripted(**base_scripts(coder=lambda p: sample_only(p) if mark(p) == 1 else solution(p)))
    collect("traj_ret", toy(3), tmp_path, models, Context(model="m", k=1, t=1, test_timeout_s=5.0))

    prompts = list(replay.recorded_prompts(tmp_path, "confidence", limit=None))
    labels = {p.problem: p.label for p in prompts}
    assert labels == {"T/0": "passed", "T/1": "failed", "T/2": "passed"}
    assert all(p.messages[-1]["role"] == "user" and f"MARK-{p.problem[-1]}" in p.messages[-1]["content"]
               for p in prompts)
    assert len(list(replay.recorded_prompts(tmp_path, "confidence", limit=2))) == 2

    failed = next(p for p in prompts if p.label == "failed")
    low = "<root><explanation>misses a case</explanation><confidence>20</confidence></root>"
    assert replay.judge("confidence", failed, low) == {"strict": True, "readable": True, "score": 20, "agrees": True}
    placeholder = "<root><explanation>x</explanation><confidence>YOUR SCORE: ONE WHOLE NUMBER</confidence></root>"
    assert replay.judge("confidence", failed, placeholder) == {"strict": False, "readable": False, "score": None}

    rows = [{"run": "r", "model": "base", "label": "failed", "completion_tokens": 9} | replay.judge(
                "confidence", failed, placeholder),
            {"run": "r", "model": "tuned", "label": "failed", "completion_tokens": 5} | replay.judge(
                "confidence", failed, low)]
    table = replay.summarize(rows, "confidence")
    assert [(t["model"], t["strict"], t["agrees"], t["score_failed"]) for t in table] == [
        ("base", 0, "0/0", None), ("tuned", 1, "1/1", 20)]
    assert "| r | tuned | 1 | 1 (100%) | 1 (100%) | 5 | 1/1 | - | 20 |" in replay.markdown(table, "confidence")


def test_a_replay_resumes_from_its_own_answers_and_a_line_cut_by_a_kill(tmp_path: Path) -> None:
    replay = replay_module()
    models = scripted(**base_scripts(coder=solution))
    collect("traj_ret", toy(2), tmp_path / "run", models, Context(model="m", k=1, t=1, test_timeout_s=5.0))
    prompts = list(replay.recorded_prompts(tmp_path / "run", "confidence", limit=None))
    out = tmp_path / "replay"
    out.mkdir()
    answered = [json.dumps({"id": p.key, "run": p.run, "problem": p.problem, "model": "base", "label": p.label,
                            "response": "", "completion_tokens": 1, "seconds": 0.1}) for p in prompts]
    (out / "responses.jsonl").write_text("\n".join(answered) + '\n{"id": "cut sho')
    # Every prompt is answered already: nothing to call (the endpoint does not exist), nothing refused.
    asyncio.run(replay.replay(prompts, "confidence", ["base"], "http://127.0.0.1:9/v1", out, concurrency=1))
    assert len(prompts) == 2
    assert (out / "responses.jsonl").read_text() == "\n".join(answered) + "\n"  # the half line is gone
