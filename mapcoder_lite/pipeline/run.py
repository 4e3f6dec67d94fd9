"""The paper's recipe in order, each stage resumable: prepare → collect → extract → finetune → eval → report.

    workdir/
      pipeline.json                 the config it ran with, and each stage's state and seconds
      collect/<track>-<dataset>-<split>/   collection runs (eval run directories; they resume)
      collect/relabel-<dataset>-<split>/   the relabel pass's teacher answers ([collect] relabel; it resumes)
      datasets/<agent>/train.jsonl        per-agent training sets extracted from all collections
      adapters/<agent>/                   one LoRA adapter per agent, with its manifest
      eval/<benchmark>/<strategy>/         eval runs (they resume)
      report.md, report-<benchmark>.png   the side-by-side table and charts

A stage whose outputs are complete is skipped without starting a server; a killed run started
again with the same config continues where it stopped (collections and evals per problem, training
per agent). An adapter whose training data changed since it was trained is trained again.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from mapcoder_lite.collection.cost import CollectionCost, cost_table
from mapcoder_lite.collection.relabel import relabel, relabel_work
from mapcoder_lite.collection.tracks import (
    SUPERVISED,
    TEACHER_ROLES,
    collect_problems,
    track_context,
    track_problems,
)
from mapcoder_lite.evals.datasets import dataset_spec, load_problems
from mapcoder_lite.evals.rundir import RunDir, RunSettings, collect_dir_name
from mapcoder_lite.evals.slots import InOrder
from mapcoder_lite.files import MANIFEST_FILE, write_atomic
from mapcoder_lite.finetune.manifest import sha256_file
from mapcoder_lite.graph.context import LEVERS, ROLES, Context
from mapcoder_lite.pipeline.config import STAGES, Benchmark, PipelineConfig, training_settings
from mapcoder_lite.roles import RELABEL, SAMPLED_TRACKS
from mapcoder_lite.serving.models import prepare_model
from mapcoder_lite.serving.vllm import VLLMServer, served_roots

# A server to have running: model folder, port, cores (None: every core, or a share of them beside
# another server; see core_shares), adapters by name.
ServerSpec = tuple[Path, int, list[int] | None, dict[str, Path] | None]

STATE_FILE = "pipeline.json"


@dataclass
class EvalRun:
    """One run of the eval stage: a benchmark, a strategy, and the variant of it."""

    bench: Benchmark
    strategy: str
    retrieval: str = "recall"
    structured_outputs: str = Context.structured_outputs

    @property
    def folder(self) -> Path:
        """<benchmark>/<strategy>[-<retrieval>][-so-<structured outputs>]: a variant's name adds only what
        differs from the defaults, so a config that asks for none keeps its folders."""
        parts = [self.strategy, *([self.retrieval] if self.retrieval != "recall" else [])]
        if self.structured_outputs != Context.structured_outputs:
            parts.append(f"so-{self.structured_outputs}")
        return Path(self.bench.name) / "-".join(parts)


def core_shares(servers: int) -> list[list[int] | None]:
    """The cores of each of `servers` started side by side: one server gets None (every core, the
    default binding), several get disjoint shares, since two servers on the same cores starved each
    other here (a teacher and a student during collection)."""
    if servers <= 1:
        return [None] * servers
    cores = sorted(os.sched_getaffinity(0))
    if len(cores) < servers:
        return [None] * servers  # nothing to split: each binds every core
    size = len(cores) // servers
    return [cores[i * size:(i + 1) * size] for i in range(servers)]


class PipelineError(RuntimeError):
    """A stage cannot run; the message says which and what to do. Nothing finished is lost."""


@dataclass
class Models:
    """Prepared checkpoints and the names the servers give them."""

    student: Path
    teacher: Path | None  # None: not prepared, since no stage of this run calls it

    @property
    def student_name(self) -> str:
        return self.student.name

    @property
    def teacher_path(self) -> Path:
        if self.teacher is None:
            raise PipelineError("the teacher model was not prepared: run the stage that calls it with prepare")
        return self.teacher

    @property
    def teacher_name(self) -> str:
        return self.teacher_path.name

    @property
    def same(self) -> bool:
        """One model as student and teacher (a quick trial): one server serves both."""
        return self.teacher is not None and self.student.resolve() == self.teacher.resolve()


@dataclass
class Pipeline:
    config: PipelineConfig
    log: Callable[[str], None] = print
    progress: bool = True
    console: Any = None
    models: Models | None = None
    state: dict[str, Any] = field(default_factory=dict)

    # ------------------------------------------------------------------ layout and state
    @property
    def workdir(self) -> Path:
        return self.config.workdir

    def collect_dir(self, track: str, split: str) -> Path:
        return self.workdir / "collect" / collect_dir_name(track, dataset_spec(self.config.collect.dataset).name, split)

    @property
    def datasets_dir(self) -> Path:
        return self.workdir / "datasets"

    def adapter_dir(self, agent: str) -> Path:
        return self.workdir / "adapters" / agent

    def eval_dir(self, bench: Benchmark, strategy: str, retrieval: str = "recall",
                 structured_outputs: str = Context.structured_outputs) -> Path:
        return self.run_dir(EvalRun(bench, strategy, retrieval, structured_outputs))

    def run_dir(self, run: EvalRun) -> Path:
        return self.workdir / "eval" / run.folder

    def eval_runs(self, strategies: list[str] | None = None) -> list[EvalRun]:
        """Every eval run the config asks for, benchmark by benchmark: each strategy with each
        structured_outputs value, a graph strategy also with each retrieval (direct retrieves nothing)."""
        ec = self.config.eval
        return [EvalRun(bench, strategy, retrieval, structured)
                for bench in ec.benchmarks for strategy in (ec.strategies if strategies is None else strategies)
                for retrieval in (ec.retrievals if strategy != "direct" else ["recall"])
                for structured in ec.structured_outputs]

    @property
    def bank_dir(self) -> Path:
        return self.workdir / "bank"

    def _load_state(self) -> None:
        path = self.workdir / STATE_FILE
        self.state = json.loads(path.read_text()) if path.is_file() else {}
        recorded, current = self.state.get("config"), self.config.to_dict()
        if recorded and recorded != current:
            changed = sorted(k for k in current if recorded.get(k) != current[k])
            self.log(f"note: the config changed since the last run ({', '.join(changed)}); finished stages whose "
                     "settings changed refuse to resume (eval and collect compare their settings)")
        self.state["config"] = current
        self.state.setdefault("stages", {})

    def _save_state(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        write_atomic(self.workdir / STATE_FILE, json.dumps(self.state, indent=2) + "\n")

    @contextlib.contextmanager
    def _stage(self, name: str) -> Iterator[dict[str, Any]]:
        entry = self.state["stages"].setdefault(name, {"seconds": 0.0})
        start = time.perf_counter()
        self.log(f"── {name}")
        try:
            yield entry
        finally:
            entry["seconds"] = round(entry.get("seconds", 0.0) + time.perf_counter() - start, 1)
            entry["updated"] = datetime.now(UTC).isoformat(timespec="seconds")
            self._save_state()

    # ------------------------------------------------------------------ servers
    def _url(self, port: int) -> str:
        return f"http://{self.config.serving.host}:{port}/v1"

    @contextlib.contextmanager
    def _servers(self, *specs: ServerSpec) -> Iterator[list[str]]:
        """A vLLM server for each `(model, port, cpus, loras)`; their URLs. One already there that
        serves these very paths under these names is used as it is (and left running); the others are
        started here side by side (each loads for about two minutes on a CPU) and stopped afterwards.
        A server serving other weights under the same names is an error, never used."""
        serving = self.config.serving
        urls, starting = [], []
        # Side by side, servers split the machine, unless the config gives any of them its cores.
        shares = core_shares(len(specs)) if not any(spec[2] for spec in specs) else [None] * len(specs)
        for (model, port, cpus, loras), share in zip(specs, shares, strict=True):
            cpus = cpus or share
            url = self._url(port)
            urls.append(url)
            needed = {model.name: model.resolve(), **{name: path.resolve() for name, path in (loras or {}).items()}}
            try:
                served = served_roots(url, timeout=5.0)
            except (httpx.HTTPError, OSError, ValueError):
                served = None
            if served is not None:
                if all(name in served and Path(served[name]).resolve() == path for name, path in needed.items()):
                    self.log(f"using the server already at {url} ({', '.join(sorted(served))})")
                    continue
                raise PipelineError(f"the server at {url} does not serve "
                                    f"{', '.join(f'{n}={p}' for n, p in needed.items())} (it serves {served}): "
                                    "stop it or set another port in [serving]")
            log_path = self.workdir / "logs" / f"vllm-{port}-{model.name}{'-lora' if loras else ''}.log"
            log_path.parent.mkdir(parents=True, exist_ok=True)
            self.log(f"starting vLLM for {model.name}{' with ' + ', '.join(loras) if loras else ''} on {url} "
                     f"(log {log_path})")
            starting.append(VLLMServer(model, loras, host=serving.host, port=port, cpus=cpus,
                                       kv_cache_gib=serving.kv_cache_gib, max_model_len=serving.max_model_len,
                                       log_path=log_path, startup_timeout_s=serving.startup_timeout_s))
        with contextlib.ExitStack() as stack:
            for server in starting:
                stack.callback(server.stop)  # registered first: a failed or interrupted start stops them all
                server.launch()
            for server in starting:
                server.wait_ready()
                self.log(f"vLLM ready on port {server.port} in {server.started_in_s or 0:.0f} s")
            yield urls

    @contextlib.contextmanager
    def _progress(self) -> Iterator[Any]:
        """One progress display for runs gathered together (a line each), or False for none."""
        if not self.progress:
            yield False
            return
        from mapcoder_lite.evals.runner import progress_bar

        with progress_bar(self.console) as bar:
            yield bar

    # ------------------------------------------------------------------ contexts
    def _context(self, base_url: str, model: str, **overrides: Any) -> Context:
        c = self.config
        return Context(base_url=base_url, model=model, temperature=c.temperature, max_tokens=c.max_tokens,
                       sandbox=c.sandbox, test_timeout_s=c.test_timeout_s, **overrides)

    def track_context(self, track: str, student_url: str, teacher_url: str) -> Context:
        assert self.models is not None
        m, cc = self.models, self.config.collect
        teacher = {f"{role}_model": m.teacher_name for role in TEACHER_ROLES[track]}
        teacher |= {f"{role}_base_url": teacher_url for role in TEACHER_ROLES[track]}
        context = self._context(student_url, m.student_name, k=cc.k, t=cc.t, **teacher)
        if track in SAMPLED_TRACKS:
            return track_context(track, context, temperature=cc.self_temperature)
        if track != SUPERVISED:
            return track_context(track, context)
        sup = self.config.models
        local = sup.supervisor == "teacher"
        return track_context(track, context, supervisor_model=m.teacher_name if local else sup.supervisor,
                             supervisor_base_url=teacher_url if local else sup.supervisor_base_url,
                             supervisor_api_key_env=sup.supervisor_api_key_env,
                             correction_rounds=cc.correction_rounds, supervisor_reference=cc.supervisor_reference)

    def needs_teacher(self, tracks: Iterable[str]) -> bool:
        """Whether collecting `tracks` (RELABEL among them for the relabel pass) calls the teacher on a server
        of its own: a track where it plays an agent (the relabel pass's every role), or the supervised one
        with the teacher as its supervisor."""
        assert self.models is not None
        return not self.models.same and self._tracks_call_teacher(tracks)

    def _tracks_call_teacher(self, tracks: Iterable[str]) -> bool:
        local_supervisor = self.config.models.supervisor == "teacher"
        return any(TEACHER_ROLES[track] or (track == SUPERVISED and local_supervisor) for track in tracks)

    def calls_teacher(self, stages: Iterable[str]) -> bool:
        """Whether one of `stages` may call the teacher: a collection whose tracks or relabel pass do, or
        an eval of `mapcoder-teacher`. Only then does prepare convert it (minutes and gigabytes here)."""
        cc, stages = self.config.collect, set(stages)
        tracks = [*cc.tracks, *([RELABEL] if cc.relabel else [])]
        return (("collect" in stages and self._tracks_call_teacher(tracks))
                or ("eval" in stages and "mapcoder-teacher" in self.config.eval.strategies))

    def trained_agents(self) -> dict[str, Path]:
        return {agent: self.adapter_dir(agent) for agent in self.config.finetune.agents
                if (self.adapter_dir(agent) / MANIFEST_FILE).is_file()}

    def eval_context(self, strategy: str, student_url: str, teacher_url: str, retrieval: str = "recall",
                     structured_outputs: str = Context.structured_outputs) -> Context:
        assert self.models is not None
        ec = self.config.eval
        graph = {"k": ec.k, "t": ec.t, "structured_outputs": structured_outputs}
        graph |= {lever: getattr(ec, lever) for lever in LEVERS}
        if retrieval != "recall":
            graph |= {"retrieval": retrieval, "bank": str(self.bank_dir)}
        if strategy == "mapcoder-teacher":
            return self._context(teacher_url, self.models.teacher_name, **graph)
        roles = {}
        if strategy == "mapcoder-lite":
            trained = self.trained_agents()
            # Roles without an adapter (too little data) keep the base model; the report names them.
            roles = {f"{role}_model": role for role in ROLES if role in trained}
        return self._context(student_url, self.models.student_name, **graph, **roles)

    # ------------------------------------------------------------------ completeness checks
    def _problems(self, dataset: str, split: str | None, limit: int | None) -> list[Any]:
        return load_problems(dataset, split, limit=limit, data_dir=self.config.data_dir, source=self.config.source)

    def _check_eval_dir(self, run_dir: Path, settings: RunSettings) -> None:
        """An eval directory must hold a run of these very settings, or none. One whose only change is
        retrained adapters is stale: it is moved aside (kept) and the run starts afresh. Any other change
        means the config was edited since; that is the user's call, so it is an error naming it."""
        existing = RunDir(run_dir)
        if not existing.is_run():
            return
        differences = existing.differences(settings)
        if not differences:
            return
        if all(d.startswith("adapters:") for d in differences):
            stale = run_dir.with_name(f"{run_dir.name}.before-{datetime.now(UTC):%Y%m%dT%H%M%S}")
            run_dir.rename(stale)
            self.log(f"{run_dir}: made with adapters since trained again; kept as {stale.name}, run again")
            return
        raise PipelineError(f"{run_dir} holds a run made with other settings ({'; '.join(differences)}): the config "
                            "changed since. Move that directory away (or set another workdir) to run it again.")

    # ------------------------------------------------------------------ stages
    def prepare(self, stages: Iterable[str] = STAGES) -> Models:
        """The student's checkpoint, and the teacher's where one of `stages` calls it (or it is the student)."""
        with self._stage("prepare"):
            m = self.config.models
            student = prepare_model(m.student, progress=self.log)
            wanted = self.calls_teacher(stages) or m.teacher == m.student
            teacher = prepare_model(m.teacher, progress=self.log) if wanted else None
            self.models = Models(student=student, teacher=teacher)
        return self.models

    def _teacher_server(self) -> ServerSpec:
        """The teacher's server, for a stage that calls it (prepare converted it for that stage)."""
        assert self.models is not None
        serving = self.config.serving
        return (self.models.teacher_path, serving.teacher_port, serving.teacher_cpus, None)

    def collect(self) -> None:
        cc, serving = self.config.collect, self.config.serving

        work = [(track, split, self._problems(cc.dataset, split, cc.limit or None))
                for split in cc.splits for track in cc.tracks]
        todo = [(t, s, p) for t, s, p in work
                if RunDir(self.collect_dir(t, s)).to_run(track_problems(t, p, cc.samples(t)), cc.retry_errors)]
        problems_of = {split: problems for _, split, problems in work}
        with self._stage("collect") as entry:
            entry["runs"] = {str(self.collect_dir(t, s).relative_to(self.workdir)): len(p) for t, s, p in work}
            # The relabel pass reads the finished collections: whether it has work is known only after them.
            if not todo and not self._relabel_pending(problems_of):
                self.log("every collection is complete")
                return
            assert self.models is not None
            student: ServerSpec = (self.models.student, serving.student_port, serving.student_cpus, None)
            if todo:
                # A teacher server only for tracks that call it (traj_self alone keeps every core for the
                # student).
                tracks = [t for t, _, _ in todo]
                with self._servers(student, *([self._teacher_server()] if self.needs_teacher(tracks) else [])) as urls:
                    self._collect_tracks(todo, urls[0], urls[-1])
            # Without tracks to run the pass is known to have work (above); after them, it is asked again.
            if cc.relabel and (not todo or self._relabel_pending(problems_of)):
                # The relabel pass calls the teacher alone, so its server gets every core (one model as
                # student and teacher: that model's server).
                with self._servers(self._teacher_server() if self.needs_teacher([RELABEL]) else student) as (url,):
                    self._relabel(url, problems_of)

    def _collect_tracks(self, todo: list[tuple[str, str, list[Any]]], student_url: str, teacher_url: str) -> None:
        """The tracks' collections that have work left, side by side on the servers at these URLs."""
        cc = self.config.collect

        async def run_all(bar: Any) -> list[Any]:
            # The tracks run side by side (one track's teacher calls overlap another's student calls),
            # `concurrency` problems in flight in all: four collections of 16 each kept ~70 requests
            # running on the 2-core student server, each at under 2 tokens/s, for the same total
            # throughput as 16 and answers that outlast the request timeout. In order, so that they
            # finish one after another.
            slots = InOrder(cc.concurrency)
            return await asyncio.gather(*(
                collect_problems(track, problems, dataset=dataset_spec(cc.dataset).name, split=split,
                                 context=self.track_context(track, student_url, teacher_url),
                                 out_dir=self.collect_dir(track, split), concurrency=cc.concurrency,
                                 problem_timeout_s=cc.problem_timeout_s, progress=bar, console=self.console,
                                 extract=False, ctrl_c_drains=True, samples=cc.samples(track),
                                 retry_errors=cc.retry_errors, limiter=slots.slot(rank))
                for rank, (track, split, problems) in enumerate(todo)))

        with self._progress() as bar:
            summaries = asyncio.run(run_all(bar))
        if any(summary.run.interrupted for summary in summaries):
            raise KeyboardInterrupt  # Ctrl-C drained the runs: no later stage starts

    def relabel_sources(self, split: str) -> list[Path]:
        """The split's collections the relabel pass reads: the tracks' runs there are."""
        return [self.collect_dir(t, split) for t in self.config.collect.tracks
                if RunDir(self.collect_dir(t, split)).is_run()]

    def _relabel_pending(self, problems_of: dict[str, list[Any]]) -> bool:
        """Whether the relabel pass (if on) has teacher calls left to make over the finished collections."""
        cc = self.config.collect
        try:
            return bool(cc.relabel) and any(
                relabel_work(self.relabel_sources(split), roles=cc.relabel,
                             problems=problems_of[split]).to_run(self.collect_dir(RELABEL, split))
                for split in cc.splits if self.relabel_sources(split))
        except ValueError as error:
            raise PipelineError(f"[collect] relabel: {error}") from None

    def _relabel(self, teacher_url: str, problems_of: dict[str, list[Any]]) -> None:
        """The relabel pass over each split's collections, into collect/relabel-<dataset>-<split>."""
        assert self.models is not None
        cc = self.config.collect
        context = self._context(teacher_url, self.models.teacher_name)

        async def run_all(bar: Any) -> list[Any]:
            return [await relabel(self.relabel_sources(split), context=context, roles=cc.relabel,
                                  problems=problems_of[split], out_dir=self.collect_dir(RELABEL, split),
                                  concurrency=cc.concurrency, progress=bar, console=self.console, extract=False,
                                  ctrl_c_drains=True)
                    for split in cc.splits if self.relabel_sources(split)]

        with self._progress() as bar:
            try:
                summaries = asyncio.run(run_all(bar))
            except ValueError as error:
                raise PipelineError(f"[collect] relabel: {error}") from None
        for summary in summaries:
            self.log(f"relabel {summary.out_dir.name}: {summary.passed} of {summary.done} teacher answers meet the "
                     f"bar ({summary.new} made now, {summary.errors} with errors)")
        if any(summary.interrupted for summary in summaries):
            raise KeyboardInterrupt

    def extract(self) -> dict[str, dict[str, Any]]:
        from mapcoder_lite.finetune.data import extract

        cc = self.config.collect
        with self._stage("extract") as entry:
            stats = extract(self.collections(), self.datasets_dir, validation_fraction=cc.validation_fraction,
                            seed=cc.seed)
            entry["examples"] = {role: s["examples"] for role, s in stats.items()}
        return stats

    def collections(self) -> list[Path]:
        """The collection directories training data comes from: every track's on every split, and the
        relabel pass's where it ran (it writes one per split)."""
        cc = self.config.collect
        runs = [self.collect_dir(t, s) for s in cc.splits for t in cc.tracks]
        return runs + [self.collect_dir(RELABEL, s) for s in cc.splits
                       if cc.relabel and RunDir(self.collect_dir(RELABEL, s)).is_run()]

    def finetune(self) -> dict[str, str]:
        """Train each agent with enough data; returns agent -> "trained" | "kept" | why it was skipped."""
        from mapcoder_lite.finetune.manifest import read_manifest, sha256_file
        from mapcoder_lite.finetune.train import TrainConfig, load_examples, train

        assert self.models is not None
        fc = self.config.finetune
        outcome: dict[str, str] = {}
        with self._stage("finetune") as entry:
            for agent in fc.agents:
                data = self.datasets_dir / agent / "train.jsonl"
                validation = self.datasets_dir / agent / "validation.jsonl"
                examples = len(load_examples(data, agent)) if data.is_file() and data.stat().st_size else 0
                out = self.adapter_dir(agent)
                if examples < fc.min_examples:
                    outcome[agent] = f"not trained: {examples} examples (min_examples = {fc.min_examples})"
                    if (out / MANIFEST_FILE).is_file():
                        outcome[agent] += "; its old adapter is kept"
                    self.log(f"{agent}: {outcome[agent]}")
                    continue
                if (out / MANIFEST_FILE).is_file():
                    recorded = read_manifest(out).get("data", {}).get("sha256")
                    if recorded == sha256_file(data):
                        outcome[agent] = "kept"
                        self.log(f"{agent}: adapter up to date ({out})")
                        continue
                    self.log(f"{agent}: training data changed since {out} was trained; training again")
                self.log(f"{agent}: training on {examples} examples")
                has_validation = validation.is_file() and validation.stat().st_size > 0
                manifest = train(TrainConfig(
                    agent=agent, data=data, base_model=self.models.student, out=out,
                    validation=validation if has_validation else None, progress=self.progress, overwrite=True,
                    **training_settings(fc),
                )).manifest  # fmt: skip
                outcome[agent] = "trained"
                if (step := manifest["resumed_from_step"]) is not None:
                    self.log(f"{agent}: trained, going on from step {step} of "
                             f"{manifest['hyperparameters']['steps']} where a stopped training left it")
            entry["agents"] = outcome
        return outcome

    def build_bank(self) -> Path:
        """WORKDIR/bank for the eval's retrieval, built unless one with the [bank] settings is there; its
        plans come from the collections' passing runs on the bank's dataset. A bank is built once: to
        take in later collections, delete it (the eval runs made with it then refuse to resume)."""
        from mapcoder_lite.bank.build import build_bank
        from mapcoder_lite.bank.store import BankError

        bc = self.config.bank
        wanted = {"dataset": dataset_spec(bc.dataset).name, "splits": list(bc.splits), "limit": bc.limit}
        manifest = self.bank_dir / MANIFEST_FILE
        if manifest.is_file():
            made = json.loads(manifest.read_text(encoding="utf-8"))
            if {key: made.get(key) for key in wanted} == wanted:
                self.log(f"exemplar bank {self.bank_dir}: {made['counts']['exemplars']} exemplars, up to date")
                return self.bank_dir
            self.log(f"exemplar bank {self.bank_dir}: made with other [bank] settings; building it again")
        cc, c = self.config.collect, self.config
        same_dataset = dataset_spec(cc.dataset).name == wanted["dataset"]
        runs = [self.collect_dir(t, s) for s in cc.splits for t in cc.tracks
                if same_dataset and RunDir(self.collect_dir(t, s)).is_run()]
        with self._stage("bank") as entry:
            try:
                stats = build_bank(bc.dataset, bc.splits, self.bank_dir, runs=runs, limit=bc.limit, data_dir=c.data_dir,
                                   source=c.source, sandbox=c.sandbox, test_timeout_s=c.test_timeout_s,
                                   progress=self.progress, console=self.console, log=self.log)
            except BankError as error:
                raise PipelineError(f"[bank] {error}") from None
            entry["counts"] = stats.counts
        return self.bank_dir

    def evaluate(self) -> None:
        from mapcoder_lite.evals.runner import Runner
        from mapcoder_lite.evals.strategies import make_strategy

        assert self.models is not None
        ec, serving = self.config.eval, self.config.serving
        if ec.uses_bank:
            self.build_bank()
        trained = self.trained_agents()
        strategies = [s for s in ec.strategies if s != "mapcoder-lite" or trained]
        if "mapcoder-lite" in ec.strategies and not trained:
            self.log("mapcoder-lite: no adapter was trained, so there is nothing to evaluate")
        needs_teacher = "mapcoder-teacher" in strategies and not self.models.same
        student_url = self._url(serving.student_port)
        teacher_url = self._url(serving.teacher_port) if needs_teacher else student_url
        adapters = {agent: sha256_file(path / "adapter_model.safetensors") for agent, path in trained.items()}
        todo = []
        problems_of = {bench.name: self._problems(bench.dataset, bench.split, bench.limit) for bench in ec.benchmarks}
        for run in self.eval_runs(strategies):
            spec, problems = dataset_spec(run.bench.dataset), problems_of[run.bench.name]
            context = self.eval_context(run.strategy, student_url, teacher_url, run.retrieval, run.structured_outputs)
            chosen = make_strategy("direct" if run.strategy == "direct" else "mapcoder")
            settings = RunSettings.make(spec.name, run.bench.split or spec.default_split, chosen, context)
            if run.strategy == "mapcoder-lite":
                settings.adapters = {role: adapters[role] for role in sorted(adapters) if role in ROLES}
            self._check_eval_dir(self.run_dir(run), settings)
            if missing := len(RunDir(self.run_dir(run)).to_run(problems, ec.retry_errors)):
                todo.append((run, problems, chosen, context, settings, missing))
        with self._stage("eval"):
            if not todo:
                self.log("every eval run is complete")
                return
            with contextlib.ExitStack() as stack:
                servers = [(self.models.student, serving.student_port, serving.student_cpus, trained or None)]
                if any(run.strategy == "mapcoder-teacher" for run, *_ in todo) and needs_teacher:
                    servers.append(self._teacher_server())
                stack.enter_context(self._servers(*servers))
                runners = []
                bar = stack.enter_context(self._progress())
                # Every run at once, but `concurrency` problems in flight in all (retriever answers
                # queued behind ~100 others passed the 600 s request timeout when each run had its own
                # budget), handed out in the config's order: the runs finish largely in turn, each
                # one's slow tail overlapping the next, so a stopped stage leaves complete runs.
                slots = InOrder(ec.concurrency)
                for rank, (run, problems, chosen, context, settings, missing) in enumerate(todo):
                    runners.append((Runner(self.run_dir(run), chosen, settings, context,
                                           concurrency=ec.concurrency, problem_timeout_s=ec.problem_timeout_s,
                                           progress=bar, console=self.console, retry_errors=ec.retry_errors,
                                           limiter=slots.slot(rank), ctrl_c_drains=True), problems))
                    self.log(f"eval {run.folder}: {missing} of {len(problems)} problems to run")

                async def run_all() -> list[Any]:
                    return await asyncio.gather(*(runner.run(problems) for runner, problems in runners))

                if any(summary.interrupted for summary in asyncio.run(run_all())):
                    raise KeyboardInterrupt  # Ctrl-C drained the runs: the report is not written

    def report(self) -> Path:
        from mapcoder_lite.evals.report import report

        ec = self.config.eval
        sections = ["# MapCoder-Lite pipeline report", ""]
        with self._stage("report"):
            for bench in ec.benchmarks:
                runs = [self.run_dir(run) for run in self.eval_runs()
                        if run.bench == bench and RunDir(self.run_dir(run)).is_run()]
                if not runs:
                    continue
                table, chart = report(runs, self.workdir / f"report-{bench.name}.png")
                sections += [f"## {bench.name}", "", table, "", f"![{bench.name}]({chart.name})" if chart else "", ""]
            if collected := [path for path in self.collections() if RunDir(path).is_run()]:
                sections += ["## Collection", "", cost_table([CollectionCost.of(path) for path in collected]), ""]
            if (self.datasets_dir / MANIFEST_FILE).is_file():
                sections += ["## Training examples", "", self._examples_table(), ""]
            # A config that never trains (direct against MapCoder alone) gets no table of untrained agents.
            if "finetune" in self.state.get("stages", {}) or self.trained_agents():
                sections += ["## Adapters", "", self._adapters_table(), ""]
            sections += ["## Stages", "", self._stages_table(), ""]
            path = self.workdir / "report.md"
            path.write_text("\n".join(sections))
        return path

    def _examples_table(self) -> str:
        """Each agent's extracted examples (datasets/manifest.json), the problems behind them, and the
        share of candidates dropped (datasets/<agent>/stats.json)."""
        made = json.loads((self.datasets_dir / MANIFEST_FILE).read_text(encoding="utf-8"))
        lines = ["| agent | train | validation | problems | candidates dropped |",
                 "| --- | ---: | ---: | ---: | ---: |"]
        for agent, counts in made.get("roles", {}).items():
            stats_file = self.datasets_dir / agent / "stats.json"
            stats = json.loads(stats_file.read_text(encoding="utf-8")) if stats_file.is_file() else {}
            dropped = f"{stats['dropped']['share']:.0%} of {stats['candidates']}" if stats else "-"
            problems = stats["problems"]["total"] if stats else "-"
            lines.append(f"| {agent} | {counts['train']} | {counts['validation']} | {problems} | {dropped} |")
        return "\n".join(lines)

    def _adapters_table(self) -> str:
        from mapcoder_lite.finetune.manifest import read_manifest

        lines = ["| agent | training examples | train loss per epoch | validation loss per epoch | seconds |",
                 "| --- | --- | --- | --- | --- |"]
        outcome = self.state.get("stages", {}).get("finetune", {}).get("agents", {})
        for agent in self.config.finetune.agents:
            out = self.adapter_dir(agent)
            if not (out / MANIFEST_FILE).is_file():
                lines.append(f"| {agent} | {outcome.get(agent, 'not trained')} | | | |")
                continue
            m = read_manifest(out)
            losses = m.get("losses", {})
            fmt = " → ".join(f"{x:.3f}" for x in losses.get("train_per_epoch", []))
            val = " → ".join(f"{x:.3f}" for x in losses.get("validation_per_epoch", []))
            lines.append(f"| {agent} | {m.get('data', {}).get('examples', '?')} | {fmt} | {val} | "
                         f"{m.get('seconds', 0):.0f} |")
        return "\n".join(lines)

    def _stages_table(self) -> str:
        lines = ["| stage | seconds (all sessions) |", "| --- | --- |"]
        for name in STAGES:
            entry = self.state.get("stages", {}).get(name)
            if entry:
                lines.append(f"| {name} | {entry['seconds']:.0f} |")
        return "\n".join(lines)

    # ------------------------------------------------------------------ all of it
    def run(self, stages: tuple[str, ...] = STAGES) -> Path | None:
        self._load_state()
        self._save_state()
        # Extracting data and writing the report read files only: they prepare (download, convert) nothing.
        if set(stages) & {"prepare", "collect", "finetune", "eval"}:
            self.prepare(stages if set(stages) - {"prepare"} else STAGES)  # prepare alone: for every stage
        for name in stages:
            if name == "prepare":
                continue
            getattr(self, {"eval": "evaluate"}.get(name, name))()
        return self.workdir / "report.md" if "report" in stages else None
