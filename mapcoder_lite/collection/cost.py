"""What a collection spent and yielded: its runs, those that passed, the model calls split between the
student and the teacher (the supervisor counts as a teacher), completion tokens and wall time.

    print(cost_table([CollectionCost.of("runs/collect/traj_self-mbpp-train"), ...]))

A call is the teacher's when its role is one the run's settings give the teacher (`teachers`: a track's
teacher roles, the supervisor, every role of the relabel pass), so one model playing both is still
counted by what it played. The numbers come from the trajectories' call records, so calls that failed
(a lost server) count too; a run without its trajectory file counts none.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from mapcoder_lite.evals.report import duration
from mapcoder_lite.evals.rundir import RunDir, wall_seconds


@dataclass
class CollectionCost:
    name: str  # the run directory's name (<track>-<dataset>-<split>)
    runs: int  # finished
    total: int | None  # selected (None when run.json does not say)
    passed: int
    errors: int  # ended by an error (a timeout, a lost server): they yield nothing
    student_calls: int = 0
    teacher_calls: int = 0
    completion_tokens: int = 0
    wall_seconds: float = 0.0  # over its sessions

    @classmethod
    def of(cls, path: str | Path) -> CollectionCost:
        run = RunDir(path)
        recorded = run.read_run()
        teacher_roles = set((recorded.get("settings") or {}).get("teachers") or {})
        records = list(run.done().values())
        cost = cls(name=run.path.name, runs=len(records), total=recorded.get("problems_total"),
                   passed=sum(bool(r.get("passed")) for r in records),
                   errors=sum(r.get("error") is not None for r in records),
                   wall_seconds=wall_seconds(recorded))
        for record in records:
            saved = run.read_trajectory(record)
            for call in (saved or {}).get("trajectory") or []:
                if call.get("role") in teacher_roles:
                    cost.teacher_calls += 1
                else:
                    cost.student_calls += 1
                cost.completion_tokens += int(call.get("completion_tokens") or 0)
        return cost


def cost_table(costs: Sequence[CollectionCost]) -> str:
    """One row per collection and a total; wall times add up only when the collections ran one after
    another (the pipeline runs a split's tracks side by side)."""
    lines = ["| collection | runs | passed | errors | student calls | teacher calls | completion tokens | wall time |",
             "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for c in costs:
        runs = f"{c.runs} of {c.total}" if c.total is not None and c.runs < c.total else str(c.runs)
        lines.append(f"| {c.name} | {runs} | {c.passed} | {c.errors} | {c.student_calls:,} | {c.teacher_calls:,} | "
                     f"{c.completion_tokens:,} | {duration(c.wall_seconds)} |")
    if len(costs) > 1:
        lines.append(f"| all | {sum(c.runs for c in costs)} | {sum(c.passed for c in costs)} | "
                     f"{sum(c.errors for c in costs)} | "
                     f"{sum(c.student_calls for c in costs):,} | {sum(c.teacher_calls for c in costs):,} | "
                     f"{sum(c.completion_tokens for c in costs):,} | |")
    return "\n".join(lines)
