"""Dataset readers, one module per family; importing this package registers them all.

Adding a dataset: one file here with a function decorated by ``@register("name")`` and one import
line below.
"""
from vptracker.datasets.base import DatasetFormatError, Sequence, Track, available, load, register  # noqa: F401
from vptracker.datasets import synthetic  # noqa: F401  (registers synthetic_sot, synthetic_mot)
from vptracker.datasets import sot  # noqa: F401,E402
from vptracker.datasets import tnl2k_toolkit  # noqa: F401,E402
from vptracker.datasets import lasot  # noqa: F401,E402
from vptracker.datasets import got10k  # noqa: F401,E402
from vptracker.datasets import otb  # noqa: F401,E402
from vptracker.datasets import mot  # noqa: F401,E402
from vptracker.datasets import refer_kitti  # noqa: F401,E402
from vptracker.datasets import crtrack  # noqa: F401,E402
from vptracker.datasets import bensmot  # noqa: F401,E402
from vptracker.datasets import synth_pedes  # noqa: F401,E402
