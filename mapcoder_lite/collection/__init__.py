"""Training-data collection: the five collection tracks and the supervisor-guided correction graph.

    import asyncio
    from mapcoder_lite.graph import Context
    from mapcoder_lite.collection import SupervisorContext, collect

    # A strong debugger (another server), the small model everywhere else.
    context = Context(model="qwen2.5-coder-0.5b-instruct", debugger_model="deepseek-chat",
                      debugger_base_url="https://api.deepseek.com/v1", role_api_keys="debugger=DEEPSEEK_API_KEY")
    summary = asyncio.run(collect("traj_debug", "apps", split="train", context=context, limit=100))

    # Supervisor-guided correction of the planner and the coder (DeepSeek-V3 supervises by default).
    summary = asyncio.run(collect("traj_plan_code_supervised", "apps", split="train",
                                  context=SupervisorContext(model="qwen2.5-coder-0.5b-instruct")))

    # Self-distillation: the small model in every role, 4 runs of each problem at temperature 0.8.
    summary = asyncio.run(collect("traj_self", "mbpp", split="train", samples=4, temperature=0.8,
                                  context=Context(model="qwen2.5-coder-0.5b-instruct")))

The same from the command line: `mapcoder-lite collect --track ... --dataset ... --split ...`; the
datasets of several collections together: `mapcoder_lite.finetune.data.extract` / `mapcoder-lite extract`.
"""

from mapcoder_lite.collection.context import (
    DEEPSEEK_BASE_URL,
    DEEPSEEK_MODEL,
    SUPERVISOR,
    SUPERVISOR_ROLES,
    SupervisorContext,
)
from mapcoder_lite.collection.records import classify_corrections, corrected_pairs
from mapcoder_lite.collection.supervisor_graph import (
    CorrectionInput,
    CorrectionOutput,
    CorrectionState,
    build_supervisor_graph,
    scoring_of,
)
from mapcoder_lite.collection.tracks import (
    TRACKS,
    CollectSettings,
    CollectSummary,
    SupervisedCorrection,
    collect,
    collect_problems,
    make_track_strategy,
)

__all__ = [
    "DEEPSEEK_BASE_URL",
    "DEEPSEEK_MODEL",
    "SUPERVISOR",
    "SUPERVISOR_ROLES",
    "TRACKS",
    "CollectSettings",
    "CollectSummary",
    "CorrectionInput",
    "CorrectionOutput",
    "CorrectionState",
    "SupervisedCorrection",
    "SupervisorContext",
    "build_supervisor_graph",
    "classify_corrections",
    "collect",
    "collect_problems",
    "corrected_pairs",
    "make_track_strategy",
    "scoring_of",
]
