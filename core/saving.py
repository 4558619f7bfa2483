"""Writing model folders that load anywhere and that everyone who may read the folder can read: a model's weights
(save_model) and its tokenizer (save_tokenizer). Every folder the lab writes for a model goes through these two."""
from __future__ import annotations

import contextlib
import copy
import os
from pathlib import Path

from transformers import PreTrainedModel, PreTrainedTokenizerBase


def save_model(model: PreTrainedModel, folder: str | Path, **kwargs) -> None:
    """`model.save_pretrained(folder, **kwargs)`, with its weight files given the mode of the config.json written
    beside them (0644 under the usual umask 022).

    safetensors since 0.8 writes through a temporary file, which is created with mode 0600, and renames it into place
    (safetensors issue #782): model.safetensors alone came out readable by its owner only, so a student saved for a
    class, a shared folder or a container run as another user could not be loaded. Raises what save_pretrained
    raises (OSError for a folder that cannot be written)."""
    folder = Path(folder)
    model.save_pretrained(folder, **kwargs)
    config = folder / "config.json"
    if not config.is_file():
        return
    mode = config.stat().st_mode & 0o777
    for weights in folder.glob("*.safetensors"):
        with contextlib.suppress(OSError):  # a file owned by someone else keeps its mode
            os.chmod(weights, mode)


# What a call such as tokenizer(texts, truncation=True, max_length=256, padding=True) leaves behind, and how the
# tokenizer was loaded: transformers 5 keeps both on the fast backend and in init_kwargs, and save_pretrained writes
# them into tokenizer.json and tokenizer_config.json, where a reader takes a call's max_length for the model's limit.
RUNTIME_KEYS = ("max_length", "stride", "truncation_strategy", "truncation_side", "pad_to_multiple_of",
                "pad_token_type_id", "padding_side", "is_local", "local_files_only")


def save_tokenizer(tokenizer: PreTrainedTokenizerBase, folder) -> None:
    """`tokenizer.save_pretrained(folder)` without the truncation and padding state earlier calls left on it.

    The saved tokenizer.json has no "truncation" or "padding" entry and tokenizer_config.json none of RUNTIME_KEYS;
    `model_max_length` (the model's own limit) is kept. The tokenizer passed in is not changed.
    """
    clean = copy.deepcopy(tokenizer)
    backend = getattr(clean, "backend_tokenizer", None)
    if backend is not None:
        backend.no_truncation()
        backend.no_padding()
    for key in RUNTIME_KEYS:
        clean.init_kwargs.pop(key, None)
    clean.save_pretrained(folder)
