"""Training: the four OmniPT stages and the VPTracker recipe, driven by stage configs over ms-swift.

Python API: :func:`run_stage` (one stage, returns its final weights' directory), :func:`run_chain`
(several stages, each starting from the previous one), :func:`load_stage` (resolve a config).
Overrides are the CLI's ``key=value`` strings, for example a small CPU run of the real configs::

    run_stage("stage3_sft", ["profile=cpu", "model=/models/tiny", "dataset=[/data/sft]",
                             "val_dataset=[]", "max_steps=50", "run_dir=/runs/demo"])

``profile=cpu`` keeps the recipe and turns off bf16, DeepSpeed, flash-attn and vLLM rollouts;
``profile=tiny`` also cuts steps, lengths and images for smoke tests (tests/omnipt_data.py runs
``vptracker prepare``'s OmniPT configs over small datasets in every official layout for them).
"""
from vptracker.train.runner import StageFailed, last_checkpoint, run_chain, run_stage
from vptracker.train.stages import OMNIPT_STAGES, StageConfig, StageConfigError, available_stages, load_stage

__all__ = ["OMNIPT_STAGES", "StageConfig", "StageConfigError", "StageFailed", "available_stages", "last_checkpoint",
           "load_stage", "run_chain", "run_stage"]
