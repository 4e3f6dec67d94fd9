"""MapCoder-Lite inside larger apps: as a tool of LangGraph's prebuilt ReAct agent, and as a subgraph of a
parent graph with its own state, a checkpointer and interrupts. Every model is scripted: the agent's,
and MapCoder-Lite's own agents; the sample tests run in the real local sandbox."""

from __future__ import annotations

import json
import warnings
from collections.abc import Callable
from typing import Any, NotRequired

import pytest
from langchain_core.messages import AIMessage, BaseMessage, ToolMessage
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph import END, START, StateGraph
from langgraph.graph.state import CompiledStateGraph
from langgraph.types import Command, interrupt
from pydantic import ValidationError
from typing_extensions import TypedDict

from mapcoder_lite.compose import PROGRESS_SOURCE, as_subgraph, as_tool
from mapcoder_lite.graph import Context
from mapcoder_lite.problem import ProblemError
from tests.graph_answers import BAD, FUNCTION_PROBLEM, GOOD, by_marker, confidence, prompts, retrieval
from tests.scripted import ScriptedAgentModel, ScriptedChatModel, scripted

AGENT_STEPS = ["retriever", "planner", "confidence", "rank_plans", "coder", "sample_testing", "finish"]


def mapcoder_models(coder: str = GOOD) -> dict[str, ScriptedChatModel]:
    return scripted(
        retriever=lambda p: retrieval("EXA", "EXB"),
        planner=by_marker({"EXA example": "PLAN-A", "EXB example": "PLAN-B"}),
        confidence=by_marker({"PLAN-A": confidence(30), "PLAN-B": confidence(80)}),
        coder=lambda p: coder,
        debugger=lambda p: "1. still wrong\n" + BAD,
    )


def calls_tool_once(args: dict[str, Any]) -> Callable[[list[BaseMessage]], AIMessage]:
    """The agent's script: call the tool with `args`, then answer with what the tool returned."""

    def script(messages: list[BaseMessage]) -> AIMessage:
        if isinstance(messages[-1], ToolMessage):
            return AIMessage(content=f"Tool said: {messages[-1].content}")
        return AIMessage(content="", tool_calls=[{"name": "solve_programming_problem", "args": args, "id": "call-1"}])

    return script


def react_agent(model: ScriptedAgentModel, tool: Any) -> CompiledStateGraph:
    from langgraph.prebuilt import create_react_agent

    with warnings.catch_warnings():
        # Deprecated in favour of langchain.agents.create_agent, which this project does not install.
        warnings.simplefilter("ignore")
        return create_react_agent(model, [tool], checkpointer=InMemorySaver())


# -- as a tool ------------------------------------------------------------------------------------------


def test_prebuilt_react_agent_calls_the_tool_and_receives_the_graphs_output() -> None:
    models = mapcoder_models()
    tool = as_tool(chat_models=models, context=Context(direct_first=False))  # the whole graph's steps
    agent_model = ScriptedAgentModel(script=calls_tool_once(
        {"problem": FUNCTION_PROBLEM["problem"], "sample_tests": FUNCTION_PROBLEM["sample_tests"]}))
    agent = react_agent(agent_model, tool)
    config = {"configurable": {"thread_id": "t"}}

    events, nested = [], set()
    for namespace, mode, chunk in agent.stream({"messages": [("user", "Write add(a, b).")]}, config,
                                               stream_mode=["updates", "custom"], subgraphs=True):
        if mode == "custom":
            events.append(chunk)
        elif namespace and namespace[0].startswith("tools:"):
            nested.update(chunk)

    # The model saw the argument schema a real tool-calling model gets.
    (schema,) = agent_model.tools
    assert schema["function"]["name"] == "solve_programming_problem"
    parameters = schema["function"]["parameters"]
    assert set(parameters["properties"]) == {"problem", "sample_tests", "entry_point", "language", "settings"}
    assert set(parameters["required"]) == {"problem", "sample_tests"}

    messages = agent.get_state(config).values["messages"]
    tool_message = next(m for m in messages if isinstance(m, ToolMessage))
    content = json.loads(tool_message.content)
    assert set(content) == {"code", "passed", "summary"}
    assert content["passed"] is True and "return a + b" in content["code"]
    # Plans are tried in confidence order: PLAN-B (80) passed first, so it is plan 1 of 2.
    assert content["summary"].startswith("Passes all 2 sample tests with plan 1 of 2 (confidence 80).")
    assert tool_message.artifact["llm_calls"] == prompts(models) == 1 + 2 + 2 + 1
    assert tool_message.artifact["plans"] == 2 and tool_message.artifact["plans_tried"] == 1
    assert messages[-1].content.startswith("Tool said: {")  # the agent answered from the tool's output

    # Each agent step reached the parent app on the custom stream, in order, and the nested updates too.
    assert [e["node"] for e in events] == ["retriever", "planner", "planner", "confidence", "confidence",
                                           "rank_plans", "coder", "sample_testing", "finish"]
    assert all(e["source"] == PROGRESS_SOURCE and e["message"] for e in events)
    assert events[-3]["model"] == "ScriptedChatModel" and events[-2]["samples_passed"] == 2
    assert set(AGENT_STEPS) <= nested


def test_the_calling_model_sets_k_and_t_within_bounds_and_the_app_sets_the_rest() -> None:
    models = mapcoder_models(coder=BAD)
    tool = as_tool(chat_models=models, context=Context(k=3, t=3, direct_first=False))
    problem = {"problem": FUNCTION_PROBLEM["problem"], "sample_tests": FUNCTION_PROBLEM["sample_tests"]}

    _, result = tool.func(**problem, settings={"k": 1, "t": 1})  # the tool's function: (content, artifact)
    assert result["passed"] is False and result["plans"] == 1
    assert result["llm_calls"] == 1 + 1 + 1 + 1  # one plan (not scored: nothing to rank), coded, debugged once
    assert result["summary"].startswith("Does not pass the samples: the best attempt passes 0 of 2, from plan 1 of 1")

    with pytest.raises(ValidationError, match="less than or equal to 5"):
        tool.invoke(problem | {"settings": {"k": 50}})


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ({"problem": "Add two numbers.", "sample_tests": []}, "at least 1 item"),
        ({"problem": "Add two numbers.", "sample_tests": ["add(1, 2) == 3"]}, "neither an 'assert ...' string"),
        ({"problem": "", "sample_tests": ["assert add(1, 2) == 3"]}, "'problem' must be a non-empty string"),
        ({"problem": "Add.", "sample_tests": ["assert add(1, 2) == 3"], "language": "rust"}, "unsupported language"),
        ({"problem": "Add.", "sample_tests": [{"input": "1 2"}]}, "output"),
    ],
)
def test_bad_tool_arguments_go_back_to_the_agent_before_any_model_call(args: dict[str, Any], message: str) -> None:
    models = mapcoder_models()
    agent = react_agent(ScriptedAgentModel(script=calls_tool_once(args)), as_tool(chat_models=models))
    result = agent.invoke({"messages": [("user", "Write add.")]}, {"configurable": {"thread_id": "t"}})
    tool_message = next(m for m in result["messages"] if isinstance(m, ToolMessage))
    assert tool_message.status == "error" and message in tool_message.content
    assert prompts(models) == 0


def test_the_tool_outside_any_graph_and_with_a_stdin_problem() -> None:
    wrong = "```python\na, b = map(int, input().split())\nprint(a + b)\n```"
    right = "```python\na, b = map(int, input().split())\nprint(a * b)\n```"
    models = scripted(retriever=lambda p: retrieval("EXA"), planner=lambda p: "1. multiply",
                      confidence=lambda p: confidence(60), coder=lambda p: wrong,
                      debugger=lambda p: "1. multiply, not add\n" + right)
    tool = as_tool(chat_models=models, context={"k": 1, "t": 2})
    content = tool.invoke({"problem": "Print the product of two integers.",
                           "sample_tests": [{"input": "2 3\n", "output": "6\n"}, {"input": "4 5\n", "output": "20\n"}]})
    result = json.loads(content)
    assert result["passed"] is True and "a * b" in result["code"]
    # The direct answer and the plan's code failed (the same program: the coder was asked twice, as
    # Context.plan_diversity does for a program already tested), the debugger's passed.
    # One plan: not scored, since there is nothing to rank it against.
    assert result["summary"].startswith("Passes all 2 sample tests with plan 1 of 1 after 1 debugging round. "
                                        "6 model calls")


def test_a_misspelt_context_field_fails_when_the_tool_is_made() -> None:
    with pytest.raises(ValueError, match=r"unknown context fields \['kk'\]"):
        as_tool(chat_models=mapcoder_models(), context={"kk": 1})
    with pytest.raises(ValueError, match="either graph or chat_models"):
        as_tool(chat_models=mapcoder_models(), graph=object())  # type: ignore[arg-type]


# -- as a subgraph --------------------------------------------------------------------------------------


class Ticket(TypedDict):
    """A parent app's state: nothing in common with MapCoder-Lite's."""

    title: str
    spec: str
    checks: list[str]
    solution: NotRequired[str]
    ok: NotRequired[bool]
    verdict: NotRequired[str]


def ticket_to_problem(state: Ticket) -> dict[str, Any]:
    return {"problem": state["spec"], "sample_tests": state["checks"]}


def result_to_ticket(output: dict[str, Any]) -> dict[str, Any]:
    return {"solution": output["code"], "ok": output["passed"]}


def ticket_app(node: Any, context_schema: type | None = None) -> CompiledStateGraph:
    builder = StateGraph(Ticket, context_schema=context_schema)
    builder.add_node("solve", node)
    builder.add_node("review", lambda state: {"verdict": interrupt({"solution": state["solution"]})})
    builder.add_edge(START, "solve")
    builder.add_edge("solve", "review")
    builder.add_edge("review", END)
    return builder.compile(checkpointer=InMemorySaver())


TICKET = {"title": "add", "spec": FUNCTION_PROBLEM["problem"], "checks": FUNCTION_PROBLEM["sample_tests"]}


def test_parent_graph_runs_it_as_a_subgraph_and_resumes_after_an_interrupt_without_rerunning_it() -> None:
    models = mapcoder_models()
    paper = Context(k=2, direct_first=False)
    node = as_subgraph(ticket_to_problem, result_to_ticket, chat_models=models, context=paper)
    app = ticket_app(node)
    config = {"configurable": {"thread_id": "ticket-1"}}

    nested = [
        (namespace, node)
        for namespace, chunk in app.stream(TICKET, config, stream_mode="updates", subgraphs=True)
        for node in chunk
    ]
    assert [node for namespace, node in nested if namespace and node in AGENT_STEPS] == [
        "retriever", "planner", "planner", "confidence", "confidence", "rank_plans", "coder", "sample_testing",
        "finish"]  # fmt: skip
    assert all(ns[0].startswith("solve:") for ns, node in nested if node in AGENT_STEPS)
    paused = app.get_state(config)
    assert paused.next == ("review",)
    assert "return a + b" in paused.interrupts[0].value["solution"]
    calls = prompts(models)

    final = app.invoke(Command(resume="ship it"), config)
    assert final["verdict"] == "ship it" and final["ok"] is True and "return a + b" in final["solution"]
    assert set(final) == set(Ticket.__annotations__)  # the parent's state only, none of ours
    assert prompts(models) == calls  # resuming did not run the agents again


def test_an_interrupt_inside_the_subgraph_pauses_the_parent_and_resumes_at_that_step() -> None:
    models = mapcoder_models()
    node = as_subgraph(ticket_to_problem, result_to_ticket, chat_models=models, interrupt_before=["coder"])
    app = ticket_app(node, context_schema=Context)
    config = {"configurable": {"thread_id": "ticket-2"}}

    # The parent's own Context reaches the subgraph: one plan, not the default three.
    app.invoke(TICKET, config, context=Context(k=1, direct_first=False))
    paused = app.get_state(config, subgraphs=True)
    assert paused.next == ("solve",)
    inner = paused.tasks[0].state
    assert inner.next == ("coder",)
    assert [plan["plan"] for plan in inner.values["plans"]] == ["PLAN-A"]  # ranked plans, ready for review
    assert models["coder"].prompts == []

    app.invoke(None, config, context=Context(k=1, direct_first=False))  # go on from the coder
    assert app.get_state(config).next == ("review",)
    assert len(models["retriever"].prompts) == 1 and len(models["coder"].prompts) == 1
    assert "return a + b" in app.get_state(config).values["solution"]


def test_studio_sees_the_nested_steps_of_the_subgraph_node() -> None:
    app = ticket_app(as_subgraph(ticket_to_problem, result_to_ticket, chat_models=mapcoder_models()))
    nodes = set(app.get_graph(xray=1).nodes)
    assert {f"solve:{step}" for step in AGENT_STEPS} <= nodes
    assert [name for name, _ in app.get_subgraphs()] == ["solve"]


def test_bad_subgraph_input_and_unknown_interrupt_nodes_are_clear_errors_before_any_model_call() -> None:
    models = mapcoder_models()
    app = ticket_app(as_subgraph(lambda state: {"problem": state["spec"], "sample_tests": ["add(1, 2)"]},
                                 result_to_ticket, chat_models=models))
    with pytest.raises(ProblemError, match=r"as_subgraph: to_input\(state\): sample_tests\[0\]"):
        app.invoke(TICKET, {"configurable": {"thread_id": "bad"}})
    assert prompts(models) == 0
    with pytest.raises(ValueError, match=r"interrupt_before: no node \['codr'\]"):
        as_subgraph(ticket_to_problem, result_to_ticket, chat_models=models, interrupt_before=["codr"])


def test_progress_lines_keep_the_models_brackets_and_drop_only_the_terminal_colours() -> None:
    from mapcoder_lite.compose import progress_event

    call = {"response": "1. return [seen[x], i] for [/x]", "model": "m", "prompt_tokens": 3, "completion_tokens": 2,
            "seconds": 0.5, "parsed": False}
    event = progress_event("planner", {"trajectory": [call]})
    assert event["message"] == "plan: 1. return [seen[x], i] for [/x]  0.5s, 3+2 tok format failure"
    assert event["parsed"] is False


def test_a_direct_answer_that_passes_is_the_tools_answer_after_one_call() -> None:
    models = mapcoder_models()
    _, result = as_tool(chat_models=models).func(problem=FUNCTION_PROBLEM["problem"],
                                                 sample_tests=FUNCTION_PROBLEM["sample_tests"])
    assert result["passed"] is True and result["llm_calls"] == 1 and result["plans"] == 0
    assert result["summary"].startswith("Passes all 2 sample tests with the direct attempt, before any plan.")
