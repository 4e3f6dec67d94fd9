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
