"""The pipeline's one config file (TOML): every setting of every stage, checked before anything runs.

    workdir = "runs/pipeline"

    [models]                       # names `models prepare` knows, checkpoint folders or GGUF files
    student = "qwen2.5-coder-0.5b-instruct"
    teacher = "qwen2.5-coder-1.5b-instruct"
    supervisor = "teacher"         # "teacher" (the local teacher server) or a model name at supervisor_base_url

    [collect]
    dataset = "mbpp"
    splits = ["train"]             # training problems only: the pipeline refuses a test split
    limit = 16                     # problems per split; 0: every one

    [finetune]
    agents = ["retriever", "planner", "confidence", "coder", "debugger"]

    [eval]
    benchmarks = [{ dataset = "humaneval", limit = 20 }, { dataset = "mbpp", split = "test", limit = 20 }]
    strategies = ["direct", "mapcoder", "mapcoder-lite"]

Every other key has the default below; `mapcoder-lite pipeline --print-config` shows them all.
"""

from __future__ import annotations

import json
import tomllib
from dataclasses import asdict, dataclass, field, fields, is_dataclass, make_dataclass
from functools import partial
from pathlib import Path
from types import UnionType
from typing import Any, Union, get_args, get_origin, get_type_hints

from mapcoder_lite.collection.relabel import check_roles
from mapcoder_lite.collection.tracks import (
    SELF_SAMPLES,
    SELF_TEMPERATURE,
    TRACKS,
    check_split,
    sample_count,
    self_temperature,
)
from mapcoder_lite.evals.datasets import dataset_spec
from mapcoder_lite.finetune.split import SPLIT_SEED, VALIDATION_FRACTION
from mapcoder_lite.finetune.train import AGENTS, TrainConfig, check_settings
from mapcoder_lite.graph.context import RETRIEVALS, STRUCTURED_OUTPUTS, Context
from mapcoder_lite.roles import SAMPLED_TRACKS, TRAJ_DIRECT, TRAJ_SELF
from mapcoder_lite.serving.vllm import (
    DEFAULT_HOST,
    DEFAULT_KV_CACHE_GIB,
    DEFAULT_MAX_MODEL_LEN,
    DEFAULT_PORT,
    DEFAULT_STARTUP_TIMEOUT_S,
)

STAGES = ("prepare", "collect", "extract", "finetune", "eval", "report")
# Keys that moved, by table: a config written for the old place is told the new one.
MOVED = {"[bank]": {"retrieval": '[eval] retrievals (a list: ["recall", "bank"] runs both)'}}
# The pipeline's eval strategies: the paper's table rows.
STRATEGIES = ("direct", "mapcoder", "mapcoder-lite", "mapcoder-teacher")


class ConfigError(ValueError):
    """The config file is missing, unreadable, or holds a setting that cannot work."""


@dataclass
class ModelsConfig:
    student: str = "qwen2.5-coder-0.5b-instruct"
    teacher: str = "qwen2.5-coder-1.5b-instruct"
    supervisor: str = "teacher"  # "teacher": the teacher server; else a model at supervisor_base_url
    supervisor_base_url: str | None = None  # e.g. https://api.deepseek.com/v1 with supervisor = "deepseek-chat"
    supervisor_api_key_env: str | None = None


@dataclass
class ServingConfig:
    host: str = DEFAULT_HOST
    student_port: int = DEFAULT_PORT
    teacher_port: int = DEFAULT_PORT + 1
    # Cores per server: the teacher and the student run side by side during collection; on a small
    # CPU machine each gets its own core (two vLLM servers binding core 0 starve each other).
    student_cpus: list[int] | None = None
    teacher_cpus: list[int] | None = None
    kv_cache_gib: int = DEFAULT_KV_CACHE_GIB
    max_model_len: int = DEFAULT_MAX_MODEL_LEN
    startup_timeout_s: float = DEFAULT_STARTUP_TIMEOUT_S


@dataclass
class CollectConfig:
    dataset: str = "mbpp"
    splits: list[str] = field(default_factory=lambda: ["train"])
    limit: int = 16  # problems per split; 0: every problem (TOML has no null to say none)
    # Every track but the sampled ones (traj_self, traj_direct), which are opt-in: each makes self_samples
    # runs of each problem.
    tracks: list[str] = field(default_factory=lambda: [t for t in TRACKS if t not in SAMPLED_TRACKS])
    self_samples: int = SELF_SAMPLES  # traj_self: runs per problem
    direct_samples: int = SELF_SAMPLES  # traj_direct: runs per problem (one call each)
    self_temperature: float = SELF_TEMPERATURE  # the sampled tracks: their sampling temperature (above 0)
    k: int = Context.k  # a graph setting's default is the Context's, unless the pipeline has its own
    t: int = 2
    correction_rounds: int = 2
    # traj_plan_code_supervised shows the supervisor each problem's reference solution (training splits
    # only; every problem needs one, as MBPP's train and validation have); the agents never see it.
    supervisor_reference: bool = False
    # After the tracks, the relabel pass over each split's collections (`mapcoder_lite.collection.relabel`,
    # on the teacher server): "confidence" (scores written knowing each plan's outcome), "debugger" (fixes
    # of the failing programs written seeing the reference solution). Empty: no pass.
    relabel: list[str] = field(default_factory=list)
    concurrency: int = 8  # problems in flight across every track and split (and in the relabel pass)
    problem_timeout_s: float | None = 1800.0  # 0: no limit
    retry_errors: bool = False  # run again the runs recorded with an error (timeouts, a lost server)
    validation_fraction: float = VALIDATION_FRACTION
    seed: int = SPLIT_SEED

    def samples(self, track: str) -> int | None:
        """A sampled track's runs per problem (None: the other tracks run each problem once)."""
        return {TRAJ_SELF: self.self_samples, TRAJ_DIRECT: self.direct_samples}.get(track)


def _training_fields() -> list[tuple[str, Any, Any]]:
    """[finetune]'s training keys: TrainConfig's fields marked for the pipeline, with their defaults and
    descriptions; a tuple is a TOML array, so a list here (`training_settings` turns it back)."""
    hints = get_type_hints(TrainConfig)
    keys = []
    for spec in fields(TrainConfig):
        if not spec.metadata["pipeline"]:
            continue
        kind, default = hints[spec.name], spec.default
        if get_origin(kind) is tuple:
            keys.append((spec.name, list[get_args(kind)[0]],  # type: ignore[misc]
                         field(default_factory=partial(list, default), metadata=spec.metadata)))
        else:
            keys.append((spec.name, kind, field(default=default, metadata=spec.metadata)))
    return keys


# The pipeline's own keys, then every training setting of `TrainConfig` (declared there once).
FinetuneConfig = make_dataclass("FinetuneConfig", [
    ("agents", list[str], field(default_factory=lambda: list(AGENTS))),
    # An agent with fewer training examples keeps the base model (and the report says so).
    ("min_examples", int, field(default=4)),
    *_training_fields(),
], namespace={"__module__": __name__, "__doc__": "The [finetune] table: which agents train, and how."})


def training_settings(finetune: Any) -> dict[str, Any]:
    """The [finetune] table's training settings as TrainConfig arguments."""
    hints = get_type_hints(TrainConfig)
    settings = {name: getattr(finetune, name) for name, _, _ in _training_fields()}
    return {name: tuple(value) if get_origin(hints[name]) is tuple else value for name, value in settings.items()}


@dataclass
class Benchmark:
    dataset: str
    split: str | None = None
    limit: int | None = None

    @property
    def name(self) -> str:
        spec = dataset_spec(self.dataset)
        return f"{spec.name}-{self.split or spec.default_split}" + (f"-{self.limit}" if self.limit else "")


@dataclass
class EvalConfig:
    benchmarks: list[Benchmark] = field(default_factory=lambda: [Benchmark("humaneval", limit=20),
                                                                 Benchmark("mbpp", "test", 20)])
    strategies: list[str] = field(default_factory=lambda: ["direct", "mapcoder", "mapcoder-lite"])
    k: int = Context.k
    t: int = Context.t
    direct_first: bool = Context.direct_first  # for the graph strategies; false: the paper's graph
    stop_repeats: bool = Context.stop_repeats  # likewise
    plan_diversity: bool = Context.plan_diversity  # likewise
    # Each graph strategy runs once per retrieval (recall: the paper's; bank, both: WORKDIR/bank, built
    # from [bank]) and every strategy once per structured_outputs value (off: free-text answers, the
    # paper's claim being that tuning alone takes format failures to zero).
    retrievals: list[str] = field(default_factory=lambda: ["recall"])
    structured_outputs: list[str] = field(default_factory=lambda: [Context.structured_outputs])
    concurrency: int = 16
    problem_timeout_s: float | None = 3600.0  # 0: no limit
    retry_errors: bool = False  # run problems recorded with an error (timeouts, a lost server) again

    @property
    def uses_bank(self) -> bool:
        return any(retrieval != "recall" for retrieval in self.retrievals)


@dataclass
class BankConfig:
    """The exemplar bank: where [eval] retrievals name `bank` or `both`, the eval stage first builds
    WORKDIR/bank from these training splits, with the plans of the collections' passing runs."""

    dataset: str = "mbpp"
    splits: list[str] = field(default_factory=lambda: ["train", "validation"])
    limit: int | None = None  # problems per split


@dataclass
class PipelineConfig:
    workdir: Path = Path("runs/pipeline")
    data_dir: Path | None = None  # benchmark files; default $MAPCODER_LITE_DATA_DIR, else ../shared/data
    source: str = "auto"
    sandbox: str = Context.sandbox
    temperature: float = Context.temperature
    max_tokens: int = Context.max_tokens
    test_timeout_s: float = Context.test_timeout_s
    models: ModelsConfig = field(default_factory=ModelsConfig)
    serving: ServingConfig = field(default_factory=ServingConfig)
    collect: CollectConfig = field(default_factory=CollectConfig)
    finetune: FinetuneConfig = field(default_factory=FinetuneConfig)  # type: ignore[valid-type]
    eval: EvalConfig = field(default_factory=EvalConfig)
    bank: BankConfig = field(default_factory=BankConfig)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["workdir"] = str(self.workdir)
        data["data_dir"] = str(self.data_dir) if self.data_dir else None
        return data

    def check(self) -> None:
        """Everything a later stage would trip over, before the first one runs."""
        try:
            dataset_spec(self.collect.dataset)
            for bench in self.eval.benchmarks:
                dataset_spec(bench.dataset)
        except ValueError as error:
            raise ConfigError(str(error)) from None
        try:
            for split in self.collect.splits:
                check_split(split, self.collect.dataset)
        except ValueError as error:
            raise ConfigError(f"[collect] {error}") from None
        for key, allowed in (("retrievals", RETRIEVALS), ("structured_outputs", STRUCTURED_OUTPUTS)):
            values = getattr(self.eval, key)
            if not values or set(values) - set(allowed) or len(set(values)) < len(values):
                raise ConfigError(f"[eval] {key} = {values!r}: a list of distinct values from {', '.join(allowed)}")
        if self.eval.uses_bank:
            from mapcoder_lite.bank.build import training_splits

            try:
                training_splits(self.bank.dataset, self.bank.splits)
            except ValueError as error:
                raise ConfigError(f"[bank] {error}") from None
        if self.collect.limit < 0:
            raise ConfigError(f"[collect] limit {self.collect.limit}: problems per split, 0 for every one")
        unknown = set(self.collect.tracks) - set(TRACKS)
        if unknown:
            raise ConfigError(f"[collect] tracks: unknown {sorted(unknown)}; tracks are {', '.join(TRACKS)}")
        for track in set(self.collect.tracks) & set(SAMPLED_TRACKS):
            try:
                sample_count(track, self.collect.samples(track))
                self_temperature(Context(), self.collect.self_temperature, track)
            except ValueError as error:
                raise ConfigError(f"[collect] {error}") from None
        if self.collect.relabel:
            try:
                check_roles(self.collect.relabel)
            except ValueError as error:
                raise ConfigError(f"[collect] relabel = {self.collect.relabel!r}: {error}") from None
        unknown = set(self.finetune.agents) - set(AGENTS)
        if unknown:
            raise ConfigError(f"[finetune] agents: unknown {sorted(unknown)}; agents are {', '.join(AGENTS)}")
        try:
            check_settings(training_settings(self.finetune))
        except ValueError as error:
            raise ConfigError(f"[finetune] {error}") from None
        unknown = set(self.eval.strategies) - set(STRATEGIES)
        if unknown:
            raise ConfigError(f"[eval] strategies: unknown {sorted(unknown)}; choose from {', '.join(STRATEGIES)}")
        if self.models.supervisor != "teacher" and not self.models.supervisor_base_url:
            raise ConfigError("[models] supervisor is a model name but supervisor_base_url is unset; set it, or "
                              'use supervisor = "teacher" for the local teacher server')
        same_model = self.models.student == self.models.teacher
        if self.serving.student_port == self.serving.teacher_port and not same_model:
            raise ConfigError("[serving] student_port and teacher_port must differ: both servers run at once")


def _build(cls: type, data: dict[str, Any], where: str) -> Any:
    """A dataclass from a TOML table, naming any key it does not know."""
    known = {f.name: f for f in fields(cls)}
    unknown = set(data) - set(known)
    for key in unknown & set(MOVED.get(where, {})):
        raise ConfigError(f"{where} {key}: moved to {MOVED[where][key]}")
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {sorted(unknown)}; known: {', '.join(known)}")
    hints = get_type_hints(cls)
    for key, value in data.items():
        expected = hints[key]
        if not _fits(value, expected):
            shown = str(expected).replace("typing.", "") if get_origin(expected) else expected.__name__
            raise ConfigError(f"{where} {key} = {value!r}: expected {shown}")
    return cls(**data)


def _fits(value: Any, expected: Any) -> bool:
    """Whether a TOML value has the field's type; the nested tables are checked where they are built."""
    origin = get_origin(expected)
    if origin in (Union, UnionType):
        return any(_fits(value, option) for option in get_args(expected))
    if expected is type(None):
        return value is None
    if origin is list:
        (item,) = get_args(expected) or (Any,)
        return isinstance(value, list) and all(_fits(v, item) for v in value)
    if expected is Any or is_dataclass(expected) or origin is not None:
        return True
    if expected is Path:
        return isinstance(value, str | Path)
    if expected is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if expected is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, expected)


def parse_config(data: dict[str, Any], *, base: Path | None = None) -> PipelineConfig:
    """A PipelineConfig from parsed TOML; relative paths are relative to `base` (default: the current
    directory, as for every other command's --out)."""
    data = dict(data)
    sections: dict[str, Any] = {}
    for name, cls in (("models", ModelsConfig), ("serving", ServingConfig), ("collect", CollectConfig),
                      ("finetune", FinetuneConfig), ("bank", BankConfig)):  # fmt: skip
        table = data.pop(name, {})
        if not isinstance(table, dict):
            raise ConfigError(f"[{name}] must be a table")
        sections[name] = _build(cls, table, f"[{name}]")
    table = dict(data.pop("eval", {}))
    if "benchmarks" in table:
        entries = table["benchmarks"]
        if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
            raise ConfigError('[eval] benchmarks: a list of tables like { dataset = "humaneval", limit = 20 }')
        table["benchmarks"] = [_build(Benchmark, e, "[eval] benchmarks entry") for e in entries]
    sections["eval"] = _build(EvalConfig, table, "[eval]")
    config = _build(PipelineConfig, data | sections, "top level")
    root = base or Path.cwd()
    config.workdir = (root / Path(config.workdir).expanduser()).resolve()
    if config.data_dir is not None:
        config.data_dir = (root / Path(config.data_dir).expanduser()).resolve()
    try:
        config.check()
    except ValueError as error:
        raise ConfigError(str(error)) from None
    return config


def load_config(path: str | Path) -> PipelineConfig:
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: no such config file; `mapcoder-lite pipeline --print-config` prints one to "
                          "start from")
    try:
        data = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"{path}: not valid TOML ({error})") from None
    try:
        return parse_config(data)
    except TypeError as error:  # a value of the wrong shape reaching a dataclass
        raise ConfigError(f"{path}: {error}") from None


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, (str, Path)):
        return json.dumps(str(value))  # a JSON string is a valid TOML basic string
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{k} = {_toml_value(v)}" for k, v in value.items() if v is not None) + " }"
    raise TypeError(f"no TOML form for {value!r}")


def render_config(config: PipelineConfig) -> str:
    """The config as TOML, every key written out (unset ones as comments), for --print-config."""
    data = config.to_dict()
    lines = ["# mapcoder-lite pipeline config: every key with its value; see `mapcoder-lite pipeline --help`."]
    tables = {k: v for k, v in data.items() if isinstance(v, dict)}
    for key, value in data.items():
        if key not in tables:
            lines.append(f"# {key} =" if value is None else f"{key} = {_toml_value(value)}")
    for name, table in tables.items():
        lines += ["", f"[{name}]"]
        for key, value in table.items():
            lines.append(f"# {key} =" if value is None else f"{key} = {_toml_value(value)}")
    return "\n".join(lines) + "\n"
