"""The supervised correction graph: blame, retry with feedback, bounded rounds, kept pairs, no hidden-test leak."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from mapcoder_lite.collection import SupervisorContext, build_supervisor_graph
from mapcoder_lite.collection.records import DEBUGGED, SUPERSEDED, UNREADABLE, classify_corrections
from mapcoder_lite.collection.supervisor_graph import graph as exported_graph
from mapcoder_lite.graph import Context
from mapcoder_lite.llm import RoleModels
from mapcoder_lite.prompts import coder as coder_prompt
from mapcoder_lite.prompts import planner as planner_prompt
from mapcoder_lite.prompts import supervisor as supervisor_prompt
from tests.scripted import scripted

SECRET = 987654  # only in hidden tests: may reach the supervisor, never an agent
PROBLEM = {
    "problem": "Write plus3(x) returning x + 3.",
    "sample_tests": ["assert plus3(1) == 4"],
    "entry_point": "plus3",
    "language": "python",
    "id": "toy/plus3",
    "scoring": {"hidden_tests": [f"assert plus3({SECRET}) == {SECRET + 3}", "assert plus3(10) == 13"]},
}
RETRIEVAL = ("<root><problem><description>EX-ADD example</description><code>x = 1</code>"
             "<planning>add</planning></problem><algorithm>Arithmetic</algorithm></root>")
GOOD = "```python\ndef plus3(x):\n    return x + 3\n```"
SAMPLE_ONLY = "```python\ndef plus3(x):\n    return 4 if x == 1 else x\n```"  # passes the sample, not hidden tests
FEEDBACK_MARK = "Feedback from a reviewer"


def verdict(agent: str, feedback: str) -> str:
    return (f"<root>\n<analysis>The program only fits the sample.</analysis>\n<agent>{agent}</agent>\n"
            f"<feedback>{feedback}</feedback>\n</root>")


def agents(**overrides: Callable[[str], str]) -> dict[str, Any]:
    scripts: dict[str, Callable[[str], str]] = {
        "retriever": lambda p: RETRIEVAL,
        "planner": lambda p: "1. PLAN-BAD: return x.",
        "confidence": lambda p: "<root><explanation>fine</explanation><confidence>90</confidence></root>",
        "coder": lambda p: GOOD if "PLAN-GOOD" in p else SAMPLE_ONLY,
        "debugger": lambda p: "1. still\n" + SAMPLE_ONLY,
    }
    return scripted(**(scripts | overrides))


def run(models: dict[str, Any], **context: Any) -> dict[str, Any]:
    settings = {"k": 1, "t": 1, "test_timeout_s": 5.0} | context
    return build_supervisor_graph(models).invoke(PROBLEM, context=SupervisorContext(**settings))


def agent_prompts(models: dict[str, Any]) -> list[str]:
    return [p for role, m in models.items() if role != "supervisor" for p in m.prompts]


def test_blaming_the_planner_replans_with_feedback_and_keeps_the_plan_without_it() -> None:
    models = agents(
        planner=lambda p: "1. PLAN-GOOD: return x + 3." if FEEDBACK_MARK in p else "1. PLAN-BAD: return x.",
        supervisor=lambda p: verdict("planner", "FEEDBACK-P: the plan must add three to every input."),
    )
    result = run(models)

    assert result["outcome"] == "corrected" and result["hidden_passed"] and result["rounds"] == 1
    assert "return x + 3" in result["code"]
    first, retry = models["planner"].prompts
    assert FEEDBACK_MARK not in first and "FEEDBACK-P" in retry and "PLAN-BAD" in retry  # sees its old plan
    (pair,) = result["training_pairs"]
    assert pair["role"] == "planner" and pair["completion"] == "1. PLAN-GOOD: return x + 3." and pair["round"] == 1
    # The kept prompt is the planner's normal prompt: the same example and algorithm, no feedback.
    normal = planner_prompt.build_messages(PROBLEM["problem"], PROBLEM["sample_tests"], "python",
                                           {"description": "EX-ADD example", "code": "x = 1", "planning": "add"},
                                           "Arithmetic")
    assert pair["prompt"] == normal
    # The first pass stays on record; the corrected plan is a new entry with its own attempt.
    assert [p.get("corrected") for p in result["plans"]] == [None, "planner"]
    assert result["plans"][0]["hidden_passed"] is False and result["plans"][1]["hidden_passed"] is True
    roles = [(c["role"], c.get("round", 0)) for c in result["trajectory"]]
    assert roles == [("retriever", 0), ("planner", 0), ("confidence", 0), ("coder", 0),
                     ("supervisor", 1), ("planner", 1), ("coder", 1)]
    assert result["format_failures"]["supervisor"] == 0
    assert not any(str(SECRET) in p for p in agent_prompts(models))
    # The supervisor saw the whole story: algorithm, plan, confidence, code, sample and hidden reports.
    (seen,) = models["supervisor"].prompts
    for part in ("Arithmetic", "PLAN-BAD", "90/100", "return 4 if x == 1", "Sample tests: 1/1", str(SECRET)):
        assert part in seen


def test_blaming_the_coder_recodes_the_same_plan_and_keeps_the_code_without_feedback() -> None:
    models = agents(
        coder=lambda p: GOOD if FEEDBACK_MARK in p else SAMPLE_ONLY,
        supervisor=lambda p: verdict("coder", "FEEDBACK-C: add three for every x, not just the sample."),
    )
    result = run(models)

    assert result["outcome"] == "corrected" and "return x + 3" in result["code"]
    assert len(models["planner"].prompts) == 1  # the plan was not touched
    retry = models["coder"].prompts[-1]
    assert "FEEDBACK-C" in retry and "return 4 if x == 1" in retry  # its previous code
    (pair,) = result["training_pairs"]
    normal = coder_prompt.build_messages(PROBLEM["problem"], PROBLEM["sample_tests"], "python",
                                         "1. PLAN-BAD: return x.", "Arithmetic", "plus3")
    assert pair == pair | {"role": "coder", "completion": GOOD, "prompt": normal}
    assert not any(str(SECRET) in p for p in agent_prompts(models))


def test_an_unreadable_supervisor_answer_is_a_counted_failure_not_a_crash() -> None:
    models = agents(supervisor=lambda p: "Honestly, it is hard to say who is at fault here.")
    result = run(models, correction_rounds=3)
    assert result["outcome"] == "supervisor_unreadable" and not result["hidden_passed"]
    assert result["format_failures"]["supervisor"] == 1 and len(models["supervisor"].prompts) == 1
    assert result["verdicts"] == [result["verdicts"][0] | {"parsed": False, "agent": None}]
    assert result["training_pairs"] == []


def test_corrections_stop_after_the_bounded_number_of_rounds_and_see_earlier_feedback() -> None:
    models = agents(supervisor=lambda p: verdict("coder", "FEEDBACK-C: add three."))
    result = run(models, correction_rounds=2, t=0)
    assert result["outcome"] == "unsolved" and result["rounds"] == 2
    assert len(models["supervisor"].prompts) == 2 and len(models["coder"].prompts) == 3
    assert "FEEDBACK-C" in models["supervisor"].prompts[1] and "earlier rounds" in models["supervisor"].prompts[1]
    assert result["training_pairs"] == []


def test_a_run_that_passes_at_once_needs_no_supervisor() -> None:
    models = agents(coder=lambda p: GOOD, supervisor=lambda p: pytest.fail("the supervisor was called"))
    result = run(models)
    assert result["outcome"] == "passed" and result["rounds"] == 0 and result["training_pairs"] == []


def test_verdict_only_keeps_hidden_data_from_the_supervisor_and_quotes_are_scrubbed() -> None:
    quiet = agents(supervisor=lambda p: verdict("coder", "add three."))
    run(quiet, supervisor_hidden_report="verdict", correction_rounds=1, t=0)
    assert str(SECRET) not in quiet["supervisor"].prompts[0] and "passed 0 of the 1" in quiet["supervisor"].prompts[0]

    leaky = agents(supervisor=lambda p: verdict("coder", f"plus3({SECRET}) must be {SECRET + 3}."))
    result = run(leaky, correction_rounds=1, t=0)
    assert result["verdicts"][0]["redacted"] == 2
    assert not any(str(SECRET) in p for p in agent_prompts(leaky))


def test_supervisor_format_tolerant_parse_and_strict_check() -> None:
    strict = verdict("planner", "Use a greedy choice.")
    assert supervisor_prompt.is_strict(strict)
    assert supervisor_prompt.parse(strict) == supervisor_prompt.Verdict(
        "planner", "Use a greedy choice.", "The program only fits the sample.")
    loose = "```xml\n<agent>The Coding agent</agent>\n<feedback>Fix the loop bound.</feedback>\n```"
    assert supervisor_prompt.parse(loose).agent == "coder" and not supervisor_prompt.is_strict(loose)
    assert supervisor_prompt.parse("<agent>planner and coder</agent><feedback>x</feedback>") is None
    assert supervisor_prompt.parse("<agent>planner</agent><feedback></feedback>") is None
    assert not supervisor_prompt.is_strict(verdict("debugger", "x"))
    assert not supervisor_prompt.is_strict(verdict("coder", "```python\nx = 1\n```"))


def test_classify_corrections_keeps_only_what_the_final_program_rests_on() -> None:
    def call(role: str, round_: int, response: str, parsed: bool = True) -> dict[str, Any]:
        return {"role": role, "round": round_, "response": response, "parsed": parsed, "model": "m",
                "correction": {"agent": role, "feedback": "f", "prompt": [{"role": "user", "content": role}]}}

    code_a, code_b = "```python\nA = 1\n```", "```python\nB = 2\n```"
    trajectory = [call("coder", 1, code_a), call("planner", 2, "1. P2"), call("planner", 3, "?", parsed=False),
                  call("coder", 4, code_b)]
    verdicts = [why for _, why in classify_corrections(trajectory, "B = 2")]
    assert verdicts == [SUPERSEDED, None, UNREADABLE, None]  # the unreadable retry kept plan P2 in use
    assert [why for _, why in classify_corrections(trajectory, "B = 3")][-1] == DEBUGGED


def test_supervisor_context_endpoint_key_and_validation(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DEEPSEEK_API_KEY", raising=False)
    context = SupervisorContext(api_key="local")
    assert (context.model_for("supervisor"), context.base_url_for("supervisor")) == (
        "deepseek-chat", "https://api.deepseek.com/v1")
    assert context.api_key_for("supervisor") == "local" and "DEEPSEEK_API_KEY" in context.missing_supervisor_key()
    monkeypatch.setenv("DEEPSEEK_API_KEY", "sk-test")
    assert context.api_key_for("supervisor") == "sk-test" and context.missing_supervisor_key() is None
    assert context.model_for("coder") == context.model  # the agents are untouched
    monkeypatch.setenv("MAPCODER_LITE_SUPERVISOR_MODEL", "judge")
    assert SupervisorContext().supervisor_model == "judge"
    assert SupervisorContext.from_context(Context(k=2), correction_rounds=5).k == 2
    with pytest.raises(ValueError, match="correction_rounds"):
        SupervisorContext(correction_rounds=0)
    with pytest.raises(ValueError, match="supervisor_hidden_report"):
        SupervisorContext(supervisor_hidden_report="all")
    with pytest.raises(ValueError, match="unknown roles"):
        RoleModels(scripted(supervisor=lambda p: ""))  # only a graph that declares the role may use it
    RoleModels(scripted(supervisor=lambda p: ""), roles=("coder", "supervisor"))


def test_exported_graph_shows_the_loop_the_subgraph_and_the_supervisor_settings() -> None:
    nodes = set(exported_graph.get_graph(xray=1).nodes)
    assert {"mapcoder:retriever", "hidden_testing", "supervisor", "correct_plan", "correct_code", "debugger"} <= nodes
    context = exported_graph.get_context_jsonschema()["properties"]
    for name in ("supervisor_model", "supervisor_base_url", "correction_rounds", "supervisor_hidden_report",
                 "supervisor_reference", "k"):
        assert context[name].get("description"), name
    inputs = exported_graph.get_input_jsonschema()["properties"]
    assert {"problem", "sample_tests", "scoring"} <= set(inputs)
    assert {"outcome", "training_pairs", "hidden_passed"} <= set(exported_graph.get_output_jsonschema()["properties"])


# Reference-guided supervision: the reference reaches the supervisor only.
REFERENCE = "def plus3(x):\n    total_with_three = x + 3  # REFERENCE-MARK\n    return total_with_three"
WITH_REFERENCE = PROBLEM | {"scoring": PROBLEM["scoring"] | {"reference": REFERENCE}}


def test_the_supervisor_sees_the_reference_when_on_and_no_agent_ever_does() -> None:
    def planner(p: str) -> str:
        return "1. PLAN-GOOD: return x + 3." if FEEDBACK_MARK in p else "1. PLAN-BAD: return x."

    def judge(p: str) -> str:  # quotes a reference line in its feedback: scrubbed before the planner sees it
        return verdict("planner", "Keep a running value: total_with_three = x + 3  # REFERENCE-MARK then return it.")

    models = agents(planner=planner, supervisor=judge)
    settings = {"k": 1, "t": 1, "test_timeout_s": 5.0, "supervisor_reference": True}
    result = build_supervisor_graph(models).invoke(WITH_REFERENCE, context=SupervisorContext(**settings))

    assert result["outcome"] == "corrected"
    (seen,) = models["supervisor"].prompts
    assert REFERENCE in seen and "Reference solution" in seen
    assert not any("REFERENCE-MARK" in p or "total_with_three" in p for p in agent_prompts(models))
    assert result["verdicts"][0]["redacted"] == 1 and "[the reference]" in result["verdicts"][0]["feedback"]
    (record,) = [c for c in result["trajectory"] if c["role"] == "supervisor"]
    assert record["reference"] == REFERENCE  # for extraction's leak check

    off = agents(planner=planner, supervisor=judge)
    # The default: a reference given in scoring is not shown.
    build_supervisor_graph(off).invoke(WITH_REFERENCE, context=SupervisorContext(k=1, t=1, test_timeout_s=5.0))
    assert "REFERENCE-MARK" not in off["supervisor"].prompts[0]
    assert "Reference solution" not in off["supervisor"].prompts[0]
    assert supervisor_prompt.build_messages("p", [], "python", "", "", None, [], "h") == \
        supervisor_prompt.build_messages("p", [], "python", "", "", None, [], "h", reference=None)


def test_reference_on_without_a_reference_is_refused_before_any_model_call() -> None:
    models = agents(supervisor=lambda p: verdict("coder", "add three."))
    with pytest.raises(ValueError, match="no reference solution"):
        run(models, supervisor_reference=True)
    assert not any(m.prompts for m in models.values())
