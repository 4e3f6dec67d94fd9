"""A verified exemplar bank for retrieval: training problems whose code passed their hidden tests, with the
plans that led passing runs there, searched by BM25 over their descriptions (`Context.retrieval`).

    from mapcoder_lite.bank import load_bank
    from mapcoder_lite.bank.build import build_bank

    build_bank("mbpp", ["train", "validation"], "banks/mbpp")     # mapcoder-lite bank build ...
    load_bank("banks/mbpp").nearest(problem_text, k=3, exclude_id="MBPP/11")

`store` (the files, the index, retrieval) is what the graph imports; `build` (verifying programs in
the sandbox, reading runs) needs the evals package and is imported only by those who build.
"""

from mapcoder_lite.bank.store import (
    NEAR_DUPLICATE_JACCARD,
    Bank,
    BankError,
    Exemplar,
    bank_sha256,
    load_bank,
    near_duplicate,
    write_bank,
)

__all__ = [
    "NEAR_DUPLICATE_JACCARD",
    "Bank",
    "BankError",
    "Exemplar",
    "bank_sha256",
    "load_bank",
    "near_duplicate",
    "write_bank",
]
