"""The one place that builds a role's chat model and calls it.

Every agent call goes through `RoleModels.call`, which times it, counts its tokens, records it for
the trajectory, and turns endpoint failures into a `RoleCallError` that names the role, the URL and
the model instead of a stack trace from deep inside an HTTP client. `RoleModels.ask` is what the
nodes use: the call, then the answer read with the role's own parser (`mapcoder_lite.roles`).

Where structured outputs are on (`Context.structured_outputs`), a call carries its role's answer
grammar, and a vLLM server decodes only answers in that format. The parsers stay tolerant: with it
off (an API that rejects unknown request fields, a chat model passed in) answers are read as before.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

import httpx
import openai
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage

from mapcoder_lite.prompts.common import Message
from mapcoder_lite.prompts.grammar import Grammar
from mapcoder_lite.roles import AGENTS, role_spec

if TYPE_CHECKING:  # the graph package imports this module; importing it back at run time would cycle
    from mapcoder_lite.graph.context import Context


class RoleCallError(RuntimeError):
    """An agent's model could not be reached or refused the request."""

    def __init__(self, role: str, base_url: str, model: str, reason: str) -> None:
        self.role, self.base_url, self.model, self.reason = role, base_url, model, reason
        super().__init__(f"{role} agent: {reason} (endpoint {base_url}, model {model!r})")


class PromptTooLong(RoleCallError):
    """The prompt alone does not fit the model's context window.

    A property of this run, not of the endpoint: the coder's and debugger's prompts grow with the
    retrieved tutorial, the plan, the code and its test output, so the nodes that can end a plan
    early catch it; `call` is the refused call's record for the trajectory.
    """

    def __init__(self, role: str, base_url: str, model: str, reason: str, call: Call) -> None:
        super().__init__(role, base_url, model, reason)
        self.call = call


@dataclass
class Call:
    """One agent call, as it goes into the trajectory."""

    role: str
    model: str
    messages: list[Message]
    response: str
    parsed: bool
    prompt_tokens: int
    completion_tokens: int
    seconds: float
    error: str | None = None  # the endpoint refused the call (PromptTooLong): no answer, no tokens
    # Why the answer ended, as the server says: "length" is an answer cut at its token budget (a small
    # model repeating itself); None where the model does not say (scripted models).
    finish_reason: str | None = None

    def record(self) -> dict[str, Any]:
        record = asdict(self)
        for optional in ("error", "finish_reason"):
            if record[optional] is None:
                del record[optional]
        return record

    def update(self) -> dict[str, Any]:
        """What every agent call adds to the state: its record, one call, and its format failure if any.

        A refused call is in the trajectory but is neither a call the model answered nor a format failure.
        """
        answered = self.error is None
        return {
            "trajectory": [self.record()],
            "llm_calls": int(answered),
            "format_failures": {self.role: int(answered and not self.parsed)},
        }


def merge_calls(calls: Sequence[Call]) -> dict[str, Any]:
    """The state update of a node that made several calls: every record, call and format failure."""
    updates = [call.update() for call in calls]
    failures: dict[str, int] = {}
    for update in updates:
        for role, count in update["format_failures"].items():
            failures[role] = failures.get(role, 0) + count
    return {
        "trajectory": [record for update in updates for record in update["trajectory"]],
        "llm_calls": sum(update["llm_calls"] for update in updates),
        "format_failures": failures,
    }


def _reason(error: Exception, context: Context) -> str | None:
    """A sentence for the endpoint failures a user can fix; None for anything else."""
    if isinstance(error, openai.NotFoundError):
        return "the endpoint does not serve this model (HTTP 404); check the model name or the adapters served"
    if isinstance(error, openai.AuthenticationError):
        return "the endpoint rejected the API key (HTTP 401); set Context.api_key / MAPCODER_LITE_API_KEY"
    if isinstance(error, openai.APITimeoutError):
        return f"no answer within {context.request_timeout_s:.0f} s (Context.request_timeout_s)"
    if isinstance(error, openai.APIConnectionError):
        return "cannot connect to the endpoint; is the server running at this URL?"
    if _context_overflow(error):
        return ("the prompt does not fit the model's context window; serve a longer one "
                f"(vLLM --max-model-len) (HTTP 400: {str(error)[:200]})")
    if isinstance(error, openai.APIStatusError):
        return f"the endpoint answered HTTP {error.status_code}: {str(error)[:300]}"
    return None


# Asking an endpoint whether it is vLLM must not hold up a run: a server that is up answers its model
# list at once, even while it generates.
PROBE_TIMEOUT_S = 10.0


def probe_vllm(base_url: str, api_key: str) -> bool | None:
    """Whether the OpenAI-style endpoint at `base_url` is a vLLM server; None when it cannot be asked.

    vLLM lists every model it serves (base model and LoRA adapters) with ``"owned_by": "vllm"`` at
    GET /models; other servers name their own owner, or have no such list.
    """
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    try:
        response = httpx.get(base_url.rstrip("/") + "/models", headers=headers, timeout=PROBE_TIMEOUT_S)
    except httpx.HTTPError:
        return None  # down, or too slow: unknown, asked again at the next call
    try:
        models = response.json().get("data") if response.status_code == 200 else None
    except (ValueError, AttributeError):
        return False
    return isinstance(models, list) and any(isinstance(m, dict) and m.get("owned_by") == "vllm" for m in models)


def _refused_request(error: Exception) -> bool:
    """A request the endpoint found malformed (not one too long): what an API that takes no
    structured outputs answers to them."""
    return isinstance(error, openai.APIStatusError) and error.status_code in (400, 422) and not _context_overflow(error)


def _context_overflow(error: Exception) -> bool:
    # vLLM: "This model's maximum context length is 4096 tokens. However, your prompt contains ...";
    # OpenAI-style servers also send the code context_length_exceeded.
    return isinstance(error, openai.BadRequestError) and (
        getattr(error, "code", None) == "context_length_exceeded" or "maximum context length" in str(error)
    )


class RoleModels:
    """Chat models by role: explicit ones (tests, composition, in-process) or the endpoint's."""

    def __init__(
        self, chat_models: Mapping[str, BaseChatModel] | None = None, *, roles: Sequence[str] | None = None
    ) -> None:
        """`roles` defaults to the graph's five agents; a graph whose Context subclass knows more roles
        (the supervisor's) passes them, and that Context resolves their model, endpoint and key."""
        roles = tuple(roles or AGENTS)
        unknown = set(chat_models or {}) - set(roles)
        if unknown:
            raise ValueError(f"chat_models has unknown roles {sorted(unknown)}; roles are {', '.join(roles)}")
        self._explicit = dict(chat_models or {})
        self._cache: dict[tuple[Any, ...], BaseChatModel] = {}
        self._lock = threading.Lock()  # planner branches run in parallel threads
        self._vllm: dict[tuple[str, str], bool] = {}  # (base_url, api key) -> is it vLLM (asked once)
        self._probe_lock = threading.Lock()

    def structured(self, role: str, context: Context) -> bool:
        """Whether `role`'s calls carry its answer grammar: never for a chat model passed in (it has no
        server to enforce it), else as Context.structured_outputs says; 'auto' asks the role's
        endpoint once whether it is vLLM (an endpoint that cannot be asked is taken for not vLLM)."""
        if role in self._explicit or context.structured_outputs == "off":
            return False
        if context.structured_outputs == "on":
            return True
        key = (context.base_url_for(role), context.api_key_for(role))
        with self._probe_lock:  # the parallel planner branches ask once between them
            if key not in self._vllm:
                found = probe_vllm(*key)
                if found is None:
                    return False
                self._vllm[key] = found
            return self._vllm[key]

    def chat_model(self, role: str, context: Context) -> BaseChatModel:
        if role in self._explicit:
            return self._explicit[role]
        max_tokens = context.max_tokens_for(role)
        key = (
            context.base_url_for(role),
            context.api_key_for(role),
            context.model_for(role),
            context.temperature,
            max_tokens,
            context.request_timeout_s,
        )
        with self._lock:
            if key not in self._cache:
                # Imported here so graphs built only from explicit models never need the package.
                from langchain_openai import ChatOpenAI

                self._cache[key] = ChatOpenAI(
                    base_url=context.base_url_for(role),
                    api_key=context.api_key_for(role) or "EMPTY",  # vLLM needs some key, any string
                    model=context.model_for(role),
                    temperature=context.temperature,
                    max_completion_tokens=max_tokens,
                    timeout=context.request_timeout_s,
                    max_retries=1,
                    use_responses_api=False,  # vLLM serves chat completions
                    stream_usage=True,  # token counts for the trajectory
                )
            return self._cache[key]

    def call(self, role: str, messages: list[Message], context: Context, language: str = "python",
             grammar: Grammar | None = None) -> tuple[str, Call]:
        """Ask `role`'s model; returns the answer text and the call record (parsed=False until set).

        `grammar` replaces the role's own answer grammar (a prompt of another format on the same model:
        the `direct` and `cot` baselines on the coder's); it is sent where `structured` says.
        """
        model = self.chat_model(role, context)
        name = context.model_for(role) if role not in self._explicit else _model_name(model)
        grammar = grammar or role_spec(role).grammar
        request: dict[str, Any] = {}
        if grammar is not None and self.structured(role, context):
            # vLLM's structured outputs (>= 0.10.2); xgrammar enforces the EBNF while decoding.
            request["extra_body"] = {"structured_outputs": {"grammar": grammar(language, context.k)}}
        start = time.perf_counter()
        try:
            answer = model.invoke(messages, **request)
        except Exception as error:
            reason = _reason(error, context)
            if reason is None:
                raise
            if request and context.structured_outputs == "on" and _refused_request(error):
                # 'auto' sends grammars to vLLM only; 'on' sends them anywhere, and an API may refuse them.
                reason += ("; the request carried an answer grammar (structured outputs on): an endpoint that "
                           "does not take them needs Context.structured_outputs 'auto' or 'off'")
            if _context_overflow(error):
                refused = Call(role=role, model=name, messages=messages, response="", parsed=False, prompt_tokens=0,
                               completion_tokens=0, seconds=round(time.perf_counter() - start, 3), error=reason)
                raise PromptTooLong(role, context.base_url_for(role), name, reason, refused) from error
            raise RoleCallError(role, context.base_url_for(role), name, reason) from error
        text = _text(answer)
        usage = getattr(answer, "usage_metadata", None) or {}
        call = Call(
            role=role,
            model=name,
            messages=messages,
            response=text,
            parsed=False,
            prompt_tokens=int(usage.get("input_tokens", 0)),
            completion_tokens=int(usage.get("output_tokens", 0)),
            seconds=round(time.perf_counter() - start, 3),
            finish_reason=(getattr(answer, "response_metadata", None) or {}).get("finish_reason"),
        )
        return text, call

    def ask(self, role: str, messages: list[Message], context: Context, language: str = "python",
            grammar: Grammar | None = None) -> tuple[Any, Call]:
        """Ask `role`'s model and read the answer with the role's parser: (what it says, None when it
        is unreadable; the call record, marked parsed or not). What `call` raises passes through."""
        text, call = self.call(role, messages, context, language, grammar)
        parsed = role_spec(role).prompt.parse(text, language)
        call.parsed = parsed is not None
        return parsed, call


def _model_name(model: BaseChatModel) -> str:
    return str(getattr(model, "model_name", None) or getattr(model, "model", None) or type(model).__name__)


def _text(answer: AIMessage | Any) -> str:
    content = getattr(answer, "content", answer)
    if isinstance(content, list):  # content blocks: keep the text ones
        return "".join(block.get("text", "") if isinstance(block, dict) else str(block) for block in content)
    return str(content)
