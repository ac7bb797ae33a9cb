"""Model folders are data: check one before any library loads it.

transformers runs Python files shipped in a model folder only when a JSON config names them in an
``auto_map`` (and the caller passes ``trust_remote_code=True``, which ms-swift 4.6 always does and
has no argument to turn off). Refusing such folders before anything loads them keeps their code
from running; ``trust_remote_code=True`` is the user's explicit, recorded consent.
"""
from __future__ import annotations

import json
from pathlib import Path

# The JSON files whose ``auto_map`` makes transformers import code from the folder.
CODE_CONFIGS = ("config.json", "tokenizer_config.json", "processor_config.json", "preprocessor_config.json",
                "video_preprocessor_config.json")


class ModelDirError(ValueError):
    """A model folder that cannot be used as given; the message names the folder and the file."""


def _read_json(path: Path) -> dict:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ModelDirError(f"{path}: expected a UTF-8 JSON object ({err})") from None
    if not isinstance(data, dict):
        raise ModelDirError(f"{path}: expected a JSON object, got {type(data).__name__}")
    return data


def check_model_dir(model_dir: str | Path, trust_remote_code: bool = False) -> dict:
    """Returns the folder's ``config.json``; raises :class:`ModelDirError` if it is missing, or if a
    config names custom code (``auto_map``) and ``trust_remote_code`` is off."""
    model_dir = Path(model_dir)
    if not model_dir.is_dir():
        raise ModelDirError(f"model folder {model_dir} does not exist")
    config_path = model_dir / "config.json"
    if not config_path.is_file():
        raise ModelDirError(f"{model_dir}: no config.json (expected a Hugging Face model folder)")
    config = _read_json(config_path)
    if not trust_remote_code:
        for name in CODE_CONFIGS:
            path = model_dir / name
            data = config if name == "config.json" else (_read_json(path) if path.is_file() else {})
            if data.get("auto_map"):
                raise ModelDirError(f"{path}: names custom code (auto_map: {sorted(data['auto_map'])}); refusing to "
                                    "run code from a model folder; pass --trust-remote-code (trust_remote_code=true) "
                                    "if you trust its source")
    return config
