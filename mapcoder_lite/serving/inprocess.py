"""A LangChain chat model that runs the base model and the role adapters in this process.

`InProcessChatModel` loads the base checkpoint with transformers and every role's LoRA adapter into
one PEFT model (named adapters). ``for_role(role)`` returns a chat model bound to that role's
adapter (the base model when the role has none); all of them share the same weights, so

    model = InProcessChatModel(model_path=dir, adapters={"coder": "adapters/coder", ...})
    build_graph(chat_models={role: model.for_role(role) for role in ROLES})

runs the whole graph without HTTP. Generation is greedy at temperature 0 and uses the tokenizer's
chat template, as vLLM does, so the two backends agree up to numerical noise.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, ChatMessage, HumanMessage, SystemMessage, ToolMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from pydantic import ConfigDict, Field, PrivateAttr, model_validator


@dataclass
class Generation:
    """One generation: token ids in and out, the decoded answer, and why it stopped."""

    prompt_ids: list[int]
    output_ids: list[int]
    text: str
    finish_reason: str  # "stop" (end of turn or a stop string) or "length"


def to_chat_dicts(messages: Sequence[BaseMessage]) -> list[dict[str, str]]:
    """LangChain messages as the role/content dicts a chat template expects."""
    out = []
    for message in messages:
        if isinstance(message, SystemMessage):
            role = "system"
        elif isinstance(message, HumanMessage):
            role = "user"
        elif isinstance(message, AIMessage):
            role = "assistant"
        elif isinstance(message, ToolMessage):
            role = "tool"
        elif isinstance(message, ChatMessage):
            role = message.role
        else:
            raise ValueError(f"unsupported message type {type(message).__name__}")
        content = message.content
        if isinstance(content, list):  # content blocks: keep the text ones
            content = "".join(b.get("text", "") if isinstance(b, dict) else str(b) for b in content)
        out.append({"role": role, "content": str(content)})
    return out


class _Engine:
    """The tokenizer and one model holding every adapter; loaded once, shared by every role."""

    def __init__(self, model_path: str, adapters: Mapping[str, str], dtype: str) -> None:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer, GenerationConfig

        self.torch = torch
        self.tokenizer = AutoTokenizer.from_pretrained(model_path)
        if not self.tokenizer.chat_template:
            raise ValueError(f"{model_path}: the tokenizer has no chat template")
        torch_dtype: Any = "auto" if dtype == "auto" else getattr(torch, dtype)
        base = AutoModelForCausalLM.from_pretrained(model_path, dtype=torch_dtype)
        # End of turn: the tokenizer's EOS and any the checkpoint's generation config names.
        eos = base.generation_config.eos_token_id
        eos_ids = {self.tokenizer.eos_token_id, *(eos if isinstance(eos, list) else [eos])} - {None}
        self.eos_ids = sorted(int(i) for i in eos_ids)
        pad = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else self.eos_ids[0]
        # A neutral generation config: the checkpoint's sampling defaults (e.g. Qwen's
        # repetition_penalty 1.05) would make answers differ from vLLM, which is started to ignore them.
        base.generation_config = GenerationConfig(eos_token_id=self.eos_ids, pad_token_id=pad)
        self.pad_id = pad
        model: Any = base
        if adapters:
            from peft import PeftModel

            items = list(adapters.items())
            # Adapter weights stay in the base dtype, as vLLM keeps them (no float32 upcast).
            model = PeftModel.from_pretrained(base, items[0][1], adapter_name=items[0][0], autocast_adapter_dtype=False)
            for name, path in items[1:]:
                model.load_adapter(path, adapter_name=name, autocast_adapter_dtype=False)
        model.eval()
        self.model = model
        self.adapters = set(adapters)
        self.lock = threading.Lock()  # the active adapter is model-wide state: one generation at a time

    def generate(
        self,
        role: str | None,
        messages: list[dict[str, str]],
        *,
        max_new_tokens: int,
        temperature: float,
        top_p: float,
        stop: Sequence[str] | None,
        seed: int | None,
    ) -> Generation:
        torch = self.torch
        encoded = self.tokenizer.apply_chat_template(messages, add_generation_prompt=True, return_dict=True)
        prompt_ids = [int(i) for i in encoded["input_ids"]]
        input_ids = torch.tensor([prompt_ids])
        kwargs: dict[str, Any] = {
            "max_new_tokens": max_new_tokens,
            "do_sample": temperature > 0,
            "eos_token_id": self.eos_ids,
            "pad_token_id": self.pad_id,
        }
        if temperature > 0:
            kwargs |= {"temperature": temperature, "top_p": top_p}
        if stop:
            kwargs |= {"stop_strings": list(stop), "tokenizer": self.tokenizer}
        with self.lock, torch.inference_mode():
            if seed is not None:
                torch.manual_seed(seed)
            if role in self.adapters:
                self.model.set_adapter(role)
                output = self.model.generate(input_ids=input_ids, attention_mask=torch.ones_like(input_ids), **kwargs)
            elif self.adapters:
                with self.model.disable_adapter():  # a role without an adapter runs the base model
                    output = self.model.generate(
                        input_ids=input_ids, attention_mask=torch.ones_like(input_ids), **kwargs
                    )
            else:
                output = self.model.generate(input_ids=input_ids, attention_mask=torch.ones_like(input_ids), **kwargs)
        output_ids = [int(i) for i in output[0, len(prompt_ids) :]]
        finish = "stop" if output_ids and output_ids[-1] in self.eos_ids else "length"
        text = self.tokenizer.decode(output_ids, skip_special_tokens=True)
        for marker in stop or ():
            cut = text.find(marker)
            if cut >= 0:
                text, finish = text[:cut], "stop"
        return Generation(prompt_ids, output_ids, text, finish)


class _EngineHolder:
    """Loads the engine on first use; shared (not copied) by every role-bound copy of the chat model."""

    def __init__(self) -> None:
        self.engine: _Engine | None = None
        self.lock = threading.Lock()

    def get(self, model_path: str, adapters: Mapping[str, str], dtype: str) -> _Engine:
        with self.lock:
            if self.engine is None:
                self.engine = _Engine(model_path, adapters, dtype)
            return self.engine


class InProcessChatModel(BaseChatModel):
    """transformers + PEFT chat model with every role's LoRA adapter in one model.

    ``adapters`` maps role names to adapter directories; ``role`` picks the adapter this instance
    uses (None or a role without an adapter: the base model). ``for_role`` makes role-bound copies
    that share the loaded weights.
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    model_path: str = Field(description="Local checkpoint directory (see `prepare_model`).")
    adapters: dict[str, str] = Field(default_factory=dict, description="Role name -> LoRA adapter directory.")
    role: str | None = Field(default=None, description="Adapter used by this instance; None: the base model.")
    model_name: str = Field(default="", description="Name reported in answers: the role, or the base model's.")
    temperature: float = 0.0
    top_p: float = 1.0
    max_tokens: int = 512
    seed: int | None = None
    dtype: str = Field(default="auto", description="'auto' (the checkpoint's), 'bfloat16', 'float32', ...")

    _holder: _EngineHolder = PrivateAttr(default_factory=_EngineHolder)

    @model_validator(mode="after")
    def _set_inprocess_names(self) -> InProcessChatModel:
        # A validator, not model_post_init: langchain-core's model_post_init must keep running.
        self.model_path = str(Path(self.model_path).expanduser())
        self.adapters = {name: str(Path(p).expanduser()) for name, p in self.adapters.items()}
        if not self.model_name:
            self.model_name = self.role or Path(self.model_path).name
        return self

    @property
    def _llm_type(self) -> str:
        return "mapcoder-lite-inprocess"

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return {"model_path": self.model_path, "role": self.role, "adapter": self.adapters.get(self.role or ""),
                "temperature": self.temperature, "max_tokens": self.max_tokens}  # fmt: skip

    def for_role(self, role: str) -> InProcessChatModel:
        """This model bound to `role`'s adapter (the base model if it has none), sharing the weights."""
        bound = self.model_copy(update={"role": role, "model_name": role})
        bound._holder = self._holder  # model_copy copies private attributes shallowly; make sharing explicit
        return bound

    def load(self) -> InProcessChatModel:
        """Load the weights now rather than on the first call."""
        self._engine()
        return self

    def _engine(self) -> _Engine:
        return self._holder.get(self.model_path, self.adapters, self.dtype)

    def generate_tokens(self, messages: Sequence[BaseMessage], *, stop: Sequence[str] | None = None,
                        max_tokens: int | None = None) -> Generation:  # fmt: skip
        """Token-level generation for this role (what `invoke` returns, plus the token ids)."""
        return self._engine().generate(
            self.role,
            to_chat_dicts(messages),
            max_new_tokens=max_tokens or self.max_tokens,
            temperature=self.temperature,
            top_p=self.top_p,
            stop=stop,
            seed=self.seed,
        )

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        max_tokens = kwargs.get("max_tokens") or kwargs.get("max_completion_tokens")
        result = self.generate_tokens(messages, stop=stop, max_tokens=max_tokens)
        usage = {
            "input_tokens": len(result.prompt_ids),
            "output_tokens": len(result.output_ids),
            "total_tokens": len(result.prompt_ids) + len(result.output_ids),
        }
        message = AIMessage(
            content=result.text,
            usage_metadata=usage,  # type: ignore[arg-type]
            response_metadata={"model_name": self.model_name, "finish_reason": result.finish_reason},
        )
        return ChatResult(
            generations=[ChatGeneration(message=message, generation_info={"finish_reason": result.finish_reason})],
            llm_output={"model_name": self.model_name, "token_usage": usage},
        )
