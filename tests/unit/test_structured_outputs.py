"""Structured outputs on the request: each call carries its role's grammar where the endpoint is vLLM
(or the run says so), never to an API that rejects unknown fields under 'auto', never to a chat model
passed in. Endpoints here are local JSON servers answering as vLLM or as a strict hosted API would."""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from mapcoder_lite.cli import app
from mapcoder_lite.evals import Problem, RunSettings, make_strategy
from mapcoder_lite.evals.strategies import Attempt
from mapcoder_lite.graph import Context, build_graph
from mapcoder_lite.llm import RoleCallError, RoleModels, probe_vllm
from mapcoder_lite.prompts import coder, confidence, debugger, direct, planner, retriever
from tests.scripted import scripted
from tests.servers import Reply, completion, free_port, json_endpoint

PROBLEM = {"problem": "Write add(a, b) returning a + b.", "sample_tests": ["assert add(1, 2) == 3"],
           "entry_point": "add"}
ANSWERS = {
    "retriever": ("<root>\n<problem>\n<description>Sum two numbers.</description>\n<code>print(1 + 2)</code>\n"
                  "<planning>1. add</planning>\n</problem>\n<algorithm>Arithmetic.</algorithm>\n</root>"),
    "planner": "1. Return a + b.\n",
    "confidence": "<root>\n<explanation>It adds.</explanation>\n<confidence>90</confidence>\n</root>",
    "coder": "```python\ndef add(a, b):\n    return a - b\n```",  # wrong, so that the debugger is called
    "debugger": "1. Add instead of subtracting.\n```python\ndef add(a, b):\n    return a + b\n```",
}
GRAMMARS = {"retriever": retriever, "planner": planner, "confidence": confidence, "coder": coder, "debugger": debugger}
# What OpenAI's API answers to a request field it does not know.
UNKNOWN_FIELD = {"error": {"message": "Unrecognized request argument supplied: structured_outputs",
                           "type": "invalid_request_error", "param": None, "code": None}}


@dataclass
class Endpoint:
    """A chat endpoint serving every role (the model name is the role), recording what it was sent."""

    owner: str | None  # what GET /models says owns the models; None: no such route
    strict: bool = False  # reject a request with a field it does not know, as hosted APIs do
    requests: list[dict[str, Any]] = field(default_factory=list)
    probes: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def post(self, request: dict[str, Any]) -> Reply:
        with self.lock:
            self.requests.append(request)
        if self.strict and "structured_outputs" in request:
            return 400, UNKNOWN_FIELD
        return 200, completion(request["model"], ANSWERS.get(request["model"], ANSWERS["coder"]))

    def get(self, path: str) -> Reply:
        with self.lock:
            self.probes += 1
        if path != "/v1/models" or self.owner is None:
            return 404, {"error": {"message": "Not Found"}}
        return 200, {"object": "list", "data": [{"id": "coder", "object": "model", "owned_by": self.owner}]}

    def grammars(self) -> dict[str, str | None]:
        """The grammar each role's requests carried (None: none); one role, one grammar."""
        seen: dict[str, set[str | None]] = {}
        for request in self.requests:
            grammar = request.get("structured_outputs", {}).get("grammar")
            seen.setdefault(request["model"], set()).add(grammar)
        assert all(len(grammars) == 1 for grammars in seen.values()), seen
        return {role: grammars.pop() for role, grammars in seen.items()}


@contextlib.contextmanager
def serving(endpoint: Endpoint) -> Iterator[str]:
    with json_endpoint(endpoint.post, endpoint.get) as url:
        yield url


def run_graph(url: str, **settings: Any) -> dict[str, Any]:
    # Every role answers: no direct attempt, and one plan scored although it has nothing to be ranked against.
    return build_graph().invoke(PROBLEM, context=Context.lite(
        base_url=url, k=1, t=1, direct_first=False, plan_diversity=False,
        **({"structured_outputs": "auto"} | settings)))


def test_auto_sends_each_roles_grammar_to_vllm_and_asks_once() -> None:
    endpoint = Endpoint(owner="vllm")
    with serving(endpoint) as url:
        result = run_graph(url)
    assert result["passed"] and result["llm_calls"] == 5
    assert endpoint.grammars() == {role: module.answer_grammar("python", 1) for role, module in GRAMMARS.items()}
    assert endpoint.probes == 1  # once per endpoint, not once per call


@pytest.mark.parametrize("owner", ["openai", None])
def test_auto_stays_off_for_an_api_that_rejects_unknown_fields(owner: str | None) -> None:
    endpoint = Endpoint(owner=owner, strict=True)
    with serving(endpoint) as url:
        result = run_graph(url)  # would fail on the first call if a grammar were sent
        assert result["passed"] and sum(result["format_failures"].values()) == 0  # the tolerant parsers read it
        assert endpoint.grammars() == dict.fromkeys(GRAMMARS)
        with pytest.raises(RoleCallError, match=r"retriever agent: .*HTTP 400.*structured outputs on.*'auto' or 'off'"):
            run_graph(url, structured_outputs="on")


def test_off_sends_no_grammar_and_asks_nothing() -> None:
    endpoint = Endpoint(owner="vllm")
    with serving(endpoint) as url:
        run_graph(url, structured_outputs="off")
    assert endpoint.grammars() == dict.fromkeys(GRAMMARS) and endpoint.probes == 0


def test_a_role_on_another_endpoint_is_decided_by_its_own() -> None:
    # Collection puts a teacher on a hosted API and the student on vLLM: only the student gets grammars.
    student, teacher = Endpoint(owner="vllm"), Endpoint(owner="deepseek", strict=True)
    with serving(student) as student_url, serving(teacher) as teacher_url:
        result = run_graph(student_url, retriever_base_url=teacher_url)
    assert result["passed"]
    assert teacher.grammars() == {"retriever": None}
    assert student.grammars() == {role: module.answer_grammar("python", 1)
                                  for role, module in GRAMMARS.items() if role != "retriever"}


def test_chat_models_passed_in_never_get_a_grammar() -> None:
    models = RoleModels(scripted(coder=lambda prompt: ANSWERS["coder"]))
    assert not models.structured("coder", Context(structured_outputs="on"))
    assert models.structured("planner", Context(structured_outputs="on"))  # served by the endpoint


def test_an_endpoint_that_cannot_be_asked_is_not_vllm() -> None:
    dead = f"http://127.0.0.1:{free_port()}/v1"
    assert probe_vllm(dead, "EMPTY") is None
    assert not RoleModels().structured("coder", Context(base_url=dead))
    with serving(Endpoint(owner="vllm")) as url:
        assert probe_vllm(url, "EMPTY") is True
    with serving(Endpoint(owner=None)) as url:
        assert probe_vllm(url, "EMPTY") is False


@pytest.mark.parametrize("cot", [False, True])
def test_direct_and_cot_send_their_own_grammar_on_the_coders_model(cot: bool) -> None:
    endpoint = Endpoint(owner="vllm")
    problem = Problem(id="T/0", problem=PROBLEM["problem"], sample_tests=PROBLEM["sample_tests"],
                      entry_point="add", hidden_tests=["assert add(2, 2) == 4"])
    with serving(endpoint) as url:
        strategy = make_strategy("cot" if cot else "direct")
        asyncio.run(strategy.solve(problem, Context.lite(base_url=url, structured_outputs="auto"), Attempt()))
    assert endpoint.grammars() == {"coder": direct.answer_grammar("python", 3, cot=cot)}


def test_the_setting_is_checked_and_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    assert Context().structured_outputs == "auto"
    with pytest.raises(ValueError, match="structured_outputs must be one of auto, on, off"):
        Context(structured_outputs="yes")
    monkeypatch.setenv("MAPCODER_LITE_STRUCTURED_OUTPUTS", "off")
    assert Context().structured_outputs == "off"
    monkeypatch.setenv("MAPCODER_LITE_STRUCTURED_OUTPUTS", "always")
    with pytest.raises(ValueError, match="'always'"):
        Context()


def test_solve_takes_the_option_and_refuses_a_bad_value_before_any_call() -> None:
    endpoint = Endpoint(owner="vllm")
    example = Path(__file__).resolve().parents[2] / "examples" / "two_sum.json"
    with serving(endpoint) as url:
        bad = CliRunner().invoke(app, ["solve", str(example), "--base-url", url, "--structured-outputs", "maybe"])
        done = CliRunner().invoke(app, ["solve", str(example), "--base-url", url, "--lite", "--k", "1", "--t", "0",
                                        "--no-plan-diversity", "--structured-outputs", "off", "--json"])
    assert bad.exit_code == 2 and "structured_outputs must be one of" in bad.output
    assert done.exit_code == 0, done.output
    assert endpoint.probes == 0 and endpoint.grammars() == dict.fromkeys(("retriever", "planner", "confidence",
                                                                          "coder"))


def test_a_run_records_the_setting_and_a_run_from_before_it_was_free_text() -> None:
    strategy = make_strategy("direct", scripted(coder=lambda prompt: ANSWERS["coder"]))
    auto = RunSettings.make("toy", "test", strategy, Context(structured_outputs="auto"))
    off = RunSettings.make("toy", "test", strategy, Context(structured_outputs="off"))
    assert auto.structured_outputs == "auto"
    before = {key: value for key, value in off.to_dict().items() if key != "structured_outputs"}
    assert off.differences(before) == []
    assert auto.differences(before) == ["structured_outputs: None there, 'auto' now"]
    assert RunSettings.make("toy", "test", make_strategy("reference"), Context()).differences(
        json.loads(json.dumps({**before, "models": {}, "endpoint": None, "temperature": None, "max_tokens": None,
                               "role_max_tokens": None, "strategy": "reference"}))) == []
