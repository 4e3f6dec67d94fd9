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
from typing import Any

import pytest
from typer.testing import CliRunner

from mapcoder_lite.collection import collect_problems
from mapcoder_lite.collection.cli import extract_command
from mapcoder_lite.collection.relabel import relabel, relabel_work
from mapcoder_lite.evals import Problem, read_results
from mapcoder_lite.evals.datasets import load_problems
from mapcoder_lite.graph import Context
from mapcoder_lite.roles import AGENTS
from mapcoder_lite.serving.vllm import VLLMServer
from tests.commands import command_app

pytestmark = pytest.mark.integration

DATA_DIR = Path(__file__).resolve().parents[3] / "shared" / "data"


@pytest.fixture(scope="module")
def collected(vllm_server: VLLMServer, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[Problem], Any]:
    """The collection both tests read: two samples of each of two MBPP training problems."""
    problems = load_problems("mbpp", "train", limit=2, data_dir=DATA_DIR, source="local")
    context = Context(base_url=vllm_server.base_url, model=vllm_server.served_model_name, k=1, t=1, max_tokens=128,
                      test_timeout_s=5.0, request_timeout_s=300.0)
    out = tmp_path_factory.mktemp("collections") / "traj_self-mbpp-train"
    summary = asyncio.run(collect_problems("traj_self", problems, dataset="mbpp", split="train", context=context,
                                           out_dir=out, samples=2, progress=False, concurrency=2))
    return out, list(problems), summary


def test_traj_self_on_vllm_samples_mbpp_training_problems_and_extract_reports_every_agent(
    vllm_server: VLLMServer, collected: tuple[Path, list[Problem], Any], tmp_path: Path
) -> None:
    out, problems, summary = collected
    name = vllm_server.served_model_name
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

    app = command_app("extract", extract_command)
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


def test_relabel_on_vllm_asks_the_teacher_in_format_and_keeps_the_agents_normal_prompts(
    vllm_server: VLLMServer, collected: tuple[Path, list[Problem], Any], tmp_path: Path
) -> None:
    """The same server plays the teacher: every task is answered through the roles' grammars (no format
    failure), the debugger teacher's prompt holds the reference and the example's prompt does not, and
    what extraction keeps agrees with the records (a 135M teacher's fix rarely passes)."""
    source, problems, _ = collected
    # Room for the longest answer a grammar allows: an answer cut at max_tokens is a format failure.
    teacher = Context(base_url=vllm_server.base_url, model=vllm_server.served_model_name, max_tokens=1024,
                      test_timeout_s=5.0, request_timeout_s=300.0)
    work = relabel_work([source], problems=problems)
    assert any(task.role == "debugger" for task in work.tasks)  # a 135M student fails a plan of MBPP's
    out = tmp_path / "relabel"
    summary = asyncio.run(relabel([source], context=teacher, problems=problems, out_dir=out, progress=False,
                                  concurrency=2))

    assert (summary.tasks, summary.done, summary.errors) == (len(work.tasks), len(work.tasks), 0)
    records = read_results(out / "results.jsonl")
    assert all(sum(r["format_failures"].values()) == 0 for r in records)
    references = {p.reference.strip() for p in problems}
    for record in records:
        (call,) = json.loads((out / record["trajectory_file"]).read_text())["trajectory"]
        shown, kept = json.dumps(call["messages"]), json.dumps(call["relabel"]["prompt"])
        if record["role"] == "debugger":
            assert call["reference"] in references and call["reference"] in call["messages"][-1]["content"]
        assert not any(reference in kept for reference in references) and "What happened to this plan" not in kept
        assert len(shown) > len(kept)
    kept = {role: stats["examples"]["total"] for role, stats in summary.datasets.items()}
    passing_fixes = sum(r["passed"] for r in records if r["role"] == "debugger")
    print(f"relabel on {vllm_server.served_model_name}: {len(records)} teacher calls, {passing_fixes} fixes "
          f"passing the hidden tests; examples {kept}")
    assert kept.get("debugger", 0) <= passing_fixes


def test_traj_direct_on_vllm_samples_the_coder_and_keeps_only_passing_direct_answers(
    vllm_server: VLLMServer, tmp_path: Path
) -> None:
    """traj_direct: one coder call per sample, the direct prompt with nothing of the hidden tests or the
    reference in it; extraction keeps at most one coder example per passing run; the relabel pass finds
    nothing to relabel in it (no plans)."""
    problems = load_problems("mbpp", "train", limit=2, data_dir=DATA_DIR, source="local")
    context = Context(base_url=vllm_server.base_url, model=vllm_server.served_model_name, max_tokens=256,
                      test_timeout_s=5.0, request_timeout_s=300.0)
    out = tmp_path / "traj_direct-mbpp-train"
    summary = asyncio.run(collect_problems("traj_direct", problems, dataset="mbpp", split="train", context=context,
                                           out_dir=out, samples=2, progress=False, concurrency=2))
    assert (summary.run.done, summary.run.errors) == (4, 0)
    records = read_results(out / "results.jsonl")
    secrets = [test for p in problems for test in p.hidden_tests[1:]] + [p.reference for p in problems]
    for record in records:
        (call,) = json.loads((out / record["trajectory_file"]).read_text())["trajectory"]
        assert (call["role"], call["model"]) == ("coder", vllm_server.served_model_name)
        assert not any(secret and secret in json.dumps(call["messages"]) for secret in secrets)
    assert set(summary.examples) == {"coder"} and summary.examples["coder"] <= sum(r["passed"] for r in records)
    assert relabel_work([out], problems=problems).tasks == []
