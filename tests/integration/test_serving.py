"""Real vLLM on the CPU serving a small model with one LoRA adapter per role, and the in-process twin.

One server (see conftest) serves `smollm2-135m-instruct` with adapters `coder` and `planner`; a test
loads `debugger` at run time. Requests go through ChatOpenAI built the way the graph builds it.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from langchain_core.messages import HumanMessage
from langchain_openai import ChatOpenAI

from mapcoder_lite.serving.vllm import VLLMServer, VLLMServerError, list_models, load_adapter, unload_adapter
from tests.integration.vllm_setup import (
    PROMPT,
    RUNTIME_ADAPTER,
    STARTUP_ADAPTERS,
    startup_adapter_server,
)
from tests.servers import need, vllm_python

pytestmark = pytest.mark.integration

MAX_TOKENS = 24
# Greedy decoding in bfloat16 by two different kernel sets (vLLM's CPU kernels, PyTorch eager) can
# only part ways where the two best tokens are nearly tied. bfloat16 keeps ~3 significant digits,
# so logits of magnitude ~20 carry rounding errors around 0.1 that add up over 30 layers: a gap
# under 0.5 nats between vLLM's best token and the in-process one counts as such a tie.
TIE_TOLERANCE_NATS = 0.5


def chat(server: VLLMServer, model: str, **kwargs: Any) -> ChatOpenAI:
    return ChatOpenAI(
        base_url=server.base_url,
        api_key="EMPTY",
        model=model,
        use_responses_api=False,
        stream_usage=True,
        temperature=0,
        max_completion_tokens=MAX_TOKENS,
        max_retries=0,
        **kwargs,
    )


def raw_completion(server: VLLMServer, model: str, prompt: str = PROMPT) -> dict[str, Any]:
    """One greedy chat completion with token ids and top-5 logprobs per generated token."""
    response = httpx.post(
        f"{server.base_url}/chat/completions",
        json={
            "model": model,
            "messages": [{"role": "user", "content": prompt}],
            "max_tokens": MAX_TOKENS,
            "temperature": 0,
            "logprobs": True,
            "top_logprobs": 5,
            "return_tokens_as_token_ids": True,
        },
        timeout=300,
    )
    response.raise_for_status()
    return response.json()


def token_id(token: str) -> int:
    return int(token.removeprefix("token_id:"))


@pytest.fixture(scope="module")
def base_answer(vllm_server: VLLMServer) -> str:
    return str(chat(vllm_server, vllm_server.served_model_name).invoke(PROMPT).content)


def test_server_lists_the_base_model_and_every_role(vllm_server: VLLMServer) -> None:
    names = list_models(vllm_server.base_url)
    assert set(names) >= {vllm_server.served_model_name, *STARTUP_ADAPTERS}
    assert vllm_server.served_model_name == "smollm2-135m-instruct"  # the prepared directory's name
    assert vllm_server.rss_bytes() > 100 * 2**20  # the process group is measured, not just the launcher


@pytest.mark.parametrize("role", list(STARTUP_ADAPTERS))
def test_each_role_reaches_its_own_adapter(vllm_server: VLLMServer, base_answer: str, role: str) -> None:
    answer = chat(vllm_server, role).invoke(PROMPT)
    # vLLM answers with the model it ran: the adapter named after the role.
    assert answer.response_metadata["model_name"] == role
    assert answer.usage_metadata and answer.usage_metadata["output_tokens"] > 0
    assert answer.content and answer.content != base_answer, "the adapter's answer equals the base model's"
    raw = raw_completion(vllm_server, role)
    assert raw["model"] == role


def test_adapters_answer_differently_from_each_other(vllm_server: VLLMServer) -> None:
    answers = {role: chat(vllm_server, role).invoke(PROMPT).content for role in STARTUP_ADAPTERS}
    assert len(set(answers.values())) == len(answers), answers


def test_a_base_request_batched_beside_adapter_requests_gets_no_adapter(
        model_dir: Path, adapters: dict[str, Path], tmp_path: Path) -> None:
    """vLLM 0.32's CPU ops read a base-model token's index -1 as the last adapter slot. `serve` fills
    every slot (max_loras = adapters), so a base request batched beside adapter requests ran through
    the last adapter; the session server keeps a slot free for the runtime adapter and cannot show it."""
    need(["vllm"])
    server = startup_adapter_server(model_dir, adapters, tmp_path / "server.log")  # default max_loras, as serve
    assert server.max_loras == len(STARTUP_ADAPTERS)
    with server:
        alone = chat(server, server.served_model_name).invoke(PROMPT).content
        models = [server.served_model_name, *STARTUP_ADAPTERS] * 3
        with ThreadPoolExecutor(len(models)) as pool:  # all in flight at once: vLLM batches them together
            answers = list(pool.map(lambda model: chat(server, model).invoke(PROMPT).content, models))
    mixed = {answer for model, answer in zip(models, answers, strict=True) if model == server.served_model_name}
    assert mixed == {alone}, answers


def test_server_runs_our_cpu_lora_ops(vllm_server: VLLMServer) -> None:
    """VLLMServer turns the plugin on; the greedy-agreement tests below then check its arithmetic."""
    from mapcoder_lite.serving.cpu_lora import PATCHED_MESSAGE

    assert PATCHED_MESSAGE in vllm_server.log_path.read_text()


def test_unknown_model_name_is_a_clear_404(vllm_server: VLLMServer) -> None:
    with pytest.raises(openai.NotFoundError) as caught:
        chat(vllm_server, "no-such-role").invoke(PROMPT)
    assert caught.value.status_code == 404
    assert "no-such-role" in str(caught.value)


def test_runtime_adapter_loading(vllm_server: VLLMServer, adapters: dict[str, Path], base_answer: str) -> None:
    name = RUNTIME_ADAPTER[0]
    assert name not in list_models(vllm_server.base_url)
    load_adapter(vllm_server.base_url, name, adapters[name])
    try:
        assert name in list_models(vllm_server.base_url)
        answer = chat(vllm_server, name).invoke(PROMPT)
        assert answer.response_metadata["model_name"] == name
        assert answer.content != base_answer
    finally:
        unload_adapter(vllm_server.base_url, name)
    assert name not in list_models(vllm_server.base_url)
    with pytest.raises(openai.NotFoundError):
        chat(vllm_server, name).invoke(PROMPT)
    with pytest.raises(VLLMServerError, match="HTTP 4"):
        load_adapter(vllm_server.base_url, "broken", adapters[name].parent / "does-not-exist")


@pytest.fixture(scope="module")
def inprocess(model_dir: Path, adapters: dict[str, Path]) -> Any:
    need(["torch", "transformers", "peft"])
    from mapcoder_lite.serving.inprocess import InProcessChatModel

    chosen = {name: str(adapters[name]) for name in STARTUP_ADAPTERS}
    return InProcessChatModel(model_path=str(model_dir), adapters=chosen, max_tokens=MAX_TOKENS).load()


@pytest.mark.parametrize("role", [None, *STARTUP_ADAPTERS])
def test_inprocess_matches_vllm_greedy(vllm_server: VLLMServer, inprocess: Any, role: str | None) -> None:
    name = role or vllm_server.served_model_name
    raw = raw_completion(vllm_server, name)
    steps = raw["choices"][0]["logprobs"]["content"]
    served = [token_id(step["token"]) for step in steps]
    local = (inprocess.for_role(role) if role else inprocess).generate_tokens([HumanMessage(PROMPT)])
    assert local.prompt_ids and raw["usage"]["prompt_tokens"] == len(local.prompt_ids), "chat templates differ"

    agreed, note = 0, "no divergence"
    for position, (theirs, ours) in enumerate(zip(served, local.output_ids, strict=False)):
        if theirs == ours:
            agreed += 1
            continue
        top = {token_id(c["token"]): c["logprob"] for c in steps[position]["top_logprobs"]}
        assert ours in top, f"{name}: token {position}: in-process {ours} is not in vLLM's top 5 {top}"
        gap = top[theirs] - top[ours]
        assert gap <= TIE_TOLERANCE_NATS, f"{name}: token {position}: diverged with a {gap:.2f} nat gap"
        note = f"then a near tie ({gap:.3f} nats apart in vLLM)"
        break  # past a tie the two continue from different text; nothing more to compare
    else:
        assert len(served) == len(local.output_ids), f"{name}: same tokens but different lengths"
    assert agreed >= 1, f"{name}: no token in common"
    print(f"{name}: {agreed}/{len(served)} greedy tokens identical, {note}")


def test_inprocess_chat_model_answers_like_a_langchain_model(inprocess: Any) -> None:
    coder = inprocess.for_role("coder")
    answer = coder.invoke([HumanMessage(PROMPT)])
    assert answer.usage_metadata["input_tokens"] > 0
    assert 0 < answer.usage_metadata["output_tokens"] <= MAX_TOKENS
    assert answer.response_metadata["model_name"] == "coder"
    # A role without an adapter runs the base model; role-bound copies share one set of weights.
    retriever, base = inprocess.for_role("retriever"), inprocess
    assert retriever._engine() is base._engine()
    assert retriever.invoke(PROMPT).content == base.invoke(PROMPT).content
    assert coder.invoke(PROMPT).content != base.invoke(PROMPT).content


def test_graph_runs_in_process_without_http(inprocess: Any) -> None:
    from mapcoder_lite.graph import ROLES, Context, build_graph

    small = inprocess.model_copy(update={"max_tokens": 48})
    small._holder = inprocess._holder  # same weights, shorter answers
    graph = build_graph(chat_models={role: small.for_role(role) for role in ROLES})
    problem = {
        "problem": 'def add(a, b):\n    """Return the sum of a and b."""\n',
        "sample_tests": ["assert add(1, 2) == 3"],
        "entry_point": "add",
        "language": "python",
    }
    result = graph.invoke(problem, context=Context(k=1, t=0, direct_first=False,
                                                    base_url="http://127.0.0.1:9/unreachable"))
    assert result["llm_calls"] >= 3
    assert {call["model"] for call in result["trajectory"]} <= set(ROLES)
    assert all(call["completion_tokens"] > 0 for call in result["trajectory"])


def test_server_that_dies_reports_its_log(tmp_path: Path) -> None:
    need(["vllm"])
    broken = tmp_path / "broken-model"
    broken.mkdir()
    (broken / "config.json").write_text('{"model_type": "no-such-architecture"}')
    server = VLLMServer(broken, python=vllm_python(), log_path=tmp_path / "server.log", startup_timeout_s=300)
    started = time.monotonic()
    with pytest.raises(VLLMServerError) as caught:
        server.start()
    assert "exited with code" in str(caught.value) and "no-such-architecture" in str(caught.value)
    assert not server.is_running()
    assert time.monotonic() - started < 300
