"""The exemplar bank on disk, and the k nearest exemplars of a problem.

A bank is a directory:

    manifest.json      dataset, splits, counts, the sha256 of exemplars.jsonl (the bank's identity), the index
    exemplars.jsonl    one verified exemplar per line: id, split, description, code, planning (may be empty)
    index/             the BM25 index of the descriptions (bm25s), line i of exemplars.jsonl = document i

Retrieval is lexical: BM25 over the descriptions, the problem's text as the query. An exemplar with the
problem's own id, or whose description is a near-duplicate of the problem (`near_duplicate`), is never
returned: a benchmark that repeats a problem in its training split must not hand the model its answer.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import threading
from collections.abc import Sequence
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

from mapcoder_lite.files import MANIFEST_FILE, jsonl, write_atomic

FORMAT = 1
EXEMPLARS_FILE = "exemplars.jsonl"
INDEX_DIR = "index"
BUILD_COMMAND = "mapcoder-lite bank build --dataset mbpp --split train,validation --out DIR"


class BankError(ValueError):
    """A bank that cannot be built or used; the message says why and what to do."""


@dataclass(frozen=True)
class Exemplar:
    """One training problem whose code passed its hidden tests, with the plan that led to it if a run recorded one."""

    id: str
    split: str
    description: str  # the problem's text, as the graph is shown it
    code: str  # verified: passes every hidden test of the problem
    planning: str = ""  # the plan of a passing run whose final code it led to; "" when no run recorded one
    code_from: str = "reference"  # "reference" (the dataset's solution) or the run directory whose program it is
    plan_from: str = ""  # the run directory the plan comes from

    def example(self) -> dict[str, str]:
        """The shape the planner receives (a recalled example's), marked as the bank's with its id."""
        return {"description": self.description, "code": self.code, "planning": self.planning, "id": self.id,
                "source": "bank"}


# ---------------------------------------------------------------- near-duplicates

# Words that frame a task without changing it ("Write a python function to ..." is MBPP's frame).
FRAME_WORDS = frozenset((
    "a", "an", "the", "of", "to", "in", "on", "for", "is", "are", "be", "by", "with", "from", "as", "that", "this",
    "it", "its", "given", "write", "function", "python", "program",
))
# Chosen on MBPP's train and validation splits only (464 problems, 107,416 pairs), never on a test split.
# Rewordings of one task there add or drop words ("... by using regex", "the", "or not", "find out, if"):
# the shorter description's content words all appear in the other. Different tasks substitute a word
# (odd/even, fourth/fifth power, left/right insertion point, greater/smaller): their token-set Jaccard
# is 0.80-0.90, as high as the rewordings' (0.64-0.92), so a plain Jaccard threshold cannot tell them
# apart, and they are the related problems retrieval is for. The rule: every content word of the
# shorter description is in the longer one, and the two share at least NEAR_DUPLICATE_JACCARD of their
# content words (so a short description inside a long, different one does not count: "find the sum of
# an array" in "find the sum of xor of all pairs of numbers in the given array" is 0.43). It flags 17
# pairs there: 11 rewordings (eight "... by using regex" twins such as MBPP/933 and /965; /758 and /779,
# /625 and /591, /955 and /541) and 6 close variants whose code nearly answers the other (integer to
# roman and back, /958 and /961; "a list to a tuple" and "a given string list to a tuple", /587 and
# /538). At 0.60 it would add a different task ("length of the string" / "length of the last word",
# /813 and /868); at 0.70 it would miss a rewording (/693 and /892, 0.67).
NEAR_DUPLICATE_JACCARD = 0.65


def content_words(text: str) -> set[str]:
    """The words that say what a description asks: case-folded, without the frame words and "or not"."""
    text = re.sub(r"\bor not\b", " ", text.casefold())
    return {word for word in re.findall(r"\w+", text) if word not in FRAME_WORDS}


def near_duplicate(description: str, problem: str) -> bool:
    """Whether `description` states the task of `problem` again (see NEAR_DUPLICATE_JACCARD)."""
    a, b = content_words(description), content_words(problem)
    if not a or not b:
        return description.strip().casefold() == problem.strip().casefold()
    shared = len(a & b)
    return shared == min(len(a), len(b)) and shared / len(a | b) >= NEAR_DUPLICATE_JACCARD


# ---------------------------------------------------------------- the BM25 index

TOKENIZER = {"stopwords": "en", "stemmer": "plural-s"}


def _stem(words: list[str]) -> list[str]:
    """A plural's trailing s off ("numbers" finds "number"); bm25s leaves stemming to PyStemmer, a C
    extension, and MBPP-style descriptions need no more than this."""
    return [w[:-1] if len(w) > 3 and w.endswith("s") and not w.endswith("ss") else w for w in words]


def _tokenize(texts: list[str], *, ids: bool) -> Any:
    import bm25s

    return bm25s.tokenize(texts, stopwords=TOKENIZER["stopwords"], stemmer=_stem, return_ids=ids,
                          show_progress=False)


def build_index(descriptions: list[str]) -> Any:
    import bm25s

    index = bm25s.BM25()
    index.index(_tokenize(descriptions, ids=True), show_progress=False)
    return index


# ---------------------------------------------------------------- the bank


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@dataclass
class Bank:
    path: Path
    manifest: dict[str, Any]
    exemplars: list[Exemplar]
    index: Any

    @property
    def sha256(self) -> str:
        """The hash of the exemplars, recorded by every eval run that retrieves from the bank."""
        return str(self.manifest["sha256"])

    def scores(self, problem: str) -> list[float]:
        query = _tokenize([problem], ids=False)[0]
        if not query:  # only stop words: no exemplar is nearer than another
            return [0.0] * len(self.exemplars)
        return [float(s) for s in self.index.get_scores(query)]

    def nearest(self, problem: str, k: int, exclude_id: str | None = None) -> list[Exemplar]:
        """The k exemplars whose descriptions score highest for `problem` (BM25; ties in bank order),
        never the problem itself: not its id, nor a near-duplicate of its text. Fewer only when the
        bank holds fewer others."""
        scores = self.scores(problem)
        chosen: list[Exemplar] = []
        for i in sorted(range(len(self.exemplars)), key=lambda i: (-scores[i], i)):
            exemplar = self.exemplars[i]
            if exemplar.id == exclude_id or near_duplicate(exemplar.description, problem):
                continue
            chosen.append(exemplar)
            if len(chosen) == k:
                break
        return chosen


def write_bank(out: str | Path, exemplars: Sequence[Exemplar], manifest: dict[str, Any]) -> dict[str, Any]:
    """Write a bank into `out`, replacing a bank there; returns the manifest written (with the hash and
    index). The files are written in a directory beside `out` and swapped in, so a kill leaves the old
    bank or the new one, never half of one; a directory that holds something else is not overwritten."""
    import bm25s

    out = Path(out)
    if not exemplars:
        raise BankError("no exemplar to write: no problem's code passed its hidden tests")
    check_out(out)
    text = jsonl(asdict(e) for e in exemplars)
    manifest = dict(manifest) | {
        "format": FORMAT,
        "sha256": sha256_bytes(text.encode("utf-8")),
        "index": {"library": "bm25s", "version": bm25s.__version__, "dir": INDEX_DIR, "field": "description",
                  **TOKENIZER},
        "near_duplicate": {"rule": "content words of one all in the other, Jaccard at least",
                           "jaccard": NEAR_DUPLICATE_JACCARD},
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    building, old = out.with_name(f".{out.name}.building"), out.with_name(f".{out.name}.old")
    shutil.rmtree(building, ignore_errors=True)
    building.mkdir()
    build_index([e.description for e in exemplars]).save(str(building / INDEX_DIR), show_progress=False)
    write_atomic(building / EXEMPLARS_FILE, text)
    write_atomic(building / MANIFEST_FILE, json.dumps(manifest, indent=2, ensure_ascii=False) + "\n")
    shutil.rmtree(old, ignore_errors=True)
    if out.exists():
        out.rename(old)
    building.rename(out)
    shutil.rmtree(old, ignore_errors=True)
    return manifest


def check_out(out: str | Path) -> None:
    """A bank may be written to a new or empty directory, or over a bank; never over anything else."""
    out = Path(out)
    if out.exists() and (not out.is_dir() or (any(out.iterdir()) and not (out / MANIFEST_FILE).is_file())):
        raise BankError(f"{out} exists and is not an exemplar bank; pass another --out")


_EXEMPLAR_FIELDS = {f.name for f in fields(Exemplar)}
_cache: dict[tuple[str, int, int], Bank] = {}
_cache_lock = threading.Lock()


def load_bank(path: str | Path) -> Bank:
    """The bank in `path`, checked (its manifest, the exemplars' hash, the index); loaded once per
    process while its files are unchanged. Anything missing or altered is a BankError naming the fix."""
    path = Path(path).expanduser()
    manifest_file, exemplars_file = path / MANIFEST_FILE, path / EXEMPLARS_FILE
    if not manifest_file.is_file() or not exemplars_file.is_file():
        what = "no such directory" if not path.is_dir() else f"no {MANIFEST_FILE} and {EXEMPLARS_FILE} there"
        raise BankError(f"{path}: not an exemplar bank ({what}); build one with `{BUILD_COMMAND}`")
    key = (str(path.resolve()), manifest_file.stat().st_mtime_ns, exemplars_file.stat().st_mtime_ns)
    with _cache_lock:
        if key not in _cache:
            _cache[key] = _read_bank(path)
        return _cache[key]


def _read_bank(path: Path) -> Bank:
    rebuild = f"build it again with `{BUILD_COMMAND}`"
    try:
        manifest = json.loads((path / MANIFEST_FILE).read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise BankError(f"{path / MANIFEST_FILE}: not valid JSON ({exc}); {rebuild}") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT or not manifest.get("sha256"):
        raise BankError(f"{path / MANIFEST_FILE}: not the manifest of a bank of format {FORMAT}; {rebuild}")
    data = (path / EXEMPLARS_FILE).read_bytes()
    if sha256_bytes(data) != manifest["sha256"]:
        raise BankError(f"{path / EXEMPLARS_FILE} changed since the bank was built (its sha256 is not the "
                        f"manifest's); {rebuild}")
    exemplars = []
    for line in data.decode("utf-8").splitlines():
        row = json.loads(line)  # the hash matched: these are the lines the build wrote
        exemplars.append(Exemplar(**{k: v for k, v in row.items() if k in _EXEMPLAR_FIELDS}))
    try:
        import bm25s

        index = bm25s.BM25.load(str(path / INDEX_DIR), show_progress=False)
        documents = int(index.scores["num_docs"])
    except Exception as exc:  # missing or damaged files; bm25s raises several kinds
        raise BankError(f"{path / INDEX_DIR}: the bank's index cannot be read ({type(exc).__name__}: "
                        f"{str(exc)[:200]}); {rebuild}") from None
    if documents != len(exemplars):
        raise BankError(f"{path / INDEX_DIR}: indexes {documents} descriptions for {len(exemplars)} exemplars; "
                        f"{rebuild}")
    return Bank(path=path, manifest=manifest, exemplars=exemplars, index=index)


def bank_sha256(path: str | Path) -> str:
    """The content hash of the bank in `path` (checked as `load_bank` checks it)."""
    return load_bank(path).sha256
