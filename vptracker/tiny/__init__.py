"""Tiny random-weight models built offline, for tests, benchmarks and the CPU demos.

:mod:`~vptracker.tiny.model` (the Qwen-VL families and the entry point for every family) and
:mod:`~vptracker.tiny.tiling` (InternVL2.5 and LLaVA-NeXT). No pipeline module imports this package.
"""
