"""`mapcoder-lite pipeline`: the paper's recipe from a training split to a served, evaluated MapCoder-Lite.

    from mapcoder_lite.pipeline import Pipeline, load_config
    Pipeline(load_config("examples/pipeline.toml")).run()
"""

from mapcoder_lite.pipeline.config import ConfigError, PipelineConfig, load_config, parse_config, render_config
from mapcoder_lite.pipeline.run import STAGES, Pipeline, PipelineError

__all__ = [
    "STAGES",
    "ConfigError",
    "Pipeline",
    "PipelineConfig",
    "PipelineError",
    "load_config",
    "parse_config",
    "render_config",
]
