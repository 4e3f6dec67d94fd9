"""The one place that builds a role's chat model and calls it.

Every agent call goes through `RoleModels.call`, which times it, counts its tokens, records it for
the trajectory, and turns endpoint failures into a `RoleCallError` that names the role, the URL and
the model instead of a stack trace from deep inside an HTTP client. `RoleModels.ask` is what the
nodes use: the call, then the answer read with the role's own parser (`mapcoder_lite.roles`).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

import openai
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage

from mapcoder_lite.prompts.common import Message
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

    def record(self) -> dict[str, Any]:
        record = asdict(self)
        if self.error is None:
            del record["error"]
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

    def call(self, role: str, messages: list[Message], context: Context) -> tuple[str, Call]:
        """Ask `role`'s model; returns the answer text and the call record (parsed=False until set)."""
        model = self.chat_model(role, context)
        name = context.model_for(role) if role not in self._explicit else _model_name(model)
        start = time.perf_counter()
        try:
            answer = model.invoke(messages)
        except Exception as error:
            reason = _reason(error, context)
            if reason is None:
                raise
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
        )
        return text, call

    def ask(self, role: str, messages: list[Message], context: Context, language: str = "python") -> tuple[Any, Call]:
        """Ask `role`'s model and read the answer with the role's parser: (what it says, None when it
        is unreadable; the call record, marked parsed or not). What `call` raises passes through."""
        text, call = self.call(role, messages, context)
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
