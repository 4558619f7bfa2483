"""Writing a model folder whose files everyone who may read the folder can read."""
from __future__ import annotations

import contextlib
import os
from pathlib import Path

from transformers import PreTrainedModel


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
