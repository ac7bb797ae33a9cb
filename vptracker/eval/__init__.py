"""Evaluation of result files from any tracker with the official protocols (SPEC section 7).

Loading is separate from scoring: ground truth is read by the same ``vptracker.datasets`` readers
that training uses (annotation-first: no image is opened), result files by ``numparse`` and the
``load_*`` helpers; metrics never open a file.

Data that passes between them:

* SOT: single-track ``vptracker.datasets.Sequence`` objects (``target.boxes`` ``(N, 4)`` x,y,w,h,
  ``target.visible`` ``(N,)``, ``attributes``) and predictions ``{seq: (N, 4) x,y,w,h}``; a protocol
  (a class named in ``SOT_PROTOCOLS``) scores each sequence (``eval_sequence``) and combines them
  (``combine_sequences``).
* MOT, RMOT, SMOT, CRMOT: TrackEval's per-sequence data dict (``num_timesteps``, ``gt_ids`` and
  ``tracker_ids`` per timestep, ``similarity_scores`` IoU matrices, counts), built by TrackEval's
  ``MotChallenge2DBox`` or by :func:`~vptracker.eval.crmot.to_data_dict`.
* Captions: ``refs = {id: [reference, ...]}``, ``preds = {id: prediction}``.

Python entry points (the CLI, the demo and the benchmark use these)::

    from vptracker.eval import evaluate_sot, plot_curves
    summary = evaluate_sot("TNL2K_test/annos", "results/vptracker", protocol="tnl2k")
    plot_curves({"VPTracker": summary, "baseline": other}, "plots/")
"""
from __future__ import annotations

import importlib

_EXPORTS = {
    "evaluate_sot": "sot_eval", "score_sequences": "sot_eval", "write_sot_outputs": "sot_eval",
    "sot_ground_truth": "sot_eval", "load_results": "sot_eval",
    "SOT_PROTOCOLS": "sot", "PROTOCOLS": "sot", "plot_curves": "plots", "MOT_BENCHMARKS": "mot",
    "evaluate_mot": "mot", "run_trackeval": "mot", "evaluate_rmot": "rmot",
    "evaluate_crmot": "crmot", "evaluate_captions": "captions", "evaluate_smot": "smot",
    "markdown_report": "report", "write_report": "report", "load_summaries": "report",
    "package_dancetrack": "package", "package_bensmot": "package",
}

__all__ = list(_EXPORTS)


def __getattr__(name: str):
    # TrackEval, scipy and pycocoevalcap load only when their part is used.
    if name in _EXPORTS:
        return getattr(importlib.import_module(f"vptracker.eval.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module 'vptracker.eval' has no attribute {name!r}")
