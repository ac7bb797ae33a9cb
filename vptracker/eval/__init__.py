"""Evaluation of result files from any tracker with the official protocols (SPEC section 7).

Loading is separate from scoring: readers (``sot_data``, ``numparse``, the ``load_*`` helpers)
turn files into arrays and never know about metrics; metrics never open a file.

Data that passes between them:

* SOT: :class:`~vptracker.eval.sot_data.SOTGroundTruth` (``boxes`` ``(N, 4)`` x,y,w,h, ``visible``
  ``(N,)`` or None, ``attributes``) and predictions ``{seq: (N, 4) x,y,w,h}``; a protocol turns a
  pair into per-frame errors, :func:`~vptracker.eval.sot.sequence_curves_batch` into curves.
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
    "load_ground_truth": "sot_data", "load_results": "sot_data", "SOTGroundTruth": "sot_data",
    "PROTOCOLS": "sot", "plot_curves": "plots",
    "evaluate_mot": "mot", "run_trackeval": "mot", "evaluate_rmot": "rmot",
    "evaluate_crmot": "crmot", "evaluate_captions": "captions", "evaluate_smot": "smot",
    "markdown_report": "report", "write_report": "report",
}

__all__ = list(_EXPORTS)


def __getattr__(name: str):
    # TrackEval, scipy and pycocoevalcap load only when their part is used.
    if name in _EXPORTS:
        return getattr(importlib.import_module(f"vptracker.eval.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module 'vptracker.eval' has no attribute {name!r}")
