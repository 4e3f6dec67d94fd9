"""Comparing runs: a Markdown table with one column per run, and a PNG chart.

    print(markdown_table([load_run("runs/a"), load_run("runs/b")]))
    write_chart([...], "report.png")
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mapcoder_lite.evals.datasets import distinct_count
from mapcoder_lite.evals.rundir import RESULTS_FILE, RUN_FILE, RunDir, prompt_versions, wall_seconds
from mapcoder_lite.evals.trajectories import TrajectoryStats, trajectory_stats
from mapcoder_lite.graph.context import ROLES


@dataclass
class RunStats:
    """One run's numbers, as the table shows them."""

    label: str
    settings: dict[str, Any]
    problems: int  # with a result
    total: int | None  # selected for the run (None when run.json does not say)
    passed: int
    passed_et: int | None  # None: the dataset has no ET tests
    samples_passed: int | None  # None: the strategy does not test samples
    samples_tested: int  # problems with samples that the strategy tested
    errors: int
    format_failures: dict[str, int] = field(default_factory=dict)
    llm_calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    wall_seconds: float = 0.0
    common_only: bool = False  # restricted to the problems every compared run finished
    rows_in_file: int | None = None  # the data file's rows behind the `total` problems (some may repeat)
    trajectories: TrajectoryStats = field(default_factory=TrajectoryStats)
    prompts: list[str] = field(default_factory=list)  # the prompt fingerprints its sessions ran with

    @property
    def pass_at_1(self) -> float:
        return self.passed / self.problems if self.problems else 0.0

    @property
    def pass_at_1_et(self) -> float | None:
        return self.passed_et / self.problems if self.passed_et is not None and self.problems else None

    @property
    def partial(self) -> bool:
        return not self.common_only and self.total is not None and self.problems < self.total

    def mean(self, total: int) -> float:
        return total / self.problems if self.problems else 0.0


def finished_ids(path: str | Path) -> set[str]:
    """The problems a run directory has a result for."""
    return set(RunDir(path).done())


def load_run(path: str | Path, label: str | None = None, only: set[str] | None = None) -> RunStats:
    """A run directory's numbers: run.json's settings and wall time, results.jsonl's problems
    (with `only`, just those problems; the wall time is then the whole run's and is not shown)."""
    run_dir = RunDir(path)
    if not run_dir.is_run():
        raise FileNotFoundError(f"{run_dir.path}: no {RUN_FILE}; is it a run directory of `mapcoder-lite eval`?")
    run = run_dir.read_run()
    records = list(run_dir.done().values())
    if only is not None:
        records = [r for r in records if r["id"] in only]
    failures: dict[str, int] = {}
    for record in records:
        for role, count in (record.get("format_failures") or {}).items():
            failures[role] = failures.get(role, 0) + int(count)
    with_et = [r for r in records if r.get("passed_et") is not None]
    with_samples = [r for r in records if r.get("samples_passed") is not None]
    return RunStats(
        label=label or run_dir.path.name or str(run_dir.path),
        settings=run.get("settings", {}),
        problems=len(records),
        total=run.get("problems_total"),
        passed=sum(bool(r.get("passed")) for r in records),
        passed_et=sum(bool(r["passed_et"]) for r in with_et) if with_et else None,
        samples_passed=sum(bool(r["samples_passed"]) for r in with_samples) if with_samples else None,
        samples_tested=len(with_samples),
        errors=sum(r.get("error") is not None for r in records),
        format_failures=failures,
        llm_calls=sum(int(r.get("llm_calls") or 0) for r in records),
        prompt_tokens=sum(int(r.get("prompt_tokens") or 0) for r in records),
        completion_tokens=sum(int(r.get("completion_tokens") or 0) for r in records),
        wall_seconds=0.0 if only is not None else wall_seconds(run),
        common_only=only is not None,
        rows_in_file=run.get("rows_in_file"),
        trajectories=trajectory_stats(run_dir.path, records, run.get("settings", {}).get("max_tokens")),
        prompts=prompt_versions(run),
    )


def duration(seconds: float) -> str:
    """A wall time as the tables and charts write it: 12m29s, 1h02m03s."""
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m{secs:02d}s" if hours else f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"


def _models(settings: dict[str, Any]) -> str:
    models = settings.get("models") or {}
    if not models:
        return "-"
    names = set(models.values())
    if len(names) == 1:
        return next(iter(names))
    return ", ".join(f"{role}={name}" for role, name in models.items())


def _cell(text: object) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _problems_cell(s: RunStats) -> str:
    if s.common_only:
        return f"{s.problems} (finished by every run)"
    if s.total is not None and s.rows_in_file not in (None, s.total):  # the file repeats some problems
        done = f"{s.problems} of " if s.partial else ""
        return done + distinct_count(s.total, s.rows_in_file)
    return f"{s.problems} of {s.total}" if s.partial else str(s.problems)


def _prompts_cell(s: RunStats) -> str:
    """The prompts' fingerprint (first 8 hex digits), "mixed: ..." when sessions ran different ones, "-"
    when no session recorded it."""
    short = [version[:8] for version in s.prompts]
    return ("mixed: " if len(short) > 1 else "") + ", ".join(short) if short else "-"


def _at_budget_cell(s: RunStats) -> str:
    t = s.trajectories
    if not t.calls:
        return "-"
    share = t.tokens_at_budget / t.completion_tokens if t.completion_tokens else 0.0
    return f"{t.calls_at_budget}/{t.calls} ({share:.0%})"


def _repeats_cell(s: RunStats) -> str:
    """Coded plans, and how many repeated a tested program (-> still after plan_diversity asked again)."""
    t = s.trajectories
    if not t.plans_coded:
        return "-"
    after = f" -> {t.plans_still_repeated}" if t.plans_still_repeated != t.plans_repeated else ""
    return f"{t.plans_coded} / {t.plans_repeated}{after}"


def _rescues_cell(s: RunStats) -> str:
    t = s.trajectories
    graph = s.settings.get("strategy") == "mapcoder"
    return f"{t.passed_first} / {t.passed_debugged}" if graph else "-"


def rows(stats: Sequence[RunStats]) -> list[tuple[str, list[str]]]:
    """The table's rows: (metric, one cell per run)."""
    def each(fn: Any) -> list[str]:
        return [_cell(fn(s)) for s in stats]

    table: list[tuple[str, list[str]]] = [
        ("dataset", each(lambda s: f"{s.settings.get('dataset', '?')}/{s.settings.get('split', '?')}")),
        ("strategy", each(lambda s: s.settings.get("strategy", "?"))),
        ("models", each(lambda s: _models(s.settings))),
        ("k / t", each(lambda s: "-" if s.settings.get("k") is None else f"{s.settings['k']} / {s.settings['t']}")),
    ]
    # Settings that tell side-by-side runs apart (the pipeline's variants), shown where runs that have
    # them differ (direct retrieves nothing: its "-" is no difference).
    for name, key in (("retrieval", "retrieval"), ("structured outputs", "structured_outputs")):
        if len({s.settings[key] for s in stats if s.settings.get(key) is not None}) > 1:
            table.append((name, each(lambda s, key=key: s.settings.get(key) or "-")))
    table.append(("pass@1", each(lambda s: f"{s.pass_at_1:.1%} ({s.passed}/{s.problems})")))
    if any(s.passed_et is not None for s in stats):
        table.append(("pass@1 (ET)", each(
            lambda s: "-" if s.pass_at_1_et is None else f"{s.pass_at_1_et:.1%} ({s.passed_et}/{s.problems})")))
    table += [
        ("problems", each(_problems_cell)),
        ("samples passed", each(
            lambda s: "-" if s.samples_passed is None else f"{s.samples_passed}/{s.samples_tested}")),
        ("errors", each(lambda s: s.errors)),
    ]
    roles = [r for r in ROLES if any(r in s.format_failures for s in stats)]
    roles += sorted({r for s in stats for r in s.format_failures} - set(roles))
    for role in roles:
        table.append((f"format failures: {role}", each(
            lambda s, role=role: s.format_failures.get(role, "-"))))
    table += [
        ("mean LLM calls / problem", each(lambda s: f"{s.mean(s.llm_calls):.2f}")),
        ("mean prompt tokens / problem", each(lambda s: f"{s.mean(s.prompt_tokens):,.0f}")),
        ("mean completion tokens / problem", each(lambda s: f"{s.mean(s.completion_tokens):,.0f}")),
        ("answers cut at max_tokens (share of tokens)", each(_at_budget_cell)),
        ("plans coded / repeating a tested program", each(_repeats_cell)),
        ("plans dropped as copies of another", each(lambda s: s.trajectories.plans_dropped or "-")),
        ("samples passed by a plan: first program / after debugging", each(_rescues_cell)),
        ("prompts (sha256)", each(_prompts_cell)),
        ("wall time", each(lambda s: duration(s.wall_seconds) if s.wall_seconds else "-")),
        ("throughput (problems / min)", each(
            lambda s: f"{s.problems / s.wall_seconds * 60:.1f}" if s.wall_seconds else "-")),
        ("throughput (completion tokens / s)", each(
            lambda s: f"{s.completion_tokens / s.wall_seconds:.1f}" if s.wall_seconds else "-")),
    ]
    return table


def markdown_table(stats: Sequence[RunStats]) -> str:
    """Runs side by side: one column per run, one row per metric."""
    header = "| metric | " + " | ".join(_cell(s.label) for s in stats) + " |"
    rule = "| --- | " + " | ".join("---:" for _ in stats) + " |"
    body = ["| " + name + " | " + " | ".join(cells) + " |" for name, cells in rows(stats)]
    return "\n".join([header, rule, *body]) + "\n"


def chart_labels(stats: Sequence[RunStats]) -> list[str]:
    """Each run's name; a partial run says so, since its pass@1 is over the problems it finished, and a
    run whose sessions ran different prompts."""
    return [s.label + (f"\n({s.problems} of {s.total} problems)" if s.partial else "")
            + ("\n(mixed prompts)" if len(s.prompts) > 1 else "") for s in stats]


def write_chart(stats: Sequence[RunStats], path: str | Path) -> Path:
    """A PNG: pass@1 (and pass@1 ET) per run, mean tokens per problem, and wall time."""
    import matplotlib  # heavy: only the report needs it

    matplotlib.use("Agg")  # no display: files only
    import matplotlib.pyplot as plt

    labels = chart_labels(stats)
    positions = list(range(len(stats)))
    has_et = any(s.pass_at_1_et is not None for s in stats)
    width = 0.38 if has_et else 0.6
    figure, (left, right, clock) = plt.subplots(1, 3, figsize=(max(12.0, 3.3 * len(stats) + 6), 4.5))

    shift = width / 2 if has_et else 0.0
    bars = left.bar([p - shift for p in positions], [100 * s.pass_at_1 for s in stats], width, label="pass@1")
    left.bar_label(bars, fmt="%.1f")
    if has_et:  # only the runs that have ET tests get an ET bar (no misleading 0.0 for the others)
        with_et = [(p, s) for p, s in zip(positions, stats, strict=True) if s.pass_at_1_et is not None]
        et = left.bar([p + shift for p, _ in with_et], [100 * (s.pass_at_1_et or 0) for _, s in with_et], width,
                      label="pass@1 (ET)")
        left.bar_label(et, fmt="%.1f")
    left.set_ylim(0, 125)  # room above 100% for the bar labels and the legend
    left.set_yticks(range(0, 101, 20))
    left.set_ylabel("% of problems")
    common = stats[0].problems if stats and all(st.common_only for st in stats) else None
    left.set_title("pass@1" if common is None else f"pass@1 on the {common} problems every run finished")
    left.legend(loc="upper left", ncol=2, fontsize="small")

    prompt = [s.mean(s.prompt_tokens) for s in stats]
    completion = [s.mean(s.completion_tokens) for s in stats]
    right.bar(positions, prompt, 0.6, label="prompt")
    right.bar(positions, completion, 0.6, bottom=prompt, label="completion")
    right.set_ylabel("tokens")
    right.set_title("mean tokens per problem")
    if any(prompt) or any(completion):
        right.legend(loc="upper left", ncol=2, fontsize="small")
        right.set_ylim(0, max(p + c for p, c in zip(prompt, completion, strict=True)) * 1.2)
    else:
        right.set_ylim(0, 1)
        right.text(0.5, 0.5, "no model calls", ha="center", va="center", transform=right.transAxes)

    minutes = [s.wall_seconds / 60 for s in stats]
    clock.set_title("wall time")
    clock.set_ylabel("minutes")
    if any(s.common_only for s in stats) or not any(minutes):  # as the table: no time for a subset
        clock.set_ylim(0, 1)
        clock.text(0.5, 0.5, "not for a subset of a run" if any(s.common_only for s in stats) else "not recorded",
                   ha="center", va="center", transform=clock.transAxes)
    else:
        # Labelled as the table says it (12m29s), not rounded to a minute that hides a difference.
        clock.bar_label(clock.bar(positions, minutes, 0.6, color="tab:gray"),
                        labels=[duration(s.wall_seconds) for s in stats])
        clock.set_ylim(0, max(minutes) * 1.2)

    for axis in (left, right, clock):
        axis.set_xticks(positions, labels, rotation=20, ha="right", fontsize="small")
    figure.tight_layout()
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(out, dpi=120)
    plt.close(figure)
    return out


def report(run_dirs: Sequence[str | Path], chart: str | Path | None = None, *,
           common: bool = False) -> tuple[str, Path | None]:
    """The Markdown table of the runs, and the chart's path (None when chart is None). With `common`,
    every run is scored on the problems all of them finished: partial runs compare fairly."""
    if not run_dirs:
        raise ValueError("give at least one run directory")
    only = set.intersection(*(finished_ids(path) for path in run_dirs)) if common else None
    if only is not None and not only:
        raise ValueError("the runs have no finished problem in common")
    stats = [load_run(path, only=only) for path in run_dirs]
    labels = [s.label for s in stats]
    for index, s in enumerate(stats):  # two runs/<x>/a and runs/<y>/a would share a label
        if labels.count(s.label) > 1:
            s.label = str(Path(run_dirs[index]))
    return markdown_table(stats), (write_chart(stats, chart) if chart is not None else None)


def publish(stats: Sequence[RunStats], out: Path, preface: str = "") -> str:
    """A benchmark's result: `preface` (its own table) and the runs' table into out/table.md, the chart
    into out/chart.png; prints both paths and returns the text."""
    text = (preface + "\n\n" if preface else "") + markdown_table(stats)
    (out / "table.md").write_text(text + "\n")
    write_chart(stats, out / "chart.png")
    print(text)
    print(f"table: {out / 'table.md'}; chart: {out / 'chart.png'}")
    return text


__all__ = ["RESULTS_FILE", "RunStats", "duration", "finished_ids", "load_run", "markdown_table", "publish", "report",
           "rows", "write_chart"]
