"""Runtime settings of a MapCoder-Lite run.

Passed as ``context=`` to the compiled graph (LangGraph's ``context_schema``). Every field has a
description (LangGraph Studio shows it) and falls back to an environment variable
``MAPCODER_LITE_<FIELD>`` when left at its default, so a deployed server is configured by its
environment and a single run by its arguments.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from typing import Any

from mapcoder_lite.roles import AGENTS, role_spec

ROLES: tuple[str, ...] = AGENTS  # the graph's roles are MapCoder's five agents (kept importable from here)
ENV_PREFIX = "MAPCODER_LITE_"
DEFAULT_MODEL = "qwen2.5-coder-0.5b-instruct"
STRUCTURED_OUTPUTS = ("auto", "on", "off")
# Where the graph departs from the paper's MapCoder: bool fields, on by default; all off is the paper's
# graph, which collection runs (its trajectories train the agents of that graph).
LEVERS: tuple[str, ...] = ("direct_first", "stop_repeats", "plan_diversity")
RETRIEVALS = ("recall", "bank", "both")
# The paper's debugging rounds per plan: what collection runs (its tracks learn from debugging turns) and
# what the paper's graph is measured with.
PAPER_T = 5
# The default is chosen for the default model on MBPP validation (README, "Choosing t"): untuned
# Qwen2.5-Coder-0.5B solved as many problems there with t = 0, 1 and 5 (36, 36, 37 of 90) and no
# debugging round of HumanEval's, MBPP test's or that split's runs turned a failing plan into one that
# passed the hidden tests, while t = 5 took 43% more calls and twice the tokens of t = 0. A model whose
# debugging does rescue plans (a trained debugger adapter) wants t > 0.
DEFAULT_T = 0


def _describe(text: str) -> dict[str, Any]:
    return {"description": text}


@dataclass(kw_only=True)
class Context:
    """Where the agents' models live, how hard the graph tries, and how code is executed."""

    base_url: str = field(
        default="http://127.0.0.1:8000/v1",
        metadata=_describe("OpenAI-compatible endpoint (e.g. a vLLM server) that serves every role."),
    )
    api_key: str = field(
        default="EMPTY",
        metadata=_describe("API key for the endpoint. vLLM accepts any string unless started with --api-key."),
    )
    model: str = field(
        default=DEFAULT_MODEL,
        metadata=_describe("Model name used by every role that has no model of its own (plain MapCoder)."),
    )
    retriever_model: str = field(
        default="",
        metadata=_describe("Model name of the retrieval agent; with vLLM, the name of its LoRA adapter."),
    )
    planner_model: str = field(
        default="", metadata=_describe("Model name of the planning agent (its LoRA adapter on vLLM).")
    )
    confidence_model: str = field(
        default="",
        metadata=_describe("Model name that scores plans (the planner's adapter, or one of its own)."),
    )
    coder_model: str = field(
        default="", metadata=_describe("Model name of the coding agent (its LoRA adapter on vLLM).")
    )
    debugger_model: str = field(
        default="", metadata=_describe("Model name of the debugging agent (its LoRA adapter on vLLM).")
    )
    # Per-role endpoints: trajectory collection puts a strong teacher on another server for one role.
    retriever_base_url: str = field(
        default="", metadata=_describe("Endpoint of the retrieval agent when it is not base_url (a teacher).")
    )
    planner_base_url: str = field(default="", metadata=_describe("Endpoint of the planning agent, if not base_url."))
    confidence_base_url: str = field(default="", metadata=_describe("Endpoint that scores plans, if not base_url."))
    coder_base_url: str = field(default="", metadata=_describe("Endpoint of the coding agent, if not base_url."))
    debugger_base_url: str = field(
        default="", metadata=_describe("Endpoint of the debugging agent when it is not base_url (a teacher).")
    )
    role_api_keys: str = field(
        default="",
        metadata=_describe(
            "API keys for roles on other endpoints, as ROLE=ENV_VAR pairs separated by commas "
            "(e.g. 'retriever=DEEPSEEK_API_KEY'); the key itself stays in the environment."
        ),
    )
    k: int = field(default=3, metadata=_describe("Number of example problems the retriever recalls, hence of plans."))
    t: int = field(
        default=DEFAULT_T,
        metadata=_describe(f"Maximum debugging rounds for each plan (the paper's: {PAPER_T}; 0: no debugging)."),
    )
    temperature: float = field(default=0.0, metadata=_describe("Sampling temperature of every agent."))
    max_tokens: int = field(
        default=1536,
        metadata=_describe("Maximum tokens of one agent answer: the ceiling of every role's budget below."),
    )
    retriever_max_tokens: int = field(
        default=0, metadata=_describe("Token budget of the retriever's answer (0: its registry default).")
    )
    planner_max_tokens: int = field(default=0, metadata=_describe("Token budget of one plan (0: its default)."))
    confidence_max_tokens: int = field(
        default=0, metadata=_describe("Token budget of one confidence answer (0: its default).")
    )
    coder_max_tokens: int = field(default=0, metadata=_describe("Token budget of the coder's answer (0: its default)."))
    debugger_max_tokens: int = field(
        default=0, metadata=_describe("Token budget of one debugging answer (0: its default).")
    )
    retrieval: str = field(
        default="recall",
        metadata=_describe(
            "Where the planner's examples come from: 'recall' (the paper's: the retriever model recalls k "
            "examples and names the algorithm), 'bank' (the k nearest verified exemplars of the bank, no model "
            "call, no algorithm named), or 'both' (the bank's nearest first, then the model's recalled ones, k "
            "in all; the model names the algorithm)."
        ),
    )
    bank: str = field(
        default="",
        metadata=_describe(
            "Directory of a verified exemplar bank (`mapcoder-lite bank build`); needed by retrieval 'bank' and "
            "'both'."
        ),
    )
    stop_repeats: bool = field(
        default=True,
        metadata=_describe(
            "End a plan's debugging when the code just tested was already tested (the debugger repeated "
            "itself): the verdict is known. False: every plan gets its t rounds, as in the paper."
        ),
    )
    plan_diversity: bool = field(
        default=True,
        metadata=_describe(
            "Different plans, not copies: a plan that repeats a higher-ranked one (normalised) is dropped, and "
            "when the coder writes a program already tested in this run it is asked once more at "
            "diversity_temperature. False: every plan is coded and tested as it comes, as in the paper."
        ),
    )
    diversity_temperature: float = field(
        default=0.7, metadata=_describe("Sampling temperature of the coder's second try at a repeated program.")
    )
    direct_first: bool = field(
        default=True,
        metadata=_describe(
            "Before retrieval, the coder writes code straight from the problem; if it passes the samples the "
            "run ends after one call, else the full graph runs and that code stays a candidate. "
            "False: the paper's MapCoder exactly."
        ),
    )
    request_timeout_s: float = field(
        default=600.0, metadata=_describe("Seconds to wait for one model answer before giving up.")
    )
    structured_outputs: str = field(
        default="auto",
        metadata=_describe(
            "Send each role's answer grammar with its request, so that the server decodes only answers in "
            "the role's format: 'on', 'off', or 'auto' (on where the role's endpoint is a vLLM server; "
            "other APIs may reject the field). Chat models passed to build_graph never get it."
        ),
    )
    sandbox: str = field(
        default="local",
        metadata=_describe("Where generated code runs: 'local' (bubblewrap when present) or 'e2b'."),
    )
    test_timeout_s: float = field(
        default=10.0, metadata=_describe("Wall-clock limit, in seconds, for one sample test run.")
    )
    memory_mb: int = field(default=1024, metadata=_describe("Memory limit of one sample test run, in MiB."))

    def __post_init__(self) -> None:
        # A field still at its default takes the environment's value, converted to the field's type.
        for f in fields(self):
            if not f.init:
                continue
            raw = os.environ.get(ENV_PREFIX + f.name.upper())
            if raw is None or getattr(self, f.name) != f.default:
                continue
            try:
                setattr(self, f.name, _parse_bool(raw) if isinstance(f.default, bool) else type(f.default)(raw))
            except ValueError as exc:
                raise ValueError(
                    f"environment variable {ENV_PREFIX}{f.name.upper()}={raw!r} is not a valid "
                    f"{type(f.default).__name__} for Context.{f.name}"
                ) from exc
        self.validate()

    def validate(self) -> None:
        """Reject settings that would make a run meaningless, saying which field and why."""
        if self.k < 1:
            raise ValueError(f"Context.k must be at least 1 (got {self.k}): it is the number of plans")
        if self.t < 0:
            raise ValueError(f"Context.t must be 0 or more (got {self.t}): it bounds debugging rounds")
        if self.max_tokens < 1:
            raise ValueError(f"Context.max_tokens must be positive (got {self.max_tokens})")
        for role in ROLES:
            if getattr(self, f"{role}_max_tokens") < 0:
                raise ValueError(f"Context.{role}_max_tokens must be 0 (the role's default) or positive")
        for pair in filter(None, (p.strip() for p in self.role_api_keys.split(","))):
            role, sep, variable = pair.partition("=")
            if not sep or role.strip() not in ROLES or not variable.strip():
                raise ValueError(f"Context.role_api_keys: {pair!r} is not ROLE=ENV_VAR with ROLE one of {ROLES}")
        if self.diversity_temperature < 0:
            raise ValueError(f"Context.diversity_temperature must be 0 or more (got {self.diversity_temperature})")
        if self.sandbox not in ("local", "e2b"):
            raise ValueError(f"Context.sandbox must be 'local' or 'e2b' (got {self.sandbox!r})")
        if self.retrieval not in RETRIEVALS:
            raise ValueError(f"Context.retrieval must be one of {', '.join(RETRIEVALS)} (got {self.retrieval!r})")
        if self.retrieval != "recall" and not self.bank.strip():
            raise ValueError(f"Context.retrieval {self.retrieval!r} needs Context.bank, the directory of an exemplar "
                             "bank (`mapcoder-lite bank build ... --out DIR`)")
        if self.structured_outputs not in STRUCTURED_OUTPUTS:
            raise ValueError(f"Context.structured_outputs must be one of {', '.join(STRUCTURED_OUTPUTS)} "
                             f"(got {self.structured_outputs!r})")

    def model_for(self, role: str) -> str:
        """The model name a role's requests carry; on vLLM this picks the role's LoRA adapter."""
        _check_role(role)
        return getattr(self, f"{role}_model") or self.model

    def max_tokens_for(self, role: str) -> int:
        """The role's answer budget: its own field, else the registry's default for it, never above
        max_tokens (a small model that repeats itself stops at its role's budget, not at the ceiling)."""
        own = getattr(self, f"{role}_max_tokens", 0)
        default = role_spec(role).max_tokens or self.max_tokens
        return own or min(default, self.max_tokens)

    def base_url_for(self, role: str) -> str:
        _check_role(role)
        return getattr(self, f"{role}_base_url") or self.base_url

    def api_key_for(self, role: str) -> str:
        """The role's key: from the variable named in role_api_keys, else api_key."""
        _check_role(role)
        for pair in filter(None, (p.strip() for p in self.role_api_keys.split(","))):
            name, _, variable = pair.partition("=")
            if name.strip() == role:
                key = os.environ.get(variable.strip())
                if not key:
                    raise ValueError(f"role_api_keys names {variable.strip()!r} for {role}, but it is not set")
                return key
        return self.api_key

    def paper_graph(self) -> Context:
        """These settings with every lever off: the paper's MapCoder."""
        return replace(self, **dict.fromkeys(LEVERS, False))

    @classmethod
    def lite(cls, **overrides: Any) -> Context:
        """MapCoder-Lite: each role asks for the adapter named after it (as `mapcoder-lite serve` names them)."""
        per_role = {f"{role}_model": role for role in ROLES}
        return cls(**(per_role | overrides))


def _parse_bool(raw: str) -> bool:
    words = {"1": True, "true": True, "yes": True, "on": True, "0": False, "false": False, "no": False, "off": False}
    if raw.strip().lower() not in words:
        raise ValueError(f"{raw!r} is not a boolean (true/false, 1/0, yes/no, on/off)")
    return words[raw.strip().lower()]


def _check_role(role: str) -> None:
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r}; roles are {', '.join(ROLES)}")


def context_of(runtime_context: Context | Mapping[str, Any] | None) -> Context:
    """The run's Context: defaults when none was given; a mapping (from a server) becomes a Context."""
    if runtime_context is None:
        return Context()
    if isinstance(runtime_context, Context):
        return runtime_context
    known = {f.name for f in fields(Context)}
    unknown = set(runtime_context) - known
    if unknown:
        raise ValueError(f"unknown context fields {sorted(unknown)}; known fields are {sorted(known)}")
    return Context(**dict(runtime_context))
