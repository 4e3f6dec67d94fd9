"""Benchmark loaders: HumanEval (+ET), MBPP, APPS, xCodeEval and CodeContests as `Problem`s.

Every dataset loads from a local JSONL file in the layout of the original MapCoder repository's
``data/`` folder (found under a data directory: ``--data-dir``, ``$MAPCODER_LITE_DATA_DIR``, or
``../shared/data`` beside the repository) and, when the network is there, from the Hugging Face
dataset of the same benchmark (``source="hub"``; the ``datasets`` package is imported only then).

The package: `registry` (each benchmark's files, splits, hub dataset and loaders; `load_problems`),
one module a benchmark family (`humaneval`, `mbpp` with mbpp-py, `apps`, `xcodeeval`,
`codecontests`), and what they share: `problem` (`Problem`, `ProblemSet`), `data_dir` (finding the
files), `records` (each problem's record once: `distinct_records`), `fields` (reading a record's
fields), `stdio` (the stdin/stdout benchmarks' note and tests), `errors`.

Every loader reads its records through `distinct_records`: a row that repeats an earlier one
exactly is loaded once (published files do this), and two different rows with one id are an error.

A `Problem` keeps what the graph may see (statement, samples, entry point) apart from what only
scoring may use (hidden tests, the benchmark's check code, reference solutions): `graph_input()` is
the one way a problem reaches a strategy, and it never carries a hidden test.
"""

from mapcoder_lite.evals.datasets.apps import apps_id, apps_problem
from mapcoder_lite.evals.datasets.codecontests import codecontests_id, codecontests_problem
from mapcoder_lite.evals.datasets.data_dir import DATA_DIR_ENV, default_data_dir, repo_root
from mapcoder_lite.evals.datasets.errors import DataFileError, DatasetError
from mapcoder_lite.evals.datasets.fields import as_list
from mapcoder_lite.evals.datasets.humaneval import (
    ET_FLOAT_TOLERANCE,
    doctest_examples,
    et_tests,
    humaneval_id,
    humaneval_problem,
    humaneval_samples,
)
from mapcoder_lite.evals.datasets.mbpp import (
    MBPP_SPLITS,
    called_function,
    defined_functions,
    mbpp_id,
    mbpp_problem,
    mbpp_py_id,
    mbpp_py_problem,
)
from mapcoder_lite.evals.datasets.problem import Problem, ProblemSet, distinct_count
from mapcoder_lite.evals.datasets.records import (
    Records,
    distinct_records,
    hub_records,
    numbered_jsonl,
    read_records,
)
from mapcoder_lite.evals.datasets.registry import (
    DATASETS,
    SOURCES,
    TRAINING_SPLITS,
    DatasetSpec,
    dataset_spec,
    load_problems,
)
from mapcoder_lite.evals.datasets.stdio import FUNCTION_NOTE, STDIO_NOTE, stdio_tests
from mapcoder_lite.evals.datasets.xcodeeval import xcodeeval_id, xcodeeval_problem

__all__ = [
    "DATASETS",
    "DATA_DIR_ENV",
    "ET_FLOAT_TOLERANCE",
    "FUNCTION_NOTE",
    "MBPP_SPLITS",
    "SOURCES",
    "STDIO_NOTE",
    "TRAINING_SPLITS",
    "DataFileError",
    "DatasetError",
    "DatasetSpec",
    "Problem",
    "ProblemSet",
    "Records",
    "apps_id",
    "apps_problem",
    "as_list",
    "called_function",
    "codecontests_id",
    "codecontests_problem",
    "dataset_spec",
    "default_data_dir",
    "defined_functions",
    "distinct_count",
    "distinct_records",
    "doctest_examples",
    "et_tests",
    "hub_records",
    "humaneval_id",
    "humaneval_problem",
    "humaneval_samples",
    "load_problems",
    "mbpp_id",
    "mbpp_problem",
    "mbpp_py_id",
    "mbpp_py_problem",
    "numbered_jsonl",
    "read_records",
    "repo_root",
    "stdio_tests",
    "xcodeeval_id",
    "xcodeeval_problem",
]
