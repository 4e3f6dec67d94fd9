"""`Pipeline.run()` end to end on smollm2-135m: extract → real training → real vLLM with the trained
adapters → eval of direct, MapCoder and MapCoder-Lite → report; then again, and nothing is redone.

The collections are written by hand (the 135M model passes almost nothing, so its own trajectories
would give no training data); that they are complete is what lets the collect stage start no server.
Real collection against vLLM is tested in test_collect_vllm.py.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mapcoder_lite.pipeline import Pipeline, parse_config
from mapcoder_lite.serving.vllm import free_port
from tests.collection_files import FIXED_PLAN, FIXING, call, retrieval, write_run
from tests.servers import need

pytestmark = pytest.mark.integration

DATA_DIR = Path(__file__).resolve().parents[3] / "shared" / "data"
PROBLEMS = ("MBPP/601", "MBPP/602")  # the first two of MBPP's train split: what [collect] limit = 2 selects


@pytest.fixture(scope="module")
def finished(model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Pipeline, list[str], list[str]]:
    need(["vllm", "torch", "transformers", "peft"])
    work = tmp_path_factory.mktemp("pipeline")
    port = free_port()
    config = parse_config({
        "workdir": str(work), "data_dir": str(DATA_DIR), "source": "local", "max_tokens": 128,
        "models": {"student": str(model_dir), "teacher": str(model_dir)},
        "serving": {"student_port": port, "teacher_port": port, "kv_cache_gib": 1, "max_model_len": 2048},
        "collect": {"limit": 2, "tracks": ["traj_ret", "traj_debug"], "k": 1, "t": 1, "validation_fraction": 0.0},
        "finetune": {"agents": ["retriever", "debugger", "coder"], "min_examples": 1, "max_steps": 2,
                     "micro_batch": 2, "batch": 2},
        "eval": {"benchmarks": [{"dataset": "humaneval", "limit": 2}],
                 "strategies": ["direct", "mapcoder", "mapcoder-lite"], "k": 1, "t": 1, "concurrency": 2,
                 "direct_first": False},  # every agent, so every trained adapter, takes a turn
    })
    pipeline = Pipeline(config, log=(first := []).append, progress=False)
    write_run(pipeline.collect_dir("traj_ret", "train"), "traj_ret", {
        pid: {"trajectory": [call("retriever", f"problem {pid}", retrieval(i))]} for i, pid in enumerate(PROBLEMS)})
    write_run(pipeline.collect_dir("traj_debug", "train"), "traj_debug", {
        pid: {"trajectory": [call("debugger", f"fix {pid}", FIXING)], "plans": [FIXED_PLAN]} for pid in PROBLEMS})
    pipeline.run()
    again = Pipeline(config, log=(second := []).append, progress=False)
    again.run()
    return pipeline, first, second


def test_collect_is_skipped_and_agents_with_data_are_trained(finished: tuple[Pipeline, list[str], list[str]]) -> None:
    pipeline, first, _ = finished
    assert "every collection is complete" in first
    for agent in ("retriever", "debugger"):
        adapter = pipeline.adapter_dir(agent)
        manifest = json.loads((adapter / "manifest.json").read_text())
        assert manifest["agent"] == agent and manifest["hyperparameters"]["max_steps"] == 2
        assert (adapter / "adapter_model.safetensors").is_file()
    assert not pipeline.adapter_dir("coder").exists()  # no coder data: it keeps the base model
    state = json.loads((pipeline.workdir / "pipeline.json").read_text())
    assert state["stages"]["finetune"]["agents"]["coder"].startswith("not trained: 0 examples")
    assert set(state["stages"]) == {"prepare", "collect", "extract", "finetune", "eval", "report"}


def test_mapcoder_lite_reaches_the_trained_adapters_on_a_real_server(
        finished: tuple[Pipeline, list[str], list[str]]) -> None:
    pipeline, first, _ = finished
    bench = pipeline.config.eval.benchmarks[0]
    for strategy in ("direct", "mapcoder", "mapcoder-lite"):
        rows = [json.loads(line) for line in (pipeline.eval_dir(bench, strategy) / "results.jsonl").open()]
        assert sorted(r["id"] for r in rows) == ["HumanEval/0", "HumanEval/1"]
        assert all(r["error"] is None for r in rows), rows
    lite = pipeline.eval_dir(bench, "mapcoder-lite")
    models = json.loads((lite / "run.json").read_text())["settings"]["models"]
    base = pipeline.config.models.student.rsplit("/", 1)[-1]
    assert models == {"retriever": "retriever", "planner": base, "confidence": base, "coder": base,
                      "debugger": "debugger"}
    trajectory = json.loads(next((lite / "trajectories").iterdir()).read_text())["trajectory"]
    assert {c["role"]: c["model"] for c in trajectory}["retriever"] == "retriever"  # vLLM answered as the adapter
    # The eval server was started by the pipeline, with our CPU LoRA ops in it.
    from mapcoder_lite.serving.cpu_lora import PATCHED_MESSAGE

    (log,) = (pipeline.workdir / "logs").glob("*-lora.log")
    assert PATCHED_MESSAGE in log.read_text()
    assert any(line.startswith("starting vLLM") for line in first)


def test_report_and_a_second_run_that_redoes_nothing(finished: tuple[Pipeline, list[str], list[str]]) -> None:
    pipeline, _, second = finished
    report = (pipeline.workdir / "report.md").read_text()
    assert "## humaneval-test-2" in report and "mapcoder-lite" in report and "| retriever | 2 |" in report
    assert (pipeline.workdir / "report-humaneval-test-2.png").stat().st_size > 0
    assert "every collection is complete" in second and "every eval run is complete" in second
    assert any("retriever: adapter up to date" in line for line in second)
    assert not any(line.startswith("starting vLLM") for line in second)
