"""Settings of the supervised correction graph: the MapCoder-Lite Context plus the supervisor's."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any
from urllib.parse import urlparse

from mapcoder_lite.graph.context import Context
from mapcoder_lite.roles import ALL_ROLES, SUPERVISOR

SUPERVISOR_ROLES: tuple[str, ...] = ALL_ROLES  # the five agents and the supervisor
DEEPSEEK_BASE_URL = "https://api.deepseek.com/v1"
DEEPSEEK_MODEL = "deepseek-chat"  # DeepSeek-V3 on DeepSeek's API
HIDDEN_REPORTS = ("failing", "verdict")


def _describe(text: str) -> dict[str, Any]:
    return {"description": text}


@dataclass(kw_only=True)
class SupervisorContext(Context):
    """Context of `mapcoder_lite.collection.supervisor_graph`: every graph setting, and who supervises how long."""

    # The correction graph runs the paper's MapCoder: its runs are the trajectories collected.
    direct_first: bool = field(default=False, metadata=_describe("False here: collection runs the paper's graph."))
    stop_repeats: bool = field(default=False, metadata=_describe("False here: collection runs the paper's graph."))
    plan_diversity: bool = field(default=False, metadata=_describe("False here: collection runs the paper's graph."))
    supervisor_model: str = field(
        default=DEEPSEEK_MODEL,
        metadata=_describe("Model that reads failed runs and blames the planner or the coder (DeepSeek-V3)."),
    )
    supervisor_base_url: str = field(
        default=DEEPSEEK_BASE_URL, metadata=_describe("OpenAI-compatible endpoint of the supervisor model.")
    )
    supervisor_api_key_env: str = field(
        default="DEEPSEEK_API_KEY",
        metadata=_describe("Environment variable holding the supervisor's API key (the key stays out of files)."),
    )
    correction_rounds: int = field(
        default=3, metadata=_describe("Most supervisor-guided corrections of one failed run.")
    )
    supervisor_hidden_report: str = field(
        default="failing",
        metadata=_describe(
            "What the supervisor learns of the hidden tests: 'failing' (counts and the first failing test) "
            "or 'verdict' (counts only). Agents never see hidden tests either way."
        ),
    )

    supervisor_reference: bool = field(
        default=False,
        metadata=_describe(
            "Show the supervisor the problem's reference solution (training splits only; every problem "
            "must have one). Agents never see it; extraction drops completions that copy it."
        ),
    )

    def validate(self) -> None:
        super().validate()
        if self.correction_rounds < 1:
            raise ValueError(f"correction_rounds must be at least 1 (got {self.correction_rounds})")
        if self.supervisor_hidden_report not in HIDDEN_REPORTS:
            raise ValueError(f"supervisor_hidden_report must be one of {HIDDEN_REPORTS} "
                             f"(got {self.supervisor_hidden_report!r})")

    def model_for(self, role: str) -> str:
        return self.supervisor_model if role == SUPERVISOR else super().model_for(role)

    def base_url_for(self, role: str) -> str:
        return self.supervisor_base_url if role == SUPERVISOR else super().base_url_for(role)

    def api_key_for(self, role: str) -> str:
        """The supervisor's key from its variable; else api_key (a local server needs none)."""
        if role != SUPERVISOR:
            return super().api_key_for(role)
        return os.environ.get(self.supervisor_api_key_env, "") or self.api_key

    def missing_supervisor_key(self) -> str | None:
        """A sentence when the supervisor is a hosted API (DeepSeek) and its key variable is unset."""
        host = urlparse(self.supervisor_base_url).hostname or ""
        if host.endswith("deepseek.com") and not os.environ.get(self.supervisor_api_key_env):
            return (f"the supervisor ({self.supervisor_model} at {self.supervisor_base_url}) needs an API key: "
                    f"set {self.supervisor_api_key_env}")
        return None

    @classmethod
    def from_context(cls, context: Context, **overrides: Any) -> SupervisorContext:
        """A Context's settings (a SupervisorContext's supervisor ones too) plus overrides (None: kept)."""
        known = {f.name for f in fields(cls) if f.init}
        base = {f.name: getattr(context, f.name) for f in fields(context) if f.init and f.name in known}
        return cls(**(base | {k: v for k, v in overrides.items() if v is not None}))


def supervisor_context_of(runtime_context: Context | Mapping[str, Any] | None) -> SupervisorContext:
    """The run's SupervisorContext (a plain Context gets the supervisor defaults)."""
    if isinstance(runtime_context, SupervisorContext):
        return runtime_context
    if isinstance(runtime_context, Context):
        return SupervisorContext.from_context(runtime_context)
    known = {f.name for f in fields(SupervisorContext)}
    unknown = set(runtime_context or {}) - known
    if unknown:
        raise ValueError(f"unknown context fields {sorted(unknown)}; known fields are {sorted(known)}")
    return SupervisorContext(**dict(runtime_context or {}))
