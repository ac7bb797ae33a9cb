"""Dataset readers, one module per family; importing this package registers them all.

Adding a dataset: one file here with a function decorated by ``@register("name")`` and one import
line below.
"""
from vptracker.datasets import (
    bensmot,  # noqa: F401,E402
    crtrack,  # noqa: F401,E402
    got10k,  # noqa: F401,E402
    lasot,  # noqa: F401,E402
    mot,  # noqa: F401,E402
    otb,  # noqa: F401,E402
    refer_kitti,  # noqa: F401,E402
    sot,  # noqa: F401,E402
    synth_pedes,  # noqa: F401,E402
    synthetic,  # noqa: F401  (registers synthetic_sot, synthetic_mot)
    tnl2k_toolkit,  # noqa: F401,E402
)
from vptracker.datasets.base import DatasetFormatError, Sequence, Track, available, load, register  # noqa: F401
