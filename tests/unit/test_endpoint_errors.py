"""Endpoint failures become one clear error naming the role, the URL and the model."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from mapcoder_lite.graph import Context, build_graph
from mapcoder_lite.llm import RoleCallError
from tests.servers import Reply, completion, free_port, json_endpoint

PROBLEM = {"problem": "def f():\n    pass", "sample_tests": ["assert f() is None"], "entry_point": "f"}


@pytest.fixture
def not_found_server() -> Iterator[str]:
    # vLLM's answer for a model it does not serve.
    body = {"object": "error", "message": "The model `nope` does not exist.", "type": "NotFoundError", "code": 404}
    with json_endpoint(lambda request: (404, body)) as url:
        yield url


def test_unknown_model_names_the_role(not_found_server: str) -> None:
    context = Context(base_url=not_found_server, retriever_model="nope", direct_first=False)
    with pytest.raises(RoleCallError) as caught:
        build_graph().invoke(PROBLEM, context=context)
    message = str(caught.value)
    assert message.startswith("retriever agent:") and "404" in message
    assert not_found_server in message and "'nope'" in message


def test_unreachable_endpoint_names_the_role_and_url() -> None:
    url = f"http://127.0.0.1:{free_port()}/v1"
    with pytest.raises(RoleCallError, match=r"retriever agent: cannot connect") as caught:
        build_graph().invoke(PROBLEM, context=Context(base_url=url, model="m1", direct_first=False))
    assert url in str(caught.value) and "'m1'" in str(caught.value)


def test_context_reads_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MAPCODER_LITE_K", "2")
    monkeypatch.setenv("MAPCODER_LITE_CODER_MODEL", "coder")
    context = Context()
    assert context.k == 2 and context.model_for("coder") == "coder" and context.model_for("planner") == context.model
    assert Context(k=4).k == 4  # an explicit value wins over the environment
    monkeypatch.setenv("MAPCODER_LITE_T", "many")
    with pytest.raises(ValueError, match="MAPCODER_LITE_T='many' is not a valid int"):
        Context()


def test_context_rejects_meaningless_settings() -> None:
    with pytest.raises(ValueError, match="k must be at least 1"):
        Context(k=0)
    with pytest.raises(ValueError, match="sandbox must be"):
        Context(sandbox="docker")
    assert Context.lite().model_for("debugger") == "debugger"


def test_a_role_on_its_own_endpoint_uses_that_endpoint_and_its_key(
    not_found_server: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The retriever goes to its own (teacher) server; the default base_url is never contacted.
    monkeypatch.setenv("TEACHER_KEY", "sk-teacher")
    unused = f"http://127.0.0.1:{free_port()}/v1"
    context = Context(base_url=unused, retriever_base_url=not_found_server, role_api_keys="retriever=TEACHER_KEY",
                      direct_first=False)
    assert context.api_key_for("retriever") == "sk-teacher" and context.api_key_for("coder") == "EMPTY"
    with pytest.raises(RoleCallError, match=r"retriever agent: .*404") as caught:
        build_graph().invoke(PROBLEM, context=context)
    assert caught.value.base_url == not_found_server
    with pytest.raises(ValueError, match="role_api_keys"):
        Context(role_api_keys="writer=X")
    with pytest.raises(ValueError, match="'UNSET_KEY' for coder, but it is not set"):
        Context(role_api_keys="coder=UNSET_KEY").api_key_for("coder")


# -- a prompt longer than the context window ---------------------------------------------------------
TOO_LONG = ("This model's maximum context length is 4096 tokens. However, your prompt contains at least 4097 "
            "input tokens, which exceeds this limit even without any output tokens.")
RETRIEVAL = ("<root><problem><description>EXA example</description><code>x = 1</code><planning>plan A</planning>"
             "</problem><problem><description>EXB example</description><code>x = 2</code><planning>plan B"
             "</planning></problem><algorithm>Arithmetic</algorithm></root>")
GOOD = "```python\ndef f():\n    return None\n```"
BAD = "```python\ndef f():\n    return 1\n```"


def chat(answer: Callable[[str, str], str | None]) -> Callable[[dict[str, Any]], Reply]:
    """Chat completions where `answer(model, prompt)` is the reply, None a context-length 400 in vLLM's words."""

    def respond(request: dict[str, Any]) -> Reply:
        reply = answer(request["model"], "\n".join(str(m["content"]) for m in request["messages"]))
        if reply is None:
            return 400, {"error": {"message": TOO_LONG, "type": "BadRequestError", "param": None, "code": 400}}
        return 200, completion(request["model"], reply)

    return respond


def answers(model: str, prompt: str, *, refuse: str) -> str | None:
    """Two plans: plan B (confidence 90) is coded wrong, plan A (confidence 40) right; `refuse` gets a 400."""
    if model == refuse and (refuse != "coder" or "plan B" in prompt):
        return None
    if model == "retriever":
        return RETRIEVAL
    if model == "planner":
        return "1. plan B" if "EXB example" in prompt else "1. plan A"
    if model == "confidence":
        score = 90 if "plan B" in prompt else 40
        return f"<root><explanation>x</explanation><confidence>{score}</confidence></root>"
    if model == "coder":
        return BAD if "plan B" in prompt else GOOD
    return "1. still wrong\n" + BAD


@pytest.mark.parametrize("refuse", ["debugger", "coder"])
def test_a_prompt_longer_than_the_context_ends_that_plan_not_the_run(refuse: str) -> None:
    # Seen on MBPP/110: a 1,536-token tutorial and a 1,042-token program made the debugger's prompt
    # longer than vLLM's 4096-token context, and the whole problem ended as an error.
    with json_endpoint(chat(lambda model, prompt: answers(model, prompt, refuse=refuse))) as url:
        result = build_graph().invoke(PROBLEM, context=Context.lite(base_url=url, k=2, t=3, direct_first=False))
    assert result["passed"] is True and "return None" in result["code"]  # plan A, coded next, passes
    refused = [call for call in result["trajectory"] if call.get("error")]
    assert [call["role"] for call in refused] == [refuse]  # refused once; plan B's remaining rounds are skipped
    assert "context window" in refused[0]["error"] and "--max-model-len" in refused[0]["error"]
    assert refused[0]["response"] == "" and refused[0]["completion_tokens"] == 0
    assert result["format_failures"][refuse] == 0  # a refusal is not the model's format failure
    assert result["llm_calls"] == len(result["trajectory"]) - 1
    assert [p["plan"] for p in result["plans"]] == ["1. plan B", "1. plan A"]


def test_a_prompt_too_long_for_any_agent_is_a_clear_error() -> None:
    too_long = r"retriever agent: the prompt does not fit the model's context"
    with json_endpoint(chat(lambda model, prompt: None)) as url, pytest.raises(RoleCallError, match=too_long):
        build_graph().invoke(PROBLEM, context=Context(base_url=url, model="m", direct_first=False))
