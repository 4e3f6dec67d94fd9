"""The pipeline's config, its command line, and its stage decisions (resume, skip, retrain) without servers.

The stages that need real servers and training run in tests/integration/test_pipeline.py.
"""

from __future__ import annotations

import json
import re
import textwrap
import tomllib
from dataclasses import fields
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from mapcoder_lite.cli import app
from mapcoder_lite.graph.context import ROLES, Context
from mapcoder_lite.pipeline import ConfigError, Pipeline, PipelineError, parse_config, render_config
from mapcoder_lite.pipeline import config as pipeline_config
from mapcoder_lite.pipeline import run as pipeline_run

DATA_DIR = Path(__file__).resolve().parents[3] / "shared" / "data"


def test_defaults_render_to_toml_that_parses_back_to_the_same_config(tmp_path: Path) -> None:
    config = parse_config({"workdir": str(tmp_path)})
    again = parse_config(tomllib.loads(render_config(config)))
    assert again == config
    assert again.eval.benchmarks[0].dataset == "humaneval"
    assert again.finetune.rank == 32 and again.finetune.alpha == 32


def test_graph_settings_default_to_the_contexts() -> None:
    """A key the pipeline passes on to the graph's Context has the Context's default, unless the pipeline
    chose its own (collections run fewer debugging rounds); the top-level [bank] is a section, not the
    Context's bank path. A list (eval's structured_outputs) holds the Context's default alone."""
    own = {("collect", "t"), ("top level", "bank")}
    graph = {f.name: f.default for f in fields(Context)}  # not Context(): that reads the environment
    config = pipeline_config.PipelineConfig()
    for section, table in (("top level", config), ("collect", config.collect), ("eval", config.eval)):
        for name in [f.name for f in fields(table) if f.name in graph and (section, f.name) not in own]:
            value = getattr(table, name)  # a list runs each value: by default the Context's alone
            assert value == ([graph[name]] if isinstance(value, list) else graph[name]), f"{section} {name}"


@pytest.mark.parametrize(("data", "message"), [
    ({"colect": {}}, "unknown key(s) ['colect']"),
    ({"collect": {"limt": 3}}, "[collect]: unknown key(s) ['limt']"),
    ({"collect": {"splits": ["train", "test"]}}, "leak"),
    ({"collect": {"tracks": ["traj_everything"]}}, "unknown ['traj_everything']"),
    ({"collect": {"tracks": ["traj_self"], "self_temperature": 0.0}}, "temperature above 0"),
    ({"collect": {"tracks": ["traj_self"], "self_samples": 0}}, "at least 1"),
    ({"collect": {"tracks": ["traj_direct"], "self_temperature": -1.0}}, "traj_direct samples at a temperature"),
    ({"collect": {"tracks": ["traj_direct"], "direct_samples": 0}}, "traj_direct samples must be at least 1"),
    ({"finetune": {"agents": ["tester"]}}, "unknown ['tester']"),
    ({"finetune": {"backend": "magic"}}, "backend 'magic'"),
    ({"eval": {"strategies": ["mapcoder", "oracle"]}}, "unknown ['oracle']"),
    ({"eval": {"benchmarks": [{"dataset": "humaneval", "limt": 2}]}}, "benchmarks entry: unknown key(s) ['limt']"),
    ({"eval": {"benchmarks": [{"dataset": "nosuchbench"}]}}, "nosuchbench"),
    ({"models": {"supervisor": "deepseek-chat"}}, "supervisor_base_url is unset"),
    ({"models": {"teacher": "big"}, "serving": {"teacher_port": 8000}}, "must differ"),
    ({"finetune": {"epochs": "3"}}, "[finetune] epochs = '3': expected int"),
    ({"finetune": {"gradient_checkpointing": 1}}, "gradient_checkpointing = 1: expected bool"),
    ({"collect": {"limit": True}}, "[collect] limit = True: expected int"),
    ({"collect": {"limit": -1}}, "[collect] limit -1: problems per split, 0 for every one"),
    ({"finetune": {"modules": ["q_proj", 2]}}, "modules = ['q_proj', 2]: expected list[str]"),
    ({"eval": {"benchmarks": [{"dataset": "mbpp", "limit": 2.5}]}}, "limit = 2.5: expected int | None"),
    ({"collect": {"relabel": ["confidence", "planner"]}}, "[collect] relabel = ['confidence', 'planner']: relabel: "
                                                          "unknown roles ['planner']; the teacher relabels confidence"),
    ({"collect": {"relabel": "debugger"}}, "[collect] relabel = 'debugger': expected list[str]"),
])
def test_bad_settings_are_named_before_anything_runs(data: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError) as error:
        parse_config(data)
    assert message in str(error.value)


def test_one_model_as_student_and_teacher_may_share_a_port() -> None:
    config = parse_config({"models": {"student": "m", "teacher": "m"}, "serving": {"teacher_port": 8000}})
    assert config.serving.teacher_port == config.serving.student_port


def test_cli_explains_a_missing_or_broken_config(tmp_path: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(app, ["pipeline"])
    assert result.exit_code == 2 and "--print-config" in result.output
    result = runner.invoke(app, ["pipeline", str(tmp_path / "nope.toml")])
    assert result.exit_code == 2 and "no such config file" in result.output
    broken = tmp_path / "broken.toml"
    broken.write_text("[collect\nlimit = 3\n")
    result = runner.invoke(app, ["pipeline", str(broken)])
    assert result.exit_code == 2 and "not valid TOML" in result.output
    good = tmp_path / "good.toml"
    good.write_text(f'workdir = "{tmp_path / "w"}"\n')
    result = runner.invoke(app, ["pipeline", str(good), "--stages", "collect,train"])
    assert result.exit_code == 2 and "choose from" in result.output
    result = runner.invoke(app, ["pipeline", str(good), "--print-config"])
    assert result.exit_code == 0 and parse_config(tomllib.loads(result.output)).workdir == tmp_path / "w"


# ---------------------------------------------------------------- stage decisions


def make_pipeline(tmp_path: Path, **sections: dict[str, Any]) -> tuple[Pipeline, list[str]]:
    logged: list[str] = []
    config = parse_config({"workdir": str(tmp_path / "work"), "data_dir": str(DATA_DIR), "source": "local",
                           **sections})
    pipeline = Pipeline(config, log=logged.append, progress=False)
    pipeline._load_state()
    pipeline.models = pipeline_run.Models(student=tmp_path / "student", teacher=tmp_path / "teacher")
    return pipeline, logged


def example(agent: str, i: int) -> str:
    code = f"```python\ndef f{i}():\n    return {i}\n```"
    answer = code if agent == "coder" else f"1. return {i}\n{code}"  # the debugger explains its fix first
    return json.dumps({"prompt": [{"role": "user", "content": f"Write f{i}."}],
                       "completion": [{"role": "assistant", "content": answer}]})


def write_dataset(pipeline: Pipeline, agent: str, count: int, offset: int = 0) -> None:
    folder = pipeline.datasets_dir / agent
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "train.jsonl").write_text("".join(example(agent, i + offset) + "\n" for i in range(count)))
    (folder / "validation.jsonl").write_text("")


def test_finetune_trains_once_keeps_up_to_date_adapters_and_retrains_on_new_data(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from mapcoder_lite.finetune import train as train_module
    from mapcoder_lite.finetune.manifest import sha256_file, write_manifest

    calls: list[Any] = []

    def fake_train(config: Any) -> Any:
        calls.append(config)
        Path(config.out).mkdir(parents=True, exist_ok=True)
        manifest = {"agent": config.agent, "data": {"sha256": sha256_file(config.data)},
                    "hyperparameters": {"steps": 9}, "resumed_from_step": 5 if len(calls) == 2 else None}
        write_manifest(config.out, manifest)
        return train_module.TrainResult(Path(config.out), manifest)

    monkeypatch.setattr(train_module, "train", fake_train)
    pipeline, logged = make_pipeline(tmp_path, finetune={"agents": ["coder", "debugger"], "min_examples": 3,
                                                         "max_steps": 2})
    write_dataset(pipeline, "coder", 4)
    write_dataset(pipeline, "debugger", 1)

    assert pipeline.finetune() == {"coder": "trained",
                                   "debugger": "not trained: 1 examples (min_examples = 3)"}
    assert [c.agent for c in calls] == ["coder"]
    assert calls[0].max_steps == 2 and calls[0].validation is None  # an empty validation file is no validation
    assert calls[0].base_model == tmp_path / "student"

    assert pipeline.finetune()["coder"] == "kept"
    assert len(calls) == 1

    write_dataset(pipeline, "coder", 4, offset=10)  # new collections changed the data
    assert pipeline.finetune()["coder"] == "trained"
    assert len(calls) == 2 and any("changed" in line for line in logged)
    assert "coder: trained, going on from step 5 of 9 where a stopped training left it" in logged
    state = json.loads((pipeline.workdir / "pipeline.json").read_text())
    assert state["stages"]["finetune"]["agents"]["coder"] == "trained"


def test_complete_collections_and_evals_start_no_server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pipeline, logged = make_pipeline(tmp_path, collect={"limit": 2, "tracks": ["traj_ret"]},
                                     eval={"benchmarks": [{"dataset": "humaneval", "limit": 2}],
                                           "strategies": ["direct"]})

    def no_server(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("a server was started for work that is complete")

    monkeypatch.setattr(pipeline, "_servers", no_server)
    done = {pipeline.collect_dir("traj_ret", "train"): ["MBPP/601", "MBPP/602"],
            pipeline.eval_dir(pipeline.config.eval.benchmarks[0], "direct"): ["HumanEval/0", "HumanEval/1"]}
    for folder, ids in done.items():
        folder.mkdir(parents=True)
        (folder / "results.jsonl").write_text("".join(json.dumps({"id": i, "passed": True}) + "\n" for i in ids))
    pipeline.collect()
    pipeline.evaluate()
    assert "every collection is complete" in logged and "every eval run is complete" in logged

    # One problem short: the stage wants its server back.
    done_dir = next(iter(done))
    (done_dir / "results.jsonl").write_text(json.dumps({"id": "MBPP/601", "passed": True}) + "\n")
    with pytest.raises(AssertionError, match="server was started"):
        pipeline.collect()


def test_eval_runs_of_other_settings_are_refused_and_of_retrained_adapters_kept_aside(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from mapcoder_lite.evals.rundir import RunSettings
    from mapcoder_lite.evals.strategies import make_strategy
    from mapcoder_lite.finetune.manifest import sha256_file

    sections = {"eval": {"benchmarks": [{"dataset": "humaneval", "limit": 1}],
                         "strategies": ["mapcoder", "mapcoder-lite"]}}
    pipeline, logged = make_pipeline(tmp_path, **sections)
    adapter = pipeline.adapter_dir("coder")
    adapter.mkdir(parents=True)
    (adapter / "manifest.json").write_text("{}")
    (adapter / "adapter_model.safetensors").write_bytes(b"first training")
    bench = pipeline.config.eval.benchmarks[0]
    url = "http://127.0.0.1:8000/v1"
    for strategy in ("mapcoder", "mapcoder-lite"):  # both complete, made as the pipeline makes them
        settings = RunSettings.make("humaneval", "test", make_strategy("mapcoder"),
                                    pipeline.eval_context(strategy, url, url))
        if strategy == "mapcoder-lite":
            settings.adapters = {"coder": sha256_file(adapter / "adapter_model.safetensors")}
        folder = pipeline.eval_dir(bench, strategy)
        folder.mkdir(parents=True)
        (folder / "run.json").write_text(json.dumps({"settings": settings.to_dict()}))
        (folder / "results.jsonl").write_text(json.dumps({"id": "HumanEval/0", "passed": True}) + "\n")

    def no_server(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("a server was started")

    monkeypatch.setattr(pipeline, "_servers", no_server)
    pipeline.evaluate()
    assert "every eval run is complete" in logged

    # The coder adapter is trained again: its old MapCoder-Lite run is stale, kept aside, and run again.
    (adapter / "adapter_model.safetensors").write_bytes(b"second training")
    with pytest.raises(AssertionError, match="server was started"):
        pipeline.evaluate()
    lite = pipeline.eval_dir(bench, "mapcoder-lite")
    stale = [p for p in lite.parent.iterdir() if p.name.startswith("mapcoder-lite.before-")]
    assert len(stale) == 1 and (stale[0] / "results.jsonl").is_file() and not lite.exists()
    assert (pipeline.eval_dir(bench, "mapcoder") / "results.jsonl").is_file()  # untouched: no adapters

    # The config changed since (k): an error naming it; the finished run is not touched.
    changed, _ = make_pipeline(tmp_path, eval={**sections["eval"], "k": 2})
    with pytest.raises(PipelineError, match="k: 3 there, 2 now"):
        changed.evaluate()
    assert (pipeline.eval_dir(bench, "mapcoder") / "results.jsonl").is_file()


def test_a_running_server_is_reused_only_when_it_serves_the_same_weights(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pipeline, logged = make_pipeline(tmp_path)
    student = tmp_path / "student"
    adapter = tmp_path / "adapters" / "coder"

    class Refused(Exception):
        pass

    def start(*args: Any, **kwargs: Any) -> Any:
        raise Refused

    monkeypatch.setattr(pipeline_run, "VLLMServer", start)
    monkeypatch.setattr(pipeline_run, "served_roots", lambda url, timeout: {"student": str(student),
                                                                            "coder": str(adapter)})
    with pipeline._servers((student, 8000, None, {"coder": adapter})) as urls:
        assert urls == ["http://127.0.0.1:8000/v1"]
    assert any("using the server already" in line for line in logged)

    other = tmp_path / "elsewhere" / "coder"
    elsewhere = (student, 8000, None, {"coder": other})
    with pytest.raises(PipelineError, match="does not serve"), pipeline._servers(elsewhere):
        pass

    def nothing_there(url: str, timeout: float) -> dict[str, str]:
        raise OSError("connection refused")

    monkeypatch.setattr(pipeline_run, "served_roots", nothing_there)
    with pytest.raises(Refused), pipeline._servers((student, 8000, None, None)):  # nothing there: it starts its own
        pass


def test_servers_load_side_by_side_and_a_failed_one_stops_them_all(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pipeline, _ = make_pipeline(tmp_path)
    events: list[str] = []

    class Server:  # VLLMServer's lifecycle, recorded
        def __init__(self, model: Path, loras: Any, *, port: int, **kwargs: Any) -> None:
            self.port, self.started_in_s = port, 1.0

        def launch(self) -> None:
            events.append(f"launch {self.port}")

        def wait_ready(self) -> None:
            events.append(f"ready {self.port}")
            if self.port == 8001 and "fail" in events:
                raise RuntimeError("vLLM exited while starting")

        def stop(self) -> None:
            events.append(f"stop {self.port}")

    def nothing_there(url: str, timeout: float) -> dict[str, str]:
        raise OSError("connection refused")

    monkeypatch.setattr(pipeline_run, "VLLMServer", Server)
    monkeypatch.setattr(pipeline_run, "served_roots", nothing_there)
    student, teacher = (tmp_path / "student", 8000, [0], None), (tmp_path / "teacher", 8001, [1], None)
    with pipeline._servers(student, teacher) as urls:
        assert urls == ["http://127.0.0.1:8000/v1", "http://127.0.0.1:8001/v1"]
        assert events == ["launch 8000", "launch 8001", "ready 8000", "ready 8001"]  # both load at once
    assert events[4:] == ["stop 8001", "stop 8000"]

    events[:] = ["fail"]
    with pytest.raises(RuntimeError, match="exited"), pipeline._servers(student, teacher):
        pass
    assert events[-2:] == ["stop 8001", "stop 8000"]  # the student that did start is not left running


def test_mapcoder_lite_asks_for_the_trained_agents_and_the_base_model_for_the_rest(tmp_path: Path) -> None:
    pipeline, _ = make_pipeline(tmp_path)
    for agent in ("planner", "coder"):
        pipeline.adapter_dir(agent).mkdir(parents=True)
        (pipeline.adapter_dir(agent) / "manifest.json").write_text("{}")
    lite = pipeline.eval_context("mapcoder-lite", "http://s/v1", "http://t/v1")
    assert {role: lite.model_for(role) for role in ("retriever", "planner", "coder")} == {
        "retriever": "student", "planner": "planner", "coder": "coder"}
    plain = pipeline.eval_context("mapcoder", "http://s/v1", "http://t/v1")
    assert plain.model_for("coder") == "student" and plain.k == 3 and plain.t == Context.t
    teacher = pipeline.eval_context("mapcoder-teacher", "http://s/v1", "http://t/v1")
    assert teacher.model_for("planner") == "teacher" and teacher.base_url == "http://t/v1"


def test_collection_contexts_put_the_teacher_in_its_track_role(tmp_path: Path) -> None:
    pipeline, _ = make_pipeline(tmp_path, collect={"k": 2, "t": 1, "correction_rounds": 1})
    ret = pipeline.track_context("traj_ret", "http://s/v1", "http://t/v1")
    assert (ret.model_for("retriever"), ret.base_url_for("retriever")) == ("teacher", "http://t/v1")
    assert (ret.model_for("coder"), ret.base_url_for("coder"), ret.k, ret.t) == ("student", "http://s/v1", 2, 1)
    debug = pipeline.track_context("traj_debug", "http://s/v1", "http://t/v1")
    assert debug.model_for("debugger") == "teacher" and debug.model_for("retriever") == "student"
    supervised = pipeline.track_context("traj_plan_code_supervised", "http://s/v1", "http://t/v1")
    assert supervised.supervisor_model == "teacher" and supervised.supervisor_base_url == "http://t/v1"
    assert supervised.correction_rounds == 1 and supervised.model_for("planner") == "student"
    assert supervised.supervisor_reference is False  # off unless [collect] supervisor_reference = true
    referenced, _ = make_pipeline(tmp_path / "ref", collect={"supervisor_reference": True})
    assert referenced.track_context("traj_plan_code_supervised", "http://s/v1", "http://t/v1").supervisor_reference
    distilled = pipeline.track_context("traj_self", "http://s/v1", "http://t/v1")
    assert {distilled.model_for(role) for role in ROLES} == {"student"} and distilled.temperature == 0.8
    assert distilled.direct_first is False  # the paper's graph, as every track
    assert pipeline.track_context("traj_direct", "http://s/v1", "http://t/v1").temperature == 0.8


def test_traj_self_is_opt_in_complete_with_every_sample_and_its_errors_rerun_when_asked(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert not {"traj_self", "traj_direct"} & set(parse_config({}).collect.tracks)
    pipeline, logged = make_pipeline(tmp_path, collect={"limit": 2, "tracks": ["traj_self"], "self_samples": 2})

    def no_server(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("a server was started for work that is complete")

    monkeypatch.setattr(pipeline, "_servers", no_server)
    folder = pipeline.collect_dir("traj_self", "train")
    folder.mkdir(parents=True)
    ids = [f"MBPP/{i}#{n}" for i in (601, 602) for n in (1, 2)]
    (folder / "results.jsonl").write_text("".join(json.dumps({"id": i, "passed": True}) + "\n" for i in ids))
    pipeline.collect()
    assert "every collection is complete" in logged
    (folder / "results.jsonl").write_text("".join(json.dumps({"id": i, "passed": True}) + "\n" for i in ids[:3]))
    with pytest.raises(AssertionError, match="server was started"):
        pipeline.collect()
    # A run ended by an error is finished, unless [collect] retry_errors runs it again.
    errored = [{"id": i, "passed": False, "error": "problem timeout"} if i == ids[3] else {"id": i, "passed": True}
               for i in ids]
    (folder / "results.jsonl").write_text("".join(json.dumps(r) + "\n" for r in errored))
    pipeline.collect()
    pipeline.config.collect.retry_errors = True
    with pytest.raises(AssertionError, match="server was started"):
        pipeline.collect()


def servers_started(pipeline: Any, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The models whose servers the collect stage would start; it is stopped right there."""
    started: list[str] = []

    def record(*specs: Any) -> Any:
        started.extend(spec[0].name for spec in specs)
        raise RuntimeError("servers recorded")

    monkeypatch.setattr(pipeline, "_servers", record)
    with pytest.raises(RuntimeError, match="servers recorded"):
        pipeline.collect()
    return started


@pytest.mark.parametrize(("tracks", "supervisor", "servers"), [
    (["traj_self"], "teacher", ["student"]),  # the student alone, on every core
    (["traj_plan_code_supervised"], "remote-model", ["student"]),  # its supervisor is elsewhere
    (["traj_plan_code_supervised"], "teacher", ["student", "teacher"]),
    (["traj_self", "traj_debug"], "teacher", ["student", "teacher"]),
])
def test_collection_starts_a_teacher_server_only_for_tracks_that_call_it(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, tracks: list[str], supervisor: str,
        servers: list[str]) -> None:
    pipeline, _ = make_pipeline(tmp_path, collect={"limit": 1, "tracks": tracks, "self_samples": 1},
                                models={"supervisor": supervisor, "supervisor_base_url": "http://elsewhere/v1"})
    assert servers_started(pipeline, monkeypatch) == servers


@pytest.mark.parametrize(("collect", "strategies", "stages", "teacher"), [
    ({"tracks": ["traj_self"]}, ["direct", "mapcoder"], pipeline_config.STAGES, False),  # nothing calls it
    ({"tracks": ["traj_self"], "relabel": ["confidence"]}, ["direct"], pipeline_config.STAGES, True),
    ({"tracks": ["traj_self"], "relabel": ["confidence"]}, ["direct"], ("prepare", "eval"), False),
    ({"tracks": ["traj_ret"]}, ["direct"], ("prepare", "collect"), True),
    ({"tracks": ["traj_self"]}, ["direct", "mapcoder-teacher"], ("prepare", "eval"), True),
])
def test_prepare_converts_the_teacher_only_for_a_stage_that_calls_it(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, collect: dict[str, Any], strategies: list[str],
        stages: tuple[str, ...], teacher: bool) -> None:
    prepared: list[str] = []
    monkeypatch.setattr(pipeline_run, "prepare_model",
                        lambda name, progress=None: prepared.append(name) or tmp_path / name)
    pipeline, _ = make_pipeline(tmp_path, collect={"self_samples": 1, **collect}, eval={"strategies": strategies},
                                models={"student": "small", "teacher": "large"})
    models = pipeline.prepare(stages)
    assert prepared == (["small", "large"] if teacher else ["small"])
    assert (models.teacher is not None) == teacher and not models.same
    if not teacher:
        with pytest.raises(PipelineError, match="not prepared"):
            _ = models.teacher_name


@pytest.mark.parametrize("path", sorted((Path(__file__).resolve().parents[2] / "examples").glob("pipeline*.toml")),
                         ids=lambda path: path.name)
def test_example_configs_parse(path: Path) -> None:
    config = pipeline_config.load_config(path)
    assert config.collect.tracks and config.eval.benchmarks


def test_the_recipe_config_collects_on_every_training_problem_without_a_teacher(tmp_path: Path) -> None:
    recipe = Path(__file__).resolve().parents[2] / "examples" / "pipeline-mbpp.toml"
    config = pipeline_config.load_config(recipe)
    assert config.collect.splits == ["train", "validation"] and config.collect.limit == 0
    # The coder's two prompts: the plan's (traj_self) and the direct attempt's, the graph's first step.
    assert config.collect.tracks == ["traj_self", "traj_direct"] and config.collect.samples("traj_direct") == 4
    pipeline = Pipeline(config, log=lambda line: None, progress=False)
    pipeline.models = pipeline_run.Models(student=tmp_path / "student", teacher=tmp_path / "teacher")
    assert not pipeline.needs_teacher(config.collect.tracks)


def test_eval_runs_each_strategy_with_each_retrieval_and_structured_outputs_setting(tmp_path: Path) -> None:
    pipeline, _ = make_pipeline(tmp_path, eval={"benchmarks": [{"dataset": "humaneval", "limit": 2}],
                                                "strategies": ["direct", "mapcoder-lite"],
                                                "retrievals": ["recall", "bank"],
                                                "structured_outputs": ["auto", "off"]})
    folders = [str(run.folder) for run in pipeline.eval_runs()]
    assert folders == ["humaneval-test-2/direct", "humaneval-test-2/direct-so-off",
                       "humaneval-test-2/mapcoder-lite", "humaneval-test-2/mapcoder-lite-so-off",
                       "humaneval-test-2/mapcoder-lite-bank", "humaneval-test-2/mapcoder-lite-bank-so-off"]
    banked = pipeline.eval_context("mapcoder-lite", "http://s/v1", "http://s/v1", "bank", "off")
    assert (banked.retrieval, banked.bank, banked.structured_outputs) == ("bank", str(pipeline.bank_dir), "off")
    plain = pipeline.eval_context("direct", "http://s/v1", "http://s/v1")
    assert (plain.retrieval, plain.structured_outputs) == ("recall", "auto")
    assert pipeline.eval_runs([]) == []  # no strategy left (mapcoder-lite without adapters): nothing to run
    # The defaults keep the folders a config without variants always had.
    bench = pipeline.config.eval.benchmarks[0]
    assert pipeline.eval_dir(bench, "mapcoder") == tmp_path / "work" / "eval" / "humaneval-test-2" / "mapcoder"


@pytest.mark.parametrize(("data", "message"), [
    ({"bank": {"retrieval": "bank"}}, "[bank] retrieval: moved to [eval] retrievals"),
    ({"eval": {"retrievals": ["recall", "recall"]}}, "[eval] retrievals = ['recall', 'recall']: a list of distinct"),
    ({"eval": {"structured_outputs": ["sometimes"]}}, "[eval] structured_outputs = ['sometimes']"),
    ({"eval": {"retrievals": []}}, "[eval] retrievals = []"),
])
def test_eval_variants_are_checked(data: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError) as error:
        parse_config(data)
    assert message in str(error.value)


def test_the_config_the_module_documents_is_the_default_one() -> None:
    # mapcoder_lite.pipeline.config's docstring shows a config file, "every other key has the default below".
    example = re.search(r"\n\n((?:    .*\n|\n)+)", pipeline_config.__doc__ or "").group(1)
    assert parse_config(tomllib.loads(textwrap.dedent(example))) == parse_config({})


def test_report_of_a_config_that_never_trains_has_no_adapter_table(tmp_path: Path) -> None:
    pipeline, _ = make_pipeline(tmp_path, eval={"benchmarks": [{"dataset": "humaneval", "limit": 1}],
                                                "strategies": ["direct"]})
    folder = pipeline.eval_dir(pipeline.config.eval.benchmarks[0], "direct")
    folder.mkdir(parents=True)
    (folder / "run.json").write_text(json.dumps({"settings": {"dataset": "humaneval", "strategy": "direct"},
                                                 "problems_total": 1}))
    (folder / "results.jsonl").write_text(json.dumps({"id": "HumanEval/0", "passed": True}) + "\n")
    text = pipeline.report().read_text()
    assert "## humaneval-test-1" in text and "100.0% (1/1)" in text
    assert "## Adapters" not in text and "## Stages" in text
    pipeline.state["stages"]["finetune"] = {"agents": {}, "seconds": 1.0}  # a config that trains: the table is there
    assert "## Adapters" in pipeline.report().read_text()


def test_servers_side_by_side_split_the_cores(monkeypatch: pytest.MonkeyPatch) -> None:
    from mapcoder_lite.pipeline.run import core_shares

    monkeypatch.setattr("os.sched_getaffinity", lambda pid: {0, 1, 2, 3, 4})
    assert core_shares(1) == [None]  # alone: every core
    assert core_shares(2) == [[0, 1], [2, 3]]
    monkeypatch.setattr("os.sched_getaffinity", lambda pid: {0})
    assert core_shares(2) == [None, None]


# ---------------------------------------------------------------- the relabel pass


def write_traj_self(pipeline: Pipeline, ids: list[str]) -> Path:
    """A finished traj_self collection of MBPP train in the workdir: each run's one plan failed (its code failed
    the sample), scored by the student at 50."""
    folder = pipeline.collect_dir("traj_self", "train")
    (folder / "trajectories").mkdir(parents=True)
    settings = {"dataset": "mbpp", "split": "train", "strategy": "traj_self", "track": "traj_self", "k": 1, "t": 0}
    (folder / "run.json").write_text(json.dumps({"settings": settings}))
    lines = []
    for run_id in ids:
        plan = f"1. PLAN of {run_id}"
        messages = [{"role": "system", "content": "review"}, {"role": "user", "content": f"## Plan\n{plan}\n"}]
        attempt = {"code": "def f():\n    return 0", "plan": plan, "debug_round": 0, "samples_passed": 0, "total": 1,
                   "report": "Passed 0 of 1 tests."}
        saved = {"id": run_id, "input": {"problem": f"Problem {run_id}", "sample_tests": ["assert f() == 1"],
                                         "entry_point": "f", "language": "python"},
                 "trajectory": [{"role": "confidence", "model": "student", "messages": messages,
                                 "response": "<root><explanation>ok</explanation><confidence>50</confidence></root>",
                                 "parsed": True}],
                 "plans": [{"plan": plan, "tried": True, "passed": False, "attempts": [attempt]}], "code": ""}
        name = run_id.replace("/", "_").replace("#", "_")
        (folder / "trajectories" / f"{name}.json").write_text(json.dumps(saved))
        lines.append({"id": run_id, "passed": False, "error": None, "code": "", "trajectory_file":
                      f"trajectories/{name}.json", "meta": {"sample_of": run_id.split("#")[0], "sample": 1}})
    (folder / "results.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))
    return folder


def test_relabel_runs_after_the_tracks_on_the_teacher_server_alone_and_feeds_extraction(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import asyncio

    from mapcoder_lite.collection.relabel import relabel
    from mapcoder_lite.roles import RELABEL
    from tests.scripted import scripted

    assert parse_config({}).collect.relabel == []  # off unless asked: existing configs change nothing
    pipeline, logged = make_pipeline(tmp_path, collect={"limit": 2, "tracks": ["traj_self"], "self_samples": 1,
                                                        "relabel": ["confidence", "debugger"]})
    assert pipeline.config.collect.relabel == ["confidence", "debugger"]
    assert pipeline.needs_teacher(["traj_self", RELABEL]) and not pipeline.needs_teacher(["traj_self"])
    source = write_traj_self(pipeline, ["MBPP/601#1", "MBPP/602#1"])
    # The collection is complete, its relabelling is not: the teacher's server alone starts.
    assert servers_started(pipeline, monkeypatch) == ["teacher"]
    # With a track's collection left to run, its student server starts first, alone (the teacher's starts
    # only afterwards, for the relabel pass).
    other, _ = make_pipeline(tmp_path / "other", collect={"limit": 2, "tracks": ["traj_self"], "self_samples": 1,
                                                          "relabel": ["confidence", "debugger"]})
    assert servers_started(other, monkeypatch) == ["student"]

    # Relabelled (here by scripted teachers, into the pipeline's folder): nothing is left, no server starts.
    out = pipeline.collect_dir(RELABEL, "train")
    assert out.name == "relabel-mbpp-train"
    teacher = scripted(confidence=lambda p: "<root>\n<explanation>Step 1 returns the wrong value.</explanation>\n"
                                            "<confidence>5</confidence>\n</root>",
                       debugger=lambda p: "1. return one\n```python\ndef f():\n    return 1\n```")
    problems = pipeline._problems("mbpp", "train", 2)
    asyncio.run(relabel([source], context=Context(model="teacher"), problems=problems, out_dir=out,
                        chat_models=teacher, progress=False, extract=False))
    pipeline.collect()
    assert "every collection is complete" in logged
    stats = pipeline.extract()
    # The student's scores (50) disagree with the outcome; no plan passed here, so the teacher was asked for
    # no confidence answer (each would be balanced away).
    reasons = {reason: n["count"] for reason, n in stats["confidence"]["dropped"]["reasons"].items()}
    assert reasons == {"confidence disagrees with the plan's outcome": 2} and not teacher["confidence"].prompts
    # The teacher's fixes ran on MBPP 601's and 602's hidden tests: f() is neither, so both are dropped.
    assert stats["debugger"]["dropped"]["reasons"]["final code failed the hidden tests"]["count"] == 2
    assert str(out) in json.loads((pipeline.datasets_dir / "manifest.json").read_text())["sources"][1]["path"]

    # The report says what each collection spent, the teacher's calls apart, and what extraction kept.
    report = pipeline.report().read_text()
    rows = {line.split(" | ")[0].strip("| "): line.split(" | ")[1:] for line in report.splitlines()
            if line.startswith(("| traj_self-", "| relabel-", "| debugger |"))}
    assert rows["traj_self-mbpp-train"][:5] == ["2", "0", "0", "2", "0"]  # runs, passed, errors, student, teacher
    assert rows["relabel-mbpp-train"][:5] == ["2", "0", "0", "0", "2"]  # two fixes asked of the teacher
    assert rows["debugger"][:3] == ["0", "0", "0"] and "100% of 2" in rows["debugger"][3]
