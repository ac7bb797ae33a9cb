"""What a model is shown besides the frames: :mod:`~vptracker.prompts.texts` (every prompt text)
and :mod:`~vptracker.prompts.visual` (VPTracker's visual prompt: template crop and outlined search
frame, the released geometry). Import from the modules.
"""
