"""vptracker: multimodal LLMs as object trackers (VPTracker and OmniPT) on ms-swift."""

__version__ = "0.1.0"
