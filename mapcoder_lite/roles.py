"""The role registry: every role a model plays, and what the rest of the code needs to know about it.

A role is one of MapCoder's five agents (a node of the graph, one LoRA adapter to train) or the
supervisor (it only takes part in collecting training data). Each entry names the role's prompt
module, which builds its messages, reads its answers (``parse``) and checks the strict format its
training examples must have (``is_strict``); the collection tracks whose runs feed its training
set and those in which a strong teacher plays it; and its answer budget and grammar (its format,
enforced at decoding where the server supports structured outputs; see `RoleModels`).

Everything that lists roles or dispatches on one reads from here: the graph's ``ROLES``, training's
``AGENTS``, collection's ``TRACKS`` (and the relabel pass, ``RELABEL``), ``TEACHER_ROLES`` and
``SUPERVISOR_ROLES``, extraction's ``TRACK_ROLES``, extraction's and training's format checks, and
`RoleModels.ask`, which calls a role's model and reads the answer with that role's parser.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from mapcoder_lite.prompts import coder, confidence, debugger, planner, retriever, supervisor
from mapcoder_lite.prompts.grammar import Grammar

# The collection tracks (run by `mapcoder_lite.collection.tracks`), named here because each role
# says which of them feed it.
TRAJ_RET = "traj_ret"
TRAJ_DEBUG = "traj_debug"
TRAJ_PLAN_CODE_SUPERVISED = "traj_plan_code_supervised"
TRAJ_CONF = "traj_conf"
# Self-distillation (STaR-style rejection sampling): the student plays every agent at a temperature
# above 0, several runs per problem, and the runs that pass the hidden tests train every agent.
TRAJ_SELF = "traj_self"
# The same for the coder's other prompt: the graph's direct attempt (`direct_first`) asks the coder for
# code straight from the problem, so the coder adapter serves that prompt too; the student's sampled
# direct answers that pass the hidden tests train it (one call per run, no graph).
TRAJ_DIRECT = "traj_direct"
TRACKS: tuple[str, ...] = (TRAJ_RET, TRAJ_DEBUG, TRAJ_PLAN_CODE_SUPERVISED, TRAJ_CONF, TRAJ_SELF, TRAJ_DIRECT)
# The tracks that sample the student several times per problem at a temperature above 0.
SAMPLED_TRACKS: tuple[str, ...] = (TRAJ_SELF, TRAJ_DIRECT)
# Not a track but a pass over finished collections (`mapcoder_lite.collection.relabel`): a teacher answers
# the student's confidence prompts knowing each plan's outcome, and fixes its failing programs seeing the
# reference solution. Its run directory is a source of examples like a track's, hence named here.
RELABEL = "relabel"
# Every kind of run directory extraction reads examples from.
EXAMPLE_SOURCES: tuple[str, ...] = (*TRACKS, RELABEL)


class RolePrompt(Protocol):
    """What a role's prompt module (`mapcoder_lite.prompts.<role>`) offers to code that handles any role.

    Its ``build_messages`` takes what that role is shown, so only the role's own node calls it.
    """

    def parse(self, text: str, language: str = "python") -> Any:
        """What the answer says; None when it cannot be read (a format failure)."""

    def is_strict(self, text: str, language: str = "python", k: int | None = None) -> bool:
        """Whether the answer is in the exact format a trained adapter must write (k: the retriever's
        number of examples, when known)."""


@dataclass(frozen=True)
class RoleSpec:
    """One role: its prompt module and what collection, training and serving need to know of it."""

    name: str
    prompt: RolePrompt
    trained_by: tuple[str, ...] = ()  # the tracks whose runs yield its training examples
    teacher_in: tuple[str, ...] = ()  # the tracks in which a strong teacher plays this agent instead of the student
    # Its answer budget; None: the run's Context.max_tokens. A role with a budget of its own writes
    # short free text (a plan, a judgement) that a model caught repeating itself would otherwise spin
    # out to the ceiling; each leaves room for the longest answer its grammar allows, written normally
    # (tests/unit/test_roles.py); the roles with code answers have their grammar's bounds instead.
    max_tokens: int | None = None
    # Its answer format as a grammar (EBNF) for the server's structured outputs, from the language and
    # k (the prompt module's `answer_grammar`); None: free text.
    grammar: Grammar | None = None
    agent: bool = True  # one of MapCoder's agents (a graph node with an adapter); False: the supervisor


SUPERVISOR = "supervisor"
REGISTRY: Mapping[str, RoleSpec] = {
    spec.name: spec
    for spec in (
        RoleSpec("retriever", retriever, trained_by=(TRAJ_RET, TRAJ_SELF), teacher_in=(TRAJ_RET,),
                 grammar=retriever.answer_grammar),
        RoleSpec("planner", planner, trained_by=(TRAJ_PLAN_CODE_SUPERVISED, TRAJ_SELF), max_tokens=512,
                 grammar=planner.answer_grammar),
        # Every track of the graph labels the confidence answers it sees by how their plans turned out.
        RoleSpec("confidence", confidence, trained_by=tuple(s for s in EXAMPLE_SOURCES if s != TRAJ_DIRECT),
                 teacher_in=(TRAJ_CONF, RELABEL), max_tokens=384, grammar=confidence.answer_grammar),
        RoleSpec("coder", coder, trained_by=(TRAJ_PLAN_CODE_SUPERVISED, TRAJ_SELF, TRAJ_DIRECT),
                 grammar=coder.answer_grammar),
        RoleSpec("debugger", debugger, trained_by=(TRAJ_DEBUG, TRAJ_SELF, RELABEL),
                 teacher_in=(TRAJ_DEBUG, RELABEL), grammar=debugger.answer_grammar),
        # Always a strong model of its own (SupervisorContext), never trained.
        RoleSpec(SUPERVISOR, supervisor, agent=False, grammar=supervisor.answer_grammar),
    )
}

AGENTS: tuple[str, ...] = tuple(name for name, spec in REGISTRY.items() if spec.agent)
ALL_ROLES: tuple[str, ...] = tuple(REGISTRY)
# track (or the relabel pass) -> the agents its runs train, and the agents a teacher plays in it (the
# others are the student; the relabel pass's teacher answers for exactly the agents it trains).
TRACK_ROLES: Mapping[str, tuple[str, ...]] = {
    track: tuple(name for name in AGENTS if track in REGISTRY[name].trained_by) for track in EXAMPLE_SOURCES
}
TEACHER_ROLES: Mapping[str, tuple[str, ...]] = {
    track: tuple(name for name in AGENTS if track in REGISTRY[name].teacher_in) for track in EXAMPLE_SOURCES
}


def role_spec(name: str) -> RoleSpec:
    """The registry's entry for `name`; a ValueError naming the roles for an unknown one."""
    if name not in REGISTRY:
        raise ValueError(f"unknown role {name!r}; roles are {', '.join(ALL_ROLES)}")
    return REGISTRY[name]
