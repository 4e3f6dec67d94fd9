"""The verified exemplar bank: building it from training splits only, retrieving from it, and the graph,
eval and pipeline using it (scripted chat models, the real sandbox, a small MBPP file written here)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mapcoder_lite.bank import BankError, Exemplar, load_bank, near_duplicate, write_bank
from mapcoder_lite.bank.build import build_bank, plan_of
from mapcoder_lite.cli import app
from mapcoder_lite.evals import Problem, Runner, RunSettings, SettingsMismatch, make_strategy
from mapcoder_lite.graph import Context, build_graph
from mapcoder_lite.prompts import planner as planner_prompt
from tests.graph_answers import FUNCTION_PROBLEM, GOOD, confidence, prompts, retrieval
from tests.scripted import scripted

PAPER = {"direct_first": False, "stop_repeats": False, "plan_diversity": False}


# ---------------------------------------------------------------- a small MBPP, written here


def mbpp_row(task_id: int, text: str, code: str, tests: list[str]) -> dict:
    return {"task_id": task_id, "text": text, "code": code, "test_list": tests, "test_setup_code": "",
            "challenge_test_list": []}


def write_mbpp(data_dir: Path) -> Path:
    """Three train problems (601-603; 603's reference is wrong), one validation (511), one test (11)."""
    rows = [
        mbpp_row(11, "Write a function to remove first and last occurrence of a given character.",
                 "def rem(s, c):\n    return s", ["assert rem('a', 'a') == 'a'"]),
        mbpp_row(511, "Write a python function to find the sum of a list.",
                 "def total(xs):\r\n    return sum(xs)", ["assert total([1, 2]) == 3", "assert total([]) == 0"]),
        mbpp_row(601, "Write a function to add two numbers.", "def add(a, b):\n    return a + b",
                 ["assert add(1, 2) == 3", "assert add(-1, 1) == 0"]),
        mbpp_row(602, "Write a function to multiply two numbers.", "def mul(a, b):\n    return a * b",
                 ["assert mul(2, 3) == 6"]),
        mbpp_row(603, "Write a function to find the maximum of three numbers.", "def max3(a, b, c):\n    return a",
                 ["assert max3(1, 5, 2) == 5"]),
    ]
    (data_dir / "MBPPEval").mkdir(parents=True)
    (data_dir / "MBPPEval" / "MBPP.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return data_dir


def write_run(folder: Path, split: str, records: list[dict], dataset: str = "mbpp") -> Path:
    folder.mkdir(parents=True)
    (folder / "run.json").write_text(json.dumps({"settings": {"dataset": dataset, "split": split,
                                                              "strategy": "mapcoder"}}))
    (folder / "results.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    return folder


FIXED_MAX3 = "def max3(a, b, c):\n    return max(a, b, c)"
ADD_FROM_PLAN = "def add(a, b):\n    return b + a"


def passing_runs(tmp_path: Path) -> Path:
    """A run on MBPP train: 601 passed after debugging (its revised plan led there), 603 passed with a
    program of its own (the reference fails), 602 failed (no plan for it)."""
    return write_run(tmp_path / "runs" / "collect-train", "train", [
        {"id": "MBPP/601", "passed": True, "code": ADD_FROM_PLAN, "plans": [
            {"plan": "1. first plan", "attempts": [{"code": "def add(a, b):\n    return 0", "plan": "1. first plan"},
                                                   {"code": ADD_FROM_PLAN, "plan": "1. add b to a"}]}]},
        {"id": "MBPP/602", "passed": False, "code": "def mul(a, b):\n    return 0", "plans": [
            {"plan": "1. wrong", "attempts": [{"code": "def mul(a, b):\n    return 0", "plan": "1. wrong"}]}]},
        {"id": "MBPP/603", "passed": True, "code": FIXED_MAX3, "plans": []},  # the direct answer: no plan
    ])


# ---------------------------------------------------------------- building


@pytest.mark.parametrize(("dataset", "splits", "message"), [
    ("mbpp", ["train", "test"], "mbpp/test is not a training split"),
    ("humaneval", ["test"], "humaneval/test is not a training split"),
    ("xcodeeval", ["validation"], "Training splits of xcodeeval: none"),
    ("mbpp", ["training"], "mbpp has no split 'training'"),
    ("mbpp", [], "no split given"),
])
def test_build_refuses_a_test_split_before_any_work(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                    dataset: str, splits: list[str], message: str) -> None:
    from mapcoder_lite.bank import build as build_module

    monkeypatch.setattr(build_module, "load_problems", lambda *a, **k: pytest.fail("problems were loaded"))
    with pytest.raises(BankError, match=message):
        build_bank(dataset, splits, tmp_path / "bank", progress=False)
    assert not (tmp_path / "bank").exists()


def test_build_refuses_plans_from_a_run_on_a_test_split(tmp_path: Path) -> None:
    data = write_mbpp(tmp_path / "data")
    run = write_run(tmp_path / "eval-test", "test", [{"id": "MBPP/11", "passed": True, "code": "x", "plans": []}])
    with pytest.raises(BankError, match="not on a training split"):
        build_bank("mbpp", ["train"], tmp_path / "bank", runs=[run], data_dir=data, progress=False)
    other = write_run(tmp_path / "he", "train", [], dataset="humaneval")
    with pytest.raises(BankError, match="a run on humaneval, not on mbpp"):
        build_bank("mbpp", ["train"], tmp_path / "bank", runs=[other], data_dir=data, progress=False)
    with pytest.raises(BankError, match="not a run directory"):
        build_bank("mbpp", ["train"], tmp_path / "bank", runs=[tmp_path / "nothing"], data_dir=data, progress=False)


def test_build_verifies_code_in_the_sandbox_and_takes_plans_from_passing_runs(tmp_path: Path) -> None:
    data = write_mbpp(tmp_path / "data")
    stats = build_bank("mbpp", ["train", "validation"], tmp_path / "bank", runs=[passing_runs(tmp_path)],
                       data_dir=data, source="local", progress=False)
    assert stats.counts == {"problems": 4, "exemplars": 4, "failed": 0, "with_plan": 1, "without_plan": 3,
                            "code_from_runs": 1, "per_split": {"train": 3, "validation": 1}}
    bank = load_bank(tmp_path / "bank")
    by_id = {e.id: e for e in bank.exemplars}
    assert [e.id for e in bank.exemplars] == ["MBPP/601", "MBPP/602", "MBPP/603", "MBPP/511"]
    # The reference passes: it is the code; the plan is the revised one that led the run to its program.
    assert by_id["MBPP/601"].code == "def add(a, b):\n    return a + b" and by_id["MBPP/601"].code_from == "reference"
    assert by_id["MBPP/601"].planning == "1. add b to a"
    assert by_id["MBPP/602"].planning == ""  # its run failed: no plan
    # 603's reference fails its hidden test; the run's passing program is verified and taken instead.
    assert by_id["MBPP/603"].code == FIXED_MAX3 and by_id["MBPP/603"].code_from.endswith("collect-train")
    assert by_id["MBPP/511"].code == "def total(xs):\n    return sum(xs)"  # Windows line ends read as Python does
    manifest = json.loads((tmp_path / "bank" / "manifest.json").read_text())
    assert manifest["dataset"] == "mbpp" and manifest["splits"] == ["train", "validation"]
    assert manifest["sha256"] == bank.sha256 and manifest["index"]["library"] == "bm25s"
    assert (tmp_path / "bank" / "index").is_dir()


def test_a_traj_self_collection_gives_its_samples_programs_to_their_problem(tmp_path: Path) -> None:
    data = write_mbpp(tmp_path / "data")
    run = write_run(tmp_path / "runs" / "traj_self-train", "train", [
        {"id": "MBPP/603#1", "passed": False, "code": "def max3(a, b, c):\n    return c", "plans": [],
         "meta": {"sample_of": "MBPP/603", "sample": 1}},
        {"id": "MBPP/603#2", "passed": True, "code": FIXED_MAX3, "plans": [],
         "meta": {"sample_of": "MBPP/603", "sample": 2}},
    ])
    build_bank("mbpp", ["train"], tmp_path / "bank", runs=[run], data_dir=data, source="local", progress=False)
    by_id = {e.id: e for e in load_bank(tmp_path / "bank").exemplars}
    assert by_id["MBPP/603"].code == FIXED_MAX3 and by_id["MBPP/603"].code_from.endswith("traj_self-train")


def test_a_problem_whose_code_fails_is_counted_and_left_out(tmp_path: Path) -> None:
    data = write_mbpp(tmp_path / "data")
    stats = build_bank("mbpp", ["train"], tmp_path / "bank", data_dir=data, source="local", progress=False)
    assert (stats.counts["exemplars"], stats.counts["failed"], stats.counts["without_plan"]) == (2, 1, 2)
    assert stats.failed[0]["id"] == "MBPP/603" and "reference: failed a hidden test" in stats.failed[0]["reason"]
    assert [e.id for e in load_bank(tmp_path / "bank").exemplars] == ["MBPP/601", "MBPP/602"]


def test_the_plan_behind_a_result_is_the_attempt_that_made_its_code() -> None:
    record = {"code": "b\n", "plans": [{"plan": "P1", "attempts": [{"code": "a", "plan": "P1"}]},
                                       {"plan": "P2", "attempts": [{"code": "b", "plan": ""}]}]}
    assert plan_of(record) == "P2"
    assert plan_of({"code": "c", "plans": record["plans"]}) == ""


def test_a_bank_is_written_only_over_a_bank(tmp_path: Path) -> None:
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "todo.txt").write_text("mine")
    with pytest.raises(BankError, match="not an exemplar bank"):
        write_bank(tmp_path / "notes", [exemplar("MBPP/601", "add two numbers")], {})
    write_bank(tmp_path / "bank", [exemplar("MBPP/601", "add two numbers")], {})
    write_bank(tmp_path / "bank", [exemplar("MBPP/602", "multiply two numbers")], {})  # replaced
    assert [e.id for e in load_bank(tmp_path / "bank").exemplars] == ["MBPP/602"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bank", "notes"]  # nothing left over


# ---------------------------------------------------------------- retrieving


def exemplar(ident: str, description: str, planning: str = "") -> Exemplar:
    return Exemplar(id=ident, split="train", description=description, code=f"# code of {ident}\nx = 1",
                    planning=planning)


BANK = [
    exemplar("MBPP/701", "Write a function to add two lists using map and lambda function.", "1. map add"),
    exemplar("MBPP/702", "Write a function to find the sum of the digits of a number."),
    exemplar("MBPP/703", "Write a function to count the number of unique lists within a list.", "1. count"),
    exemplar("MBPP/704", "Write a function to sort a list of tuples by the second element."),
    exemplar("MBPP/705", "Write a python function to reverse a string."),
    exemplar("MBPP/706", "Write a function to add two numbers and return their sum.", "1. add them"),
]


@pytest.fixture
def bank_dir(tmp_path: Path) -> Path:
    write_bank(tmp_path / "bank", BANK, {"dataset": "mbpp", "splits": ["train"]})
    return tmp_path / "bank"


def test_nearest_exemplars_by_bm25_over_descriptions(bank_dir: Path) -> None:
    bank = load_bank(bank_dir)
    nearest = bank.nearest("Write a function that returns the sum of two numbers a and b.", 2)
    assert [e.id for e in nearest] == ["MBPP/706", "MBPP/702"]
    assert len(bank.nearest("the of a", 4)) == 4  # a query of stop words only still gets k, in bank order


def test_near_duplicates_and_the_problems_own_id_are_skipped(bank_dir: Path) -> None:
    bank = load_bank(bank_dir)
    # A rewording of MBPP/703 (as MBPP/758 and /779 are): the nearest exemplar, and never returned.
    problem = "Write a function to count number of unique lists within a list."
    assert near_duplicate(BANK[2].description, problem)
    assert "MBPP/703" not in [e.id for e in bank.nearest(problem, 3)]
    # A task differing by one substituted word is a related problem, kept.
    assert not near_duplicate("Write a function to find the sum of the digits of a string.", BANK[1].description)
    # "... by using regex" twins are one task; a short description inside a long different one is not.
    assert near_duplicate("Write a function to remove multiple spaces in a string by using regex.",
                          "Write a function to remove multiple spaces in a string.")
    assert not near_duplicate("Write a python function to find the sum of an array.",
                              "Write a python function to find the sum of xor of all pairs of numbers in the given "
                              "array.")
    # The problem's own id is skipped even where its text differs.
    ids = [e.id for e in bank.nearest("add two numbers", 6, exclude_id="MBPP/706")]
    assert "MBPP/706" not in ids and len(ids) == 5


def test_a_missing_changed_or_broken_bank_is_a_clear_error(bank_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(BankError, match=r"not an exemplar bank.*bank build"):
        load_bank(tmp_path / "nowhere")
    lines = (bank_dir / "exemplars.jsonl").read_text().splitlines(keepends=True)
    (bank_dir / "exemplars.jsonl").write_text("".join(lines[:-1]))  # cut short
    with pytest.raises(BankError, match="changed since the bank was built"):
        load_bank(bank_dir)
    (bank_dir / "exemplars.jsonl").write_text("".join(lines))
    load_bank(bank_dir)
    for name in (bank_dir / "index").iterdir():
        name.write_bytes(b"garbage")
    (bank_dir / "manifest.json").touch()  # a new mtime: read again
    with pytest.raises(BankError, match="index cannot be read"):
        load_bank(bank_dir)


# ---------------------------------------------------------------- the graph


def graph_models() -> dict:
    return scripted(
        retriever=lambda p: retrieval("RECALLED-A", "RECALLED-B", "RECALLED-C"),
        planner=lambda p: "1. add a and b",
        confidence=lambda p: confidence(80),
        coder=lambda p: GOOD,
    )


PROBLEM = FUNCTION_PROBLEM | {"id": "MBPP/999"}  # "Return the sum of a and b.": MBPP/706 is the nearest


def shown_exemplars(models: dict) -> list[str]:
    return [e.id for e in BANK if any(e.description in p for p in models["planner"].prompts)]


def test_bank_retrieval_makes_no_retriever_call_and_gives_the_planner_k_exemplars(bank_dir: Path) -> None:
    models = graph_models()
    result = build_graph(chat_models=models).invoke(PROBLEM, context=Context(
        **PAPER, k=3, retrieval="bank", bank=str(bank_dir)))
    assert result["passed"] is True
    assert models["retriever"].prompts == []
    assert [c["role"] for c in result["trajectory"]] == ["planner"] * 3 + ["confidence"] * 3 + ["coder"]
    assert result["llm_calls"] == 7 == len(result["trajectory"]) and result["format_failures"]["retriever"] == 0
    planner_prompts = models["planner"].prompts
    shown = shown_exemplars(models)
    assert len(planner_prompts) == 3 and len(shown) == 3 and "MBPP/706" in shown
    assert not any("RECALLED" in p for p in planner_prompts)
    # An exemplar with a recorded plan shows it; one without shows its verified code instead.
    with_plan = next(p for p in planner_prompts if BANK[5].description in p)
    assert "## Example plan\n1. add them" in with_plan and "code of MBPP/706" not in with_plan
    without = next(p for p in planner_prompts if "## Example solution" in p)
    assert "```python\n# code of" in without


def test_the_graph_never_retrieves_the_problem_itself(bank_dir: Path) -> None:
    context = Context(**PAPER, k=3, retrieval="bank", bank=str(bank_dir))
    for problem in (PROBLEM | {"id": "MBPP/706"},  # its own id
                    PROBLEM | {"problem": 'def add(a, b):\n    """Add two numbers and return their sum."""\n'}):
        models = graph_models()
        build_graph(chat_models=models).invoke(problem, context=context)
        assert len(shown_exemplars(models)) == 3 and "MBPP/706" not in shown_exemplars(models)


def test_both_takes_the_banks_nearest_first_then_the_recalled_ones(bank_dir: Path) -> None:
    models = graph_models()
    result = build_graph(chat_models=models).invoke(PROBLEM, context=Context(
        **PAPER, k=3, retrieval="both", bank=str(bank_dir)))
    assert len(models["retriever"].prompts) == 1 and result["llm_calls"] == 8
    planner_prompts = models["planner"].prompts
    banked = shown_exemplars(models)
    recalled = [m for m in ("RECALLED-A", "RECALLED-B", "RECALLED-C") if any(m in p for p in planner_prompts)]
    assert len(banked) == 2 and recalled == ["RECALLED-A"]
    assert all("Arithmetic" in p for p in planner_prompts)  # the model's algorithm reaches every plan

    # A retriever answer with nothing usable: the bank fills all k.
    models = graph_models() | scripted(retriever=lambda p: "no XML at all")
    result = build_graph(chat_models=models).invoke(PROBLEM, context=Context(
        **PAPER, k=3, retrieval="both", bank=str(bank_dir)))
    assert len(models["planner"].prompts) == 3 and result["format_failures"]["retriever"] == 1
    assert len(shown_exemplars(models)) == 3


def test_recall_is_the_default_and_the_papers_graph_is_unchanged() -> None:
    assert Context().retrieval == "recall"
    models = graph_models()
    build_graph(chat_models=models).invoke(FUNCTION_PROBLEM, context=Context(**PAPER, k=2))
    assert len(models["retriever"].prompts) == 1
    assert all("RECALLED" in p and "## Example plan" in p for p in models["planner"].prompts)


def test_a_bad_bank_is_refused_before_any_model_call(tmp_path: Path, bank_dir: Path) -> None:
    with pytest.raises(ValueError, match=r"needs Context\.bank"):
        Context(retrieval="bank")
    with pytest.raises(ValueError, match=r"Context\.retrieval must be one of recall, bank, both"):
        Context(retrieval="memory", bank=str(bank_dir))
    (bank_dir / "exemplars.jsonl").write_text("")  # emptied since it was built
    for direct_first in (True, False):
        for path in (tmp_path / "nowhere", bank_dir):
            models = graph_models()
            with pytest.raises(BankError):
                build_graph(chat_models=models).invoke(PROBLEM, context=Context(
                    retrieval="bank", bank=str(path), direct_first=direct_first))
            assert prompts(models) == 0


def test_planner_prompt_shapes_of_recalled_and_bank_examples() -> None:
    recalled = {"description": "D", "code": "print(1)", "planning": ""}
    text = planner_prompt.build_messages("P", [], "python", recalled, "")[1]["content"]
    assert "## Example plan" in text and "print(1)" not in text  # the paper's prompt: no code
    banked = recalled | {"source": "bank", "id": "MBPP/1"}
    text = planner_prompt.build_messages("P", [], "python", banked, "")[1]["content"]
    assert "## Example solution\n```python\nprint(1)\n```" in text


# ---------------------------------------------------------------- eval runs


def toy_problem() -> Problem:
    return Problem(id="T/1", problem=PROBLEM["problem"], sample_tests=PROBLEM["sample_tests"], entry_point="add",
                   hidden_tests=["assert add(5, 6) == 11"])


def test_an_eval_run_records_the_banks_hash_and_refuses_another_bank(tmp_path: Path, bank_dir: Path) -> None:
    strategy = make_strategy("mapcoder", graph_models())
    context = Context(**PAPER, k=2, retrieval="bank", bank=str(bank_dir), test_timeout_s=5.0)
    settings = RunSettings.make("toy", "test", strategy, context)
    asyncio.run(Runner(tmp_path / "run", strategy, settings, context, progress=False).run([toy_problem()]))
    recorded = json.loads((tmp_path / "run" / "run.json").read_text())["settings"]
    assert recorded["retrieval"] == "bank" and recorded["bank"] == load_bank(bank_dir).sha256
    (record,) = [json.loads(line) for line in (tmp_path / "run" / "results.jsonl").read_text().splitlines()]
    assert record["passed"] and record["llm_calls"] == 5  # 2 plans, 2 scores, 1 program: no retriever call

    write_bank(tmp_path / "other", BANK[:4], {})
    other = Context(**PAPER, k=2, retrieval="bank", bank=str(tmp_path / "other"))
    with pytest.raises(SettingsMismatch, match="bank: '"):
        asyncio.run(Runner(tmp_path / "run", strategy, RunSettings.make("toy", "test", strategy, other), other,
                           progress=False).run([toy_problem()]))
    recall = RunSettings.make("toy", "test", strategy, Context(**PAPER, k=2, test_timeout_s=5.0))
    assert recall.differences(recorded) == ["retrieval: 'bank' there, 'recall' now",
                                            f"bank: {recorded['bank']!r} there, None now"]
    assert RunSettings.make("toy", "test", make_strategy("direct"), context).bank is None  # no graph, no bank


def test_a_mapcoder_run_from_before_retrieval_settings_resumes_as_recall(bank_dir: Path) -> None:
    strategy = make_strategy("mapcoder", scripted())
    old = RunSettings.make("toy", "test", strategy, Context()).to_dict()
    del old["retrieval"], old["bank"]  # what run.json held before these settings existed
    assert RunSettings.make("toy", "test", strategy, Context()).differences(old) == []
    banked = RunSettings.make("toy", "test", strategy, Context(retrieval="both", bank=str(bank_dir)))
    assert banked.differences(old)[0] == "retrieval: 'recall' there, 'both' now"


def test_graph_strategies_pass_the_problem_id_to_the_graph() -> None:
    assert make_strategy("mapcoder", scripted()).graph_input(toy_problem())["id"] == "T/1"
    assert "id" not in toy_problem().graph_input()  # what a trajectory records as the input stays as it was


# ---------------------------------------------------------------- command line and pipeline


def test_cli_bank_build_and_show(tmp_path: Path) -> None:
    data = write_mbpp(tmp_path / "data")
    runner = CliRunner()
    result = runner.invoke(app, ["bank", "build", "--dataset", "mbpp", "--split", "train,test", "--out",
                                 str(tmp_path / "bank"), "--data-dir", str(data)])
    assert result.exit_code == 2 and "mbpp/test is not a training split" in result.output
    result = runner.invoke(app, ["bank", "build", "--dataset", "mbpp", "--split", "train", "--out",
                                 str(tmp_path / "bank"), "--data-dir", str(data), "--runs",
                                 str(passing_runs(tmp_path)), "--no-progress"])
    assert result.exit_code == 0, result.output
    assert "with a plan / without" in result.output and "1 / 2" in result.output
    result = runner.invoke(app, ["bank", "show", str(tmp_path / "bank"), "--query", "Multiply a list of numbers.",
                                 "--k", "1"])
    assert result.exit_code == 0 and "MBPP/602 (train, no plan)" in result.output


def test_cli_eval_and_solve_refuse_a_missing_bank(tmp_path: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(app, ["eval", "--dataset", "mbpp", "--limit", "1", "--retrieval", "bank", "--bank",
                                 str(tmp_path / "nowhere"), "--out", str(tmp_path / "run")])
    assert result.exit_code == 2 and "not an exemplar bank" in result.output
    assert not (tmp_path / "run").exists()
    problem = tmp_path / "p.json"
    problem.write_text(json.dumps(FUNCTION_PROBLEM))
    result = runner.invoke(app, ["solve", str(problem), "--retrieval", "both"])
    assert result.exit_code == 2 and "needs Context.bank" in result.output


def test_pipeline_bank_section(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from mapcoder_lite.pipeline import ConfigError, Pipeline, parse_config
    from mapcoder_lite.pipeline import run as pipeline_run

    banked = {"retrievals": ["recall", "bank"]}
    with pytest.raises(ConfigError, match=r"\[bank\] mbpp/test is not a training split"):
        parse_config({"eval": banked, "bank": {"splits": ["test"]}})
    with pytest.raises(ConfigError, match=r"retrievals = \['memory'\]"):
        parse_config({"eval": {"retrievals": ["memory"]}})
    data = write_mbpp(tmp_path / "data")
    config = parse_config({"workdir": str(tmp_path / "work"), "data_dir": str(data), "source": "local",
                           "eval": banked, "bank": {"splits": ["train"]}})
    logged: list[str] = []
    pipeline = Pipeline(config, log=logged.append, progress=False)
    pipeline._load_state()
    pipeline.models = pipeline_run.Models(student=tmp_path / "student", teacher=tmp_path / "teacher")
    collected = write_run(pipeline.collect_dir("traj_ret", "train"), "train", json.loads(
        "[" + ",".join((passing_runs(tmp_path) / "results.jsonl").read_text().splitlines()) + "]"))
    assert pipeline.build_bank() == pipeline.bank_dir
    bank = load_bank(pipeline.bank_dir)
    assert len(bank.exemplars) == 3 and bank.manifest["runs"] == [str(collected)]
    assert bank.manifest["counts"]["with_plan"] == 1
    pipeline.build_bank()  # up to date: not built again
    assert any("up to date" in line for line in logged)
    context = pipeline.eval_context("mapcoder", "http://s/v1", "http://s/v1", retrieval="bank")
    assert (context.retrieval, context.bank) == ("bank", str(pipeline.bank_dir))
