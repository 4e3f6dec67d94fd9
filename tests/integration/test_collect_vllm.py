"""A short collection against the real vLLM server of the session (see conftest).

`smollm2-135m-instruct` stands in for the teacher and the supervisor; the `planner` and `coder` LoRA
adapters play the students of those roles. A 135M model rarely solves anything, so the test checks
that the collections complete and leave everything on disk (results, trajectories, datasets with
stats, the settings) and not how many examples they keep.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from mapcoder_lite.collection import SupervisorContext, collect_problems
from mapcoder_lite.evals import Problem, read_results
from mapcoder_lite.finetune.data import extract
from mapcoder_lite.serving.vllm import VLLMServer

pytestmark = pytest.mark.integration

PROBLEMS = [
    Problem(
        id="I/add",
        problem="Write add(a, b) that returns the sum of a and b.",
        sample_tests=["assert add(1, 2) == 3"],
        entry_point="add",
        hidden_tests=["assert add(10, 5) == 15", "assert add(-4, 4) == 0"],
    ),
    Problem(
        id="I/double",
        problem="Write double(x) that returns twice x.",
        sample_tests=["assert double(3) == 6"],
        entry_point="double",
        hidden_tests=["assert double(0) == 0", "assert double(-7) == -14"],
    ),
]


def test_short_collections_on_vllm_write_results_datasets_stats_and_settings(
    vllm_server: VLLMServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("DEEPSEEK_API_KEY", raising=False)  # the supervisor is the local server, keyless
    base, name = vllm_server.base_url, vllm_server.served_model_name
    context = SupervisorContext(
        base_url=base,
        model=name,
        planner_model="planner",
        coder_model="coder",
        supervisor_model=name,
        supervisor_base_url=base,
        correction_rounds=1,
        k=1,
        t=1,
        max_tokens=96,
        test_timeout_s=5.0,
        request_timeout_s=300.0,
    )
    runs = {}
    for track in ("traj_plan_code_supervised", "traj_ret"):
        out = tmp_path / track
        summary = asyncio.run(
            collect_problems(
                track,
                PROBLEMS,
                dataset="integration",
                split="train",
                context=context,
                out_dir=out,
                progress=False,
                concurrency=2,
            )
        )
        runs[track] = out
        assert (summary.run.done, summary.run.errors) == (2, 0)
        records = read_results(out / "results.jsonl")
        assert sorted(r["id"] for r in records) == ["I/add", "I/double"]
        for record in records:
            saved = json.loads((out / record["trajectory_file"]).read_text())
            assert saved["trajectory"] and saved["trajectory"][0]["role"] == "retriever"
            assert all(call["model"] for call in saved["trajectory"])
        for role in summary.datasets:
            stats = json.loads((out / "datasets" / role / "stats.json").read_text())
            assert stats["candidates"] >= stats["examples"]["total"] >= 0 and "reasons" in stats["dropped"]
            assert (out / "datasets" / role / "train.jsonl").is_file()
        assert (out / "datasets" / "manifest.json").is_file()

    supervised = runs["traj_plan_code_supervised"]
    settings = json.loads((supervised / "run.json").read_text())["settings"]
    assert settings["supervisor"] == {
        "model": name,
        "base_url": base,
        "correction_rounds": 1,
        "hidden_report": "failing",
    }
    assert settings["teachers"] == {"supervisor": name}
    assert settings["students"]["planner"] == "planner" and settings["students"]["retriever"] == name
    assert (settings["k"], settings["t"], settings["max_tokens"]) == (1, 1, 96)
    assert set(json.loads((supervised / "datasets" / "manifest.json").read_text())["roles"]) == {
        "planner",
        "coder",
        "confidence",
    }
    failed = [r for r in read_results(supervised / "results.jsonl") if not r["passed"]]
    for record in failed:  # a failing first pass went to the supervisor (readable or not, it is counted)
        roles = [c["role"] for c in json.loads((supervised / record["trajectory_file"]).read_text())["trajectory"]]
        assert "supervisor" in roles
    ret = json.loads((runs["traj_ret"] / "run.json").read_text())["settings"]
    assert ret["teachers"] == {"retriever": name} and ret["supervisor"] is None

    # Both collections together: one split over all roles.
    merged = extract(list(runs.values()), tmp_path / "sft", validation_fraction=0.5)
    assert set(merged) == {"retriever", "planner", "coder", "confidence"}
