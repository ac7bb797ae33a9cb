"""Training: the four OmniPT stages and the VPTracker recipe, driven by stage configs over ms-swift.

Python API: :func:`run_stage` (one stage, returns its final weights' directory), :func:`run_chain`
(several stages, each starting from the previous one), :func:`load_stage` (resolve a config).
"""
from vptracker.train.runner import StageFailed, last_checkpoint, run_chain, run_stage
from vptracker.train.stages import OMNIPT_STAGES, StageConfig, StageConfigError, available_stages, load_stage

__all__ = ["OMNIPT_STAGES", "StageConfig", "StageConfigError", "StageFailed", "available_stages", "last_checkpoint",
           "load_stage", "run_chain", "run_stage"]
