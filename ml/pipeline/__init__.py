"""``galsearch pipeline``: simulate or ingest -> fit-augment -> train -> embed -> index ->
evaluate in one command, each stage skipped when its output is up to date.

    from ml.pipeline import load_pipeline_config, run_pipeline
    result = run_pipeline(load_pipeline_config("configs/demo.toml"))
    print(result.summary())

Settings: :mod:`ml.pipeline.config`; stages: :mod:`ml.pipeline.stages`; skipping and resuming:
:mod:`ml.pipeline.run`.
"""

from ml.pipeline.config import PipelineConfig, load_pipeline_config
from ml.pipeline.run import PipelineResult, run_pipeline
from ml.pipeline.stages import PipelineError

__all__ = ["PipelineConfig", "PipelineError", "PipelineResult", "load_pipeline_config",
           "run_pipeline"]
