"""traj_self against the session's real vLLM server (see conftest): `smollm2-135m-instruct` plays every
agent, two samples of each of two MBPP training problems at temperature 0.8, then `extract`.

A 135M model rarely solves an MBPP problem, so the test checks the run records (one per sample, every
call the student's, nothing of the hidden tests or the reference solution in a prompt) and that the
per-agent counts extraction reports agree with the records: no example for the retriever, planner,
coder or debugger without a passing run.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from mapcoder_lite.collection import collect_problems
from mapcoder_lite.collection.cli import extract_command
from mapcoder_lite.evals import read_results
from mapcoder_lite.evals.datasets import load_problems
from mapcoder_lite.graph import Context
from mapcoder_lite.roles import AGENTS
from mapcoder_lite.serving.vllm import VLLMServer

pytestmark = pytest.mark.integration

DATA_DIR = Path(__file__).resolve().parents[3] / "shared" / "data"


def test_traj_self_on_vllm_samples_mbpp_training_problems_and_extract_reports_every_agent(
    vllm_server: VLLMServer, tmp_path: Path
) -> None:
    problems = load_problems("mbpp", "train", limit=2, data_dir=DATA_DIR, source="local")
    name = vllm_server.served_model_name
    context = Context(base_url=vllm_server.base_url, model=name, k=1, t=1, max_tokens=128, test_timeout_s=5.0,
                      request_timeout_s=300.0)
    out = tmp_path / "traj_self"
    summary = asyncio.run(collect_problems("traj_self", problems, dataset="mbpp", split="train", context=context,
                                           out_dir=out, samples=2, progress=False, concurrency=2))

    assert (summary.run.done, summary.run.errors) == (4, 0)
    settings = json.loads((out / "run.json").read_text())["settings"]
    assert (settings["track"], settings["samples"], settings["temperature"]) == ("traj_self", 2, 0.8)
    assert settings["teachers"] == {} and set(settings["students"].values()) == {name}
    records = read_results(out / "results.jsonl")
    assert sorted(r["id"] for r in records) == sorted(f"{p.id}#{n}" for p in problems for n in (1, 2))
    secrets = [test for p in problems for test in p.hidden_tests[1:]] + [p.reference for p in problems]
    for record in records:
        saved = json.loads((out / record["trajectory_file"]).read_text())
        calls = saved["trajectory"]
        assert calls[0]["role"] == "retriever" and {c["role"] for c in calls} <= set(AGENTS)
        assert {c["model"] for c in calls} == {name}
        prompts = json.dumps([c["messages"] for c in calls])
        assert not any(secret and secret in prompts for secret in secrets)

    app = typer.Typer()
    app.command("extract")(extract_command)
    app.command("noop")(lambda: None)  # two commands, so typer keeps the command name
    result = CliRunner().invoke(app, ["extract", str(out), "--out", str(tmp_path / "sft"), "--validation-fraction",
                                      "0.5"])
    assert result.exit_code == 0, result.output
    stats = {role: json.loads((tmp_path / "sft" / role / "stats.json").read_text()) for role in AGENTS}
    counts = {role: s["examples"]["total"] for role, s in stats.items()}
    assert all(role in result.output for role in AGENTS)
    passed = sum(r["passed"] for r in records)
    print(f"traj_self on {name}: {passed}/4 runs passed; examples per agent {counts}; "
          f"candidates {({role: s['candidates'] for role, s in stats.items()})}")
    assert all(s["candidates"] >= s["examples"]["total"] for s in stats.values())
    assert stats["retriever"]["candidates"] == 4  # one retrieval per run
    if not passed:
        assert {role: n for role, n in counts.items() if role != "confidence"} == dict.fromkeys(
            ("retriever", "planner", "coder", "debugger"), 0)
        assert counts["confidence"] == 0  # failed plans only: balanced away
    else:
        assert counts["retriever"] >= 1 and counts["planner"] >= 1
