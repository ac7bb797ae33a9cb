"""Model folders are data: the one check every load makes before a model folder reaches a library.

A model folder can name Python code of its own in an ``auto_map`` (``config.json``,
``tokenizer_config.json``, ``processor_config.json``, ...); transformers imports that code when a
caller passes ``trust_remote_code=True``, and ms-swift 4.6 passes it itself, unconditionally
(``swift.model.model_meta._get_model_info`` and ``ModelLoader.default_trust_remote_code``). So the
check runs first, on the folder's files as plain JSON, and refuses a folder that names code unless
the user asked for it (``--trust-remote-code``). :func:`remote_code_guard` is the second line: while
it is active, transformers cannot import a module from a model folder at all.

Used by inference (``vptracker.infer.engine``) and training (``vptracker.train``).
"""
from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from pathlib import Path

# Config files transformers reads an ``auto_map`` from (config, tokenizer, processors, generation).
CODE_CONFIG_GLOB = "*config*.json"


class ModelDirError(ValueError):
    """A model folder that cannot be loaded as data (missing, unreadable, or naming its own code)."""


def _read_json(path: Path) -> dict:
    try:
        data = json.loads(path.read_text(encoding="utf-8-sig"))
    except UnicodeDecodeError as err:
        raise ModelDirError(f"{path}: not UTF-8 ({err.reason} at byte {err.start})") from None
    except json.JSONDecodeError as err:
        raise ModelDirError(f"{path}: not valid JSON (line {err.lineno}, column {err.colno}: {err.msg})") from None
    if not isinstance(data, dict):
        raise ModelDirError(f"{path}: expected a JSON object, got {type(data).__name__}")
    return data


def _auto_map_entries(auto_map) -> list[str]:
    """``"AutoConfig -> configuration_x.XConfig"`` lines from an ``auto_map`` value (dict or list)."""
    if isinstance(auto_map, dict):
        out = []
        for key, value in auto_map.items():
            targets = value if isinstance(value, (list, tuple)) else [value]
            out += [f"{key} -> {t}" for t in targets if t]
        return out
    if isinstance(auto_map, (list, tuple)):
        return [str(v) for v in auto_map if v]
    return [str(auto_map)] if auto_map else []


def remote_code_entries(model_dir: str | Path) -> dict[str, list[str]]:
    """``{config file name: auto_map entries}`` for every config file of the folder that names code."""
    found = {}
    for path in sorted(Path(model_dir).glob(CODE_CONFIG_GLOB)):
        if path.is_file() and "auto_map" in (data := _read_json(path)):
            entries = _auto_map_entries(data["auto_map"])
            if entries:
                found[path.name] = entries
    return found


def check_model_dir(model_dir: str | Path, trust_remote_code: bool = False) -> dict:
    """The parsed ``config.json`` of a model folder, after checking it can be loaded as data.

    Raises :class:`ModelDirError` (one line) when the folder or its ``config.json`` is missing or
    unreadable, or when any config file has an ``auto_map`` naming the folder's own code and
    ``trust_remote_code`` is false. Nothing from the folder is imported: its files are read as JSON.
    """
    model_dir = Path(model_dir)
    if not model_dir.is_dir():
        raise ModelDirError(f"model directory {model_dir} does not exist")
    config_path = model_dir / "config.json"
    if not config_path.is_file():
        raise ModelDirError(f"{config_path}: missing; expected a model directory with config.json")
    config = _read_json(config_path)
    if not trust_remote_code:
        code = remote_code_entries(model_dir)
        if code:
            name, entries = next(iter(code.items()))
            more = f" (and {len(code) - 1} more config files)" if len(code) > 1 else ""
            raise ModelDirError(
                f"{model_dir / name}: auto_map names code shipped in the model folder ({'; '.join(entries)}){more}; "
                "model folders are loaded as data, so it is refused: pass --trust-remote-code "
                "(trust_remote_code=true) only for a folder whose code you have read")
    return config


@contextlib.contextmanager
def remote_code_guard(allowed: bool = False) -> Iterator[None]:
    """While active (and not ``allowed``), transformers cannot import code from a model folder.

    ms-swift 4.6 calls ``from_pretrained(..., trust_remote_code=True)`` itself with no switch to turn
    it off; this makes such a call fail with :class:`ModelDirError` instead of running the code.
    """
    if allowed:
        yield
        return
    from transformers import dynamic_module_utils as dmu

    def refuse(name, *args, **kwargs):
        raise ModelDirError(f"{name}: loading would import Python code from a model folder; refused "
                            "(pass --trust-remote-code to allow it)")

    saved = dmu.get_cached_module_file, dmu.get_class_in_module
    dmu.get_cached_module_file = refuse
    dmu.get_class_in_module = lambda class_name, module_path, *a, **k: refuse(module_path)
    try:
        yield
    finally:
        dmu.get_cached_module_file, dmu.get_class_in_module = saved
