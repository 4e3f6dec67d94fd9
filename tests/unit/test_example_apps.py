"""The example apps under examples/: the coding agent (MapCoder-Lite as its tool) and the reviewed solve
(MapCoder-Lite as a subgraph), each driven by scripted models end to end."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, ToolMessage
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.types import Command

from mapcoder_lite.graph import Context
from mapcoder_lite.problem import ProblemError, load_problem
from tests.graph_answers import BAD, confidence, prompts, retrieval
from tests.modules import load_file
from tests.scripted import ScriptedAgentModel, scripted
from tests.servers import Reply, completion, json_endpoint

ROOT = Path(__file__).resolve().parents[2]
TWO_SUM = (ROOT / "examples" / "two_sum.md").read_text()
TWO_SUM_CODE = (
    "```python\ndef two_sum(nums, target):\n    seen = {}\n    for i, x in enumerate(nums):\n"
    "        if target - x in seen:\n            return [seen[target - x], i]\n        seen[x] = i\n```"
)

# The agents as in the paper, one plan and no debugging: the scripted answers follow that order.
ONE_PLAN = Context(k=1, t=0).paper_graph()


def load_example(name: str) -> ModuleType:
    """An example app by file name (examples/ is not a package: langgraph.json points at the files)."""
    return load_file(ROOT / "examples" / f"{name}.py", f"example_{name}")


def two_sum_models(coder: str = TWO_SUM_CODE) -> dict[str, Any]:
    return scripted(retriever=lambda p: retrieval("EXA"), planner=lambda p: "1. remember seen values",
                    confidence=lambda p: confidence(85), coder=lambda p: coder,
                    debugger=lambda p: "1. still wrong\n" + coder)


# -- the coding agent ---------------------------------------------------------------------------------


def agent_script(tool_args: dict[str, Any] | None) -> Any:
    """Call the tool with `tool_args` on the user's task (or answer at once when None), then answer."""

    def script(messages: list[BaseMessage]) -> AIMessage:
        last = messages[-1]
        if tool_args is None:
            return AIMessage(content="No program needed: 2 + 2 = 4.")
        if isinstance(last, HumanMessage) and last.name == "sample_check":
            return AIMessage(content=f"Done. {last.content}")
        return AIMessage(content="", tool_calls=[{"name": "solve_programming_problem", "args": tool_args, "id": "c1"}])

    return script


def test_coding_agent_calls_the_tool_checks_the_samples_itself_and_answers() -> None:
    problem = dict(load_problem(ROOT / "examples" / "two_sum.md"))
    models = two_sum_models()
    agent_model = ScriptedAgentModel(script=agent_script({"problem": problem["problem"],
                                                          "sample_tests": problem["sample_tests"]}))
    app = load_example("coding_agent").build(agent_model=agent_model, chat_models=models)
    events = []
    final: dict[str, Any] = {}
    for mode, chunk in app.stream({"messages": [HumanMessage(TWO_SUM)]}, context=ONE_PLAN,
                                  stream_mode=["custom", "values"]):
        if mode == "custom":
            events.append(chunk["node"])
        else:
            final = chunk

    _task, call, tool_message, check, answer = final["messages"]
    assert call.tool_calls[0]["name"] == "solve_programming_problem"
    assert json.loads(tool_message.content)["passed"] is True
    assert check.name == "sample_check"
    assert check.content == "Sample check: I ran the returned code on the 3 sample tests; 3 passed."
    assert answer.content.startswith("Done. Sample check")
    assert events == ["retriever", "planner", "confidence", "rank_plans", "coder", "sample_testing", "finish"]
    # The agent saw the system prompt and its tool; MapCoder-Lite ran one plan (the run's Context).
    assert agent_model.tools[0]["function"]["name"] == "solve_programming_problem"
    assert prompts(models) == 4


def test_coding_agent_reports_failing_samples_from_its_own_check() -> None:
    problem = dict(load_problem(ROOT / "examples" / "two_sum.md"))
    wrong = "```python\ndef two_sum(nums, target):\n    return [0, 1]\n```"
    agent_model = ScriptedAgentModel(script=agent_script({"problem": problem["problem"],
                                                          "sample_tests": problem["sample_tests"]}))
    app = load_example("coding_agent").build(agent_model=agent_model, chat_models=two_sum_models(wrong))
    messages = app.invoke({"messages": [HumanMessage(TWO_SUM)]}, context=ONE_PLAN)["messages"]
    check = next(m for m in messages if isinstance(m, HumanMessage) and m.name == "sample_check")
    assert "3 sample tests; 2 passed." in check.content  # [0, 1] is right for two of them
    assert "two_sum([3, 2, 4], 6)" in check.content  # the failing sample, as the sandbox reported it


def test_coding_agent_answers_without_the_tool_when_no_program_is_needed() -> None:
    models = two_sum_models()
    app = load_example("coding_agent").build(agent_model=ScriptedAgentModel(script=agent_script(None)),
                                             chat_models=models)
    messages = app.invoke({"messages": [HumanMessage("What is 2 + 2?")]})["messages"]
    assert [type(m).__name__ for m in messages] == ["HumanMessage", "AIMessage"]
    assert prompts(models) == 0


def test_coding_agent_stops_offering_the_tool_after_two_rounds() -> None:
    problem = dict(load_problem(ROOT / "examples" / "two_sum.md"))
    args = {"problem": problem["problem"], "sample_tests": problem["sample_tests"]}
    bound: list[bool] = []

    class Stubborn(ScriptedAgentModel):
        def bind_tools(self, tools: Any, **kwargs: Any) -> ScriptedAgentModel:
            bound.append(True)
            return super().bind_tools(tools, **kwargs)

    def script(messages: list[BaseMessage]) -> AIMessage:
        # Always asks for the tool; without tools bound a real model could not, so it answers then.
        if len(bound) > sum(isinstance(m, ToolMessage) for m in messages):
            return AIMessage(content="", tool_calls=[{"name": "solve_programming_problem", "args": args,
                                                      "id": f"c{len(messages)}"}])
        return AIMessage(content="Here is the best I have.")

    app = load_example("coding_agent").build(agent_model=Stubborn(script=script), chat_models=two_sum_models(BAD))
    messages = app.invoke({"messages": [HumanMessage(TWO_SUM)]}, context=ONE_PLAN)["messages"]
    assert sum(isinstance(m, ToolMessage) for m in messages) == 2 and len(bound) == 2
    assert messages[-1].content == "Here is the best I have."


# -- the reviewed solve ---------------------------------------------------------------------------------


def test_solve_and_review_pauses_for_the_reviewer_and_answers_after_resuming() -> None:
    example = load_example("solve_and_review")
    models = two_sum_models()
    app = example.build(chat_models=models, checkpointer=InMemorySaver())
    config = {"configurable": {"thread_id": "review"}}

    app.invoke({"task": TWO_SUM}, config, context=ONE_PLAN)
    paused = app.get_state(config)
    assert paused.next == ("review",)
    question = paused.interrupts[0].value
    assert question["passed"] is True and "def two_sum" in question["code"]
    calls = prompts(models)

    final = app.invoke(Command(resume={"approved": False, "note": "use a dict comprehension"}), config)
    assert set(final) == {"code", "passed", "summary", "llm_calls", "approved", "note", "answer"}
    assert final["approved"] is False and final["llm_calls"] == calls == 4
    assert final["answer"].startswith("Passes all 3 sample tests with plan 1 of 1 (confidence 85).")
    assert final["answer"].endswith("The reviewer rejected it. Reviewer: use a dict comprehension")
    assert prompts(models) == calls


def test_solve_and_review_rejects_a_task_without_samples_and_a_bad_review_answer() -> None:
    example = load_example("solve_and_review")
    models = two_sum_models()
    app = example.build(chat_models=models, checkpointer=InMemorySaver())
    with pytest.raises(ProblemError, match="task: found no sample tests"):
        app.invoke({"task": "Write two_sum."}, {"configurable": {"thread_id": "no-samples"}})
    assert prompts(models) == 0

    config = {"configurable": {"thread_id": "bad-answer"}}
    app.invoke({"task": TWO_SUM}, config, context=ONE_PLAN)
    with pytest.raises(ValueError, match="resume the review with True, False"):
        app.invoke(Command(resume="yes"), config)


# -- the coding agent's command, over HTTP ---------------------------------------------------------------


@pytest.fixture
def tool_calling_endpoint() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """An OpenAI-compatible endpoint standing in for vLLM with tool calling on: the agent's first request
    (it offers tools) gets a tool call, its next one an answer; MapCoder-Lite's agents get a program.
    Yields its URL and the requests it gets."""
    problem = dict(load_problem(ROOT / "examples" / "two_sum.md"))
    tool_args = {"problem": problem["problem"], "sample_tests": problem["sample_tests"]}
    requests: list[dict[str, Any]] = []

    def respond(request: dict[str, Any]) -> Reply:
        requests.append(request)
        if not request.get("tools"):
            return 200, completion(request["model"], TWO_SUM_CODE)
        if any(m["role"] == "tool" for m in request["messages"]):
            return 200, completion(request["model"], "It passes; here it is:\n" + TWO_SUM_CODE)
        call = {"id": "call-1", "type": "function",
                "function": {"name": "solve_programming_problem", "arguments": json.dumps(tool_args)}}
        return 200, completion(request["model"], None, tool_calls=[call])

    with json_endpoint(respond) as url:
        yield url, requests


def test_coding_agent_command_runs_over_an_openai_compatible_endpoint(
        tool_calling_endpoint: tuple[str, list[dict[str, Any]]]) -> None:
    url, requests = tool_calling_endpoint
    command = [sys.executable, str(ROOT / "examples" / "coding_agent.py"), str(ROOT / "examples" / "two_sum.md"),
               "--base-url", url, "--model", "served", "--k", "1", "--t", "0"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120, cwd=ROOT,
                          env=os.environ | {"PYTHONPATH": str(ROOT)})
    assert done.returncode == 0, done.stderr[-3000:]
    lines = done.stdout.splitlines()
    assert lines[0] == "agent: calls solve_programming_problem"
    assert any(line.split()[:2] in (["mapcoder-lite", "direct"], ["mapcoder-lite", "coder"]) for line in lines)
    assert "check: Sample check: I ran the returned code on the 3 sample tests; 3 passed." in lines
    assert done.stdout.split("answer:\n")[1].startswith("It passes; here it is:")

    agent_requests = [r for r in requests if r.get("tools")]
    assert len(agent_requests) == 2 and all(r["model"] == "served" for r in requests)
    (tool,) = agent_requests[0]["tools"]
    assert tool["function"]["name"] == "solve_programming_problem"
    last = agent_requests[1]["messages"][-1]
    assert last["role"] == "user" and last["name"] == "sample_check"
