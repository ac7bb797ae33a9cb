"""What the project knows about a model before and while it loads one.

:mod:`~vptracker.models.families` (one record per family: box scale, template, resize rule),
:mod:`~vptracker.models.folder` (the check every model folder passes before a library reads it),
:mod:`~vptracker.models.shapes` (a preset's shapes from its ``config.json``, no weights),
:mod:`~vptracker.models.attn` (which attention implementation runs here),
:mod:`~vptracker.models.qwen_tokenizer` (the real Qwen tokenizer, offline),
:mod:`~vptracker.models.swift_plugin` (the ms-swift plugin that draws visual prompts and crops) and
:mod:`~vptracker.models.torchvision_hook` (torchvision on a CPU-only torch). Import from the modules.
"""
