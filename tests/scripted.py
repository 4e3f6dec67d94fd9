"""A scripted chat model for unit tests of graph logic: the answer is chosen from the prompt.

Planning runs in parallel, so answers cannot come from a fixed sequence; each scripted role gets a
function from the prompt text to the answer text instead.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from pydantic import PrivateAttr


class ScriptedChatModel(BaseChatModel):
    """Answers with `script(prompt_text)`; records every prompt it was given."""

    script: Callable[[str], str]
    name_: str = "scripted"
    _prompts: list[str] = PrivateAttr(default_factory=list)
    _lock: threading.Lock = PrivateAttr(default_factory=threading.Lock)

    @property
    def _llm_type(self) -> str:
        return "scripted"

    @property
    def prompts(self) -> list[str]:
        return list(self._prompts)

    def _generate(
        self, messages: list[BaseMessage], stop: Any = None, run_manager: Any = None, **kwargs: Any
    ) -> ChatResult:
        prompt = "\n".join(str(m.content) for m in messages)
        with self._lock:
            self._prompts.append(prompt)
        answer = self.script(prompt)
        usage = {
            "input_tokens": len(prompt.split()),
            "output_tokens": len(answer.split()),
            "total_tokens": len(prompt.split()) + len(answer.split()),
        }
        return ChatResult(generations=[ChatGeneration(message=AIMessage(content=answer, usage_metadata=usage))])


def scripted(**scripts: Callable[[str], str]) -> dict[str, ScriptedChatModel]:
    """Scripted models by role: scripted(retriever=lambda p: ..., planner=...)."""
    return {role: ScriptedChatModel(script=script) for role, script in scripts.items()}


class ScriptedAgentModel(BaseChatModel):
    """A tool-calling chat model for agent tests: `script(messages)` returns the next AIMessage (with
    `tool_calls` to call a tool). Records the tools it was bound to and every conversation it saw."""

    script: Callable[[list[BaseMessage]], AIMessage]
    _tools: list[dict[str, Any]] = PrivateAttr(default_factory=list)
    _seen: list[list[BaseMessage]] = PrivateAttr(default_factory=list)

    @property
    def _llm_type(self) -> str:
        return "scripted-agent"

    @property
    def tools(self) -> list[dict[str, Any]]:
        return list(self._tools)

    @property
    def seen(self) -> list[list[BaseMessage]]:
        return list(self._seen)

    def bind_tools(self, tools: Any, **kwargs: Any) -> ScriptedAgentModel:
        from langchain_core.utils.function_calling import convert_to_openai_tool

        # The schemas as an OpenAI-compatible server would receive them, so tests see what a real model sees.
        self._tools = [convert_to_openai_tool(tool) for tool in tools]
        return self

    def _generate(
        self, messages: list[BaseMessage], stop: Any = None, run_manager: Any = None, **kwargs: Any
    ) -> ChatResult:
        self._seen.append(list(messages))
        return ChatResult(generations=[ChatGeneration(message=self.script(list(messages)))])


class InFlight:
    """Wraps a script so that each answer takes `seconds` and counts the most answers in flight at once."""

    def __init__(self, script: Callable[[str], str], seconds: float = 0.3) -> None:
        self.script, self.seconds = script, seconds
        self.now = self.most = 0
        self._lock = threading.Lock()

    def __call__(self, prompt: str) -> str:
        import time

        with self._lock:
            self.now += 1
            self.most = max(self.most, self.now)
        time.sleep(self.seconds)  # long enough that calls overlap on a loaded machine too
        with self._lock:
            self.now -= 1
        return self.script(prompt)
