"""A small coding assistant built on MapCoder-Lite as a tool: it reads a task, decides whether to call the
tool, runs the code it gets back on the task's samples itself, and answers.

    task -> agent --(tool call)--> tools (MapCoder-Lite) -> check (the samples, in the sandbox) -> agent -> answer
                  \\-(no tool call: no program needed)-------------------------------------------> answer

Against the server `make demo` uses (vLLM, Qwen2.5-Coder-0.5B-Instruct, http://127.0.0.1:8000/v1),
started with tool calling on so that vLLM turns the model's tool-call text into tool calls:

    mapcoder-lite serve --vllm-arg=--enable-auto-tool-choice --vllm-arg=--tool-call-parser=hermes
    python examples/coding_agent.py examples/two_sum.md --k 1 --t 1

The agent and MapCoder-Lite's agents use the same endpoint and model here (`Context.base_url`,
`Context.model`); any tool-calling chat model can be the agent instead (`build(agent_model=...)`).
`langgraph.json` exports it as `coding_agent`.
"""

from __future__ import annotations

import argparse
import sys
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage, ToolMessage
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.graph import END, START, MessagesState, StateGraph
from langgraph.graph.state import CompiledStateGraph
from langgraph.prebuilt import ToolNode
from langgraph.runtime import Runtime

from mapcoder_lite.compose import PROGRESS_SOURCE, SolveProblem, as_tool, problem_dict
from mapcoder_lite.graph import Context
from mapcoder_lite.graph.context import context_of
from mapcoder_lite.sandbox import Limits, get_sandbox, run_tests

SYSTEM = (
    "You are a coding assistant. When the user asks for a program and gives example tests, call the tool "
    "solve_programming_problem with the whole problem statement and the example tests copied exactly "
    "(assert lines, or input/output pairs). Then tell the user whether the code passed and show it. "
    "When no program is asked for, answer directly."
)
MAX_TOOL_ROUNDS = 2  # then the agent must answer: a model that keeps calling the tool cannot loop forever


class AgentState(MessagesState):
    """The conversation; tool results and the app's own sample checks are messages in it."""


def _openai_model(context: Context) -> BaseChatModel:
    from langchain_openai import ChatOpenAI

    return ChatOpenAI(base_url=context.base_url, api_key=context.api_key or "EMPTY", model=context.model,
                      temperature=context.temperature, max_completion_tokens=context.max_tokens,
                      timeout=context.request_timeout_s, max_retries=1,
                      use_responses_api=False,  # vLLM serves chat completions
                      stream_usage=True)


def _tool_rounds(messages: list[BaseMessage]) -> int:
    return sum(1 for m in messages if isinstance(m, AIMessage) and m.tool_calls)


def build(
    agent_model: BaseChatModel | None = None,
    chat_models: Mapping[str, BaseChatModel] | None = None,
    checkpointer: BaseCheckpointSaver | None = None,
) -> CompiledStateGraph:
    """The app. `agent_model` decides and answers (default: the run's Context endpoint and model);
    `chat_models` are MapCoder-Lite's agents, as in `build_graph`."""
    tool = as_tool(chat_models=chat_models)
    models: dict[tuple[Any, ...], BaseChatModel] = {}
    lock = threading.Lock()

    def model_for(context: Context) -> BaseChatModel:
        if agent_model is not None:
            return agent_model
        key = (context.base_url, context.model, context.temperature, context.max_tokens)
        with lock:
            if key not in models:
                models[key] = _openai_model(context)
            return models[key]

    def agent(state: AgentState, runtime: Runtime[Context]) -> dict[str, Any]:
        model = model_for(context_of(runtime.context))
        if _tool_rounds(state["messages"]) < MAX_TOOL_ROUNDS:
            model = model.bind_tools([tool])
        return {"messages": [model.invoke([SystemMessage(SYSTEM), *state["messages"]])]}

    def after_agent(state: AgentState) -> Literal["tools", "__end__"]:
        last = state["messages"][-1]
        return "tools" if isinstance(last, AIMessage) and last.tool_calls else END

    def check(state: AgentState, runtime: Runtime[Context]) -> dict[str, Any]:
        """Run the code the tool returned on the samples of the call that asked for it: the app checks
        for itself before it answers, rather than taking the tool's word."""
        context = context_of(runtime.context)
        call = next(m for m in reversed(state["messages"]) if isinstance(m, AIMessage) and m.tool_calls)
        arguments = {c["id"]: c["args"] for c in call.tool_calls}
        notes = []
        for message in state["messages"][state["messages"].index(call) + 1:]:
            if not (isinstance(message, ToolMessage) and isinstance(message.artifact, Mapping)):
                continue  # a failed tool call: its error message already tells the agent what went wrong
            problem = problem_dict(SolveProblem(**arguments[message.tool_call_id]))
            code = message.artifact["code"]
            if not code.strip():
                notes.append("The tool returned no code, so there was nothing to run.")
                continue
            report = run_tests(get_sandbox(context.sandbox), code, problem["sample_tests"],
                               entry_point=problem["entry_point"], language=problem["language"],
                               limits=Limits(timeout_s=context.test_timeout_s, memory_mb=context.memory_mb))
            note = f"Sample check: I ran the returned code on the {report.total} sample tests; {report.passed} passed."
            notes.append(note if report.all_passed else f"{note}\n{report.render()}")
        return {"messages": [HumanMessage("\n\n".join(notes), name="sample_check")]} if notes else {}

    builder = StateGraph(AgentState, context_schema=Context)
    builder.add_node("agent", agent)
    builder.add_node("tools", ToolNode([tool]))
    builder.add_node("check", check)
    builder.add_edge(START, "agent")
    builder.add_conditional_edges("agent", after_agent, ["tools", END])
    builder.add_edge("tools", "check")
    builder.add_edge("check", "agent")
    compiled = builder.compile(checkpointer=checkpointer)
    compiled.name = "Coding agent"
    return compiled


# Exported by langgraph.json.
graph = build()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("task", type=Path, help="a file with the task, e.g. examples/two_sum.md")
    parser.add_argument("--base-url", help="OpenAI-compatible endpoint (default: Context.base_url)")
    parser.add_argument("--model", help="model name of the agent and every role (default: Context.model)")
    parser.add_argument("--k", type=int, help="plans MapCoder-Lite writes")
    parser.add_argument("--t", type=int, help="debugging rounds per plan")
    args = parser.parse_args(argv)
    fields = {"base_url": args.base_url, "model": args.model, "k": args.k, "t": args.t}
    context = Context(**{name: value for name, value in fields.items() if value is not None})
    task = args.task.read_text(encoding="utf-8")

    final: list[BaseMessage] = []
    for mode, chunk in graph.stream({"messages": [HumanMessage(task)]}, context=context,
                                    stream_mode=["updates", "custom", "values"]):
        if mode == "custom" and chunk.get("source") == PROGRESS_SOURCE:
            print(f"    mapcoder-lite {chunk['node']:>14}  {chunk['message']}")
        elif mode == "updates":
            for node, update in chunk.items():
                for message in (update or {}).get("messages", []):
                    if isinstance(message, AIMessage) and message.tool_calls:
                        print(f"agent: calls {', '.join(c['name'] for c in message.tool_calls)}")
                    elif node == "check":
                        print(f"check: {message.content}")
        elif mode == "values":
            final = chunk["messages"]
    print(f"\nanswer:\n{final[-1].content}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
