"""benchmarks/levers.py: the variants it runs are the graph's levers, one at a time."""

from __future__ import annotations

from dataclasses import replace
from types import ModuleType

import pytest

from mapcoder_lite.graph.context import LEVERS, PAPER_T, ROLES, Context
from tests.modules import load_benchmark


def levers_module() -> ModuleType:
    return load_benchmark("levers")


def paper(context: Context) -> Context:
    """The paper's graph spelled out: no lever, free-text answers, one budget for every role, the paper's
    debugging rounds."""
    return replace(context.paper_graph(), structured_outputs="off", t=PAPER_T,
                   **{f"{role}_max_tokens": context.max_tokens for role in ROLES})


def test_every_lever_of_the_graph_is_in_the_ablation() -> None:
    assert set(LEVERS) <= set(levers_module().ORDER)


def test_added_in_turn_goes_from_the_papers_graph_to_the_defaults() -> None:
    base = Context(model="m")
    chosen = levers_module().variants(base, "added")
    names = list(chosen)
    assert names[0] == "paper's graph" and chosen[names[0]] == paper(base)
    assert chosen[names[-1]] == base
    assert [n.removeprefix("+ ") for n in names[1:]] == list(levers_module().ORDER)
    structured = chosen["+ structured_outputs"]
    assert structured.structured_outputs == "auto" and structured.direct_first is False
    assert structured.max_tokens_for("planner") == base.max_tokens  # budgets still off
    assert chosen["+ budgets"].max_tokens_for("planner") == base.max_tokens_for("planner") < base.max_tokens
    assert structured.t == PAPER_T and chosen["+ budgets"].t == base.t
    # stop_repeats is added while debugging rounds remain for it to end (the budgets' t = 0 leaves none).
    assert chosen["+ stop_repeats"].stop_repeats and chosen["+ stop_repeats"].t == PAPER_T > 0


def test_left_out_turns_off_one_lever_each() -> None:
    base = Context(model="m")
    chosen = levers_module().variants(base, "left-out")
    assert chosen["all levers"] == base
    for lever in LEVERS:
        assert chosen[f"without {lever}"] == replace(base, **{lever: False})
    assert chosen["without structured_outputs"] == replace(base, structured_outputs="off")
    assert chosen["without budgets"].t == PAPER_T
    assert len(chosen) == 1 + len(levers_module().ORDER)
    with pytest.raises(ValueError, match="unknown plan"):
        levers_module().variants(base, "shuffled")
