"""The role registry: what each track trains, every role's prompt module answering alike, `RoleModels.ask`."""

from __future__ import annotations

import dataclasses

import pytest

from mapcoder_lite import roles
from mapcoder_lite.graph import Context
from mapcoder_lite.llm import RoleModels
from tests.scripted import scripted


def test_tracks_train_and_teach_the_roles_the_collection_docs_name() -> None:
    # As mapcoder_lite.finetune.data and mapcoder_lite.collection.tracks describe the six tracks, and
    # mapcoder_lite.collection.relabel the relabel pass, whose teacher answers for the agents it trains.
    assert {track: set(trained) for track, trained in roles.TRACK_ROLES.items()} == {
        "traj_ret": {"retriever", "confidence"},
        "traj_debug": {"debugger", "confidence"},
        "traj_plan_code_supervised": {"planner", "coder", "confidence"},
        "traj_conf": {"confidence"},
        "traj_self": set(roles.AGENTS),
        "traj_direct": {"coder"},
        "relabel": {"confidence", "debugger"},
    }
    assert dict(roles.TEACHER_ROLES) == {"traj_ret": ("retriever",), "traj_debug": ("debugger",),
                                         "traj_plan_code_supervised": (), "traj_conf": ("confidence",),
                                         "traj_self": (), "traj_direct": (), "relabel": ("confidence", "debugger")}
    assert roles.RELABEL not in roles.TRACKS  # a pass over collections, not a track that runs the graph


@pytest.mark.parametrize("name", roles.ALL_ROLES)
def test_every_roles_prompt_reads_answers_alike(name: str) -> None:
    # Code that handles any role calls parse(text, language) and is_strict(text, language, k).
    prompt = roles.role_spec(name).prompt
    assert prompt.parse("", "python") is None
    assert prompt.is_strict("", "python", None) is False
    assert callable(prompt.build_messages)


def test_an_unknown_role_is_named_with_the_known_ones() -> None:
    with pytest.raises(ValueError, match=r"unknown role 'tester'; roles are retriever, .*, supervisor"):
        roles.role_spec("tester")


def test_ask_parses_with_the_roles_parser_and_marks_format_failures() -> None:
    models = RoleModels(scripted(planner=lambda p: "1. read\n2. print", confidence=lambda p: "about 90"))
    messages = [{"role": "user", "content": "plan it"}]
    plan, call = models.ask("planner", messages, Context())
    assert plan == "1. read\n2. print" and call.parsed
    scored, call = models.ask("confidence", messages, Context())
    assert scored is None and call.update()["format_failures"] == {"confidence": 1}


def test_a_roles_own_answer_budget_replaces_the_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("langchain_openai")
    monkeypatch.setitem(roles.REGISTRY, "coder", dataclasses.replace(roles.REGISTRY["coder"], max_tokens=64))
    models, context = RoleModels(), Context(max_tokens=512)
    assert models.chat_model("coder", context).max_tokens == 64
    assert models.chat_model("planner", context).max_tokens == 512


def test_a_role_budget_leaves_room_for_the_longest_answer_its_grammar_allows() -> None:
    # A grammar bounds characters; Qwen's tokens hold about four characters of English or code, so a
    # budget of a third of the bound in tokens leaves room for the longest answer written normally.
    from mapcoder_lite.prompts import confidence, planner

    bounds = {"planner": planner.PLAN_CHARS, "confidence": confidence.EXPLANATION_CHARS + 60}
    for role, chars in bounds.items():
        budget = roles.REGISTRY[role].max_tokens
        assert budget is not None and budget >= chars / 3, (role, budget, chars)
