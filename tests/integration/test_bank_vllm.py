"""Retrieval from a real exemplar bank against the real vLLM server: a bank built from MBPP's train split
(programs verified in the sandbox), then an eval run of an MBPP test problem with retrieval 'bank'."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from mapcoder_lite.bank import load_bank
from mapcoder_lite.bank.build import build_bank
from mapcoder_lite.evals import Runner, RunSettings, load_problems, make_strategy
from mapcoder_lite.graph import Context

pytestmark = pytest.mark.integration

K = 3


def test_bank_retrieval_gives_the_planner_k_training_exemplars_through_vllm(vllm_server: Any,
                                                                            tmp_path: Path) -> None:
    stats = build_bank("mbpp", ["train"], tmp_path / "bank", limit=12, progress=False)
    assert stats.counts["exemplars"] >= K and stats.counts["problems"] == 12
    bank = load_bank(tmp_path / "bank")
    train = {e.id: e for e in bank.exemplars}
    assert all(e.split == "train" and 601 <= int(e.id.split("/")[1]) <= 974 for e in train.values())

    context = Context(base_url=vllm_server.base_url, model=vllm_server.served_model_name, planner_model="planner",
                      coder_model="coder", k=K, t=0, max_tokens=192, direct_first=False, plan_diversity=False,
                      retrieval="bank", bank=str(tmp_path / "bank"))  # every plan is scored, alike or not
    strategy = make_strategy("mapcoder")
    problems = load_problems("mbpp", "test", limit=1)  # MBPP/11: a test problem, never in the bank
    settings = RunSettings.make("mbpp", "test", strategy, context)
    summary = asyncio.run(Runner(tmp_path / "run", strategy, settings, context, progress=False).run(problems))
    assert summary.done == 1 and summary.errors == 0

    recorded = json.loads((tmp_path / "run" / "run.json").read_text())["settings"]
    assert recorded["retrieval"] == "bank" and recorded["bank"] == bank.sha256
    (record,) = [json.loads(line) for line in (tmp_path / "run" / "results.jsonl").read_text().splitlines()]
    calls = json.loads((tmp_path / "run" / record["trajectory_file"]).read_text())["trajectory"]
    roles = [call["role"] for call in calls]
    assert "retriever" not in roles and roles.count("planner") == K and roles.count("confidence") == K
    assert record["llm_calls"] == len(calls) and all(call["completion_tokens"] > 0 for call in calls)
    assert {call["model"] for call in calls if call["role"] == "planner"} == {"planner"}  # its adapter
    shown = []
    for call in calls:
        if call["role"] == "planner":
            prompt = call["messages"][-1]["content"]
            found = [ident for ident, e in train.items() if f"## Example problem\n{e.description}\n" in prompt]
            assert len(found) == 1, prompt[:600]
            shown += found
    assert len(set(shown)) == K  # k different exemplars of MBPP's train split, one per plan
    assert set(shown) == {e.id for e in bank.nearest(problems[0].problem, K, exclude_id=problems[0].id)}
