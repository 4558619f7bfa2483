"""A run checked against its teacher from the teacher's config alone, before any weights load: the checks that
train.setup.prepare makes once the teacher is loaded, with the same sentences, so the app can refuse a run before it
is queued with the words the run itself would use."""
from __future__ import annotations

from pathlib import Path

from transformers import AutoConfig, PretrainedConfig

from core.formatting import error_sentence
from core.models import zoo
from core.models.student import check_init_layers, check_model_type, num_layers, student_config
from core.models.vocab import vocab_not_smaller
from core.runs.store import RunPaths
from train.config import DistillConfig


def teacher_config(name: str) -> PretrainedConfig | None:
    """The config of the model `name` names, read without its weights. None when it cannot be read without a
    download the Hub cannot serve now (the run then says why). ValueError, with the sentence zoo.load gives, for an
    unknown name or a folder that is no model."""
    source, location = zoo.resolve(name)
    if source == "arch":
        return zoo.arch_config(location)
    if source == "run":  # every copy of a run's student (init, checkpoints, final) has the shape of this config
        location = str(RunPaths(Path(location)).student)
        if not (Path(location) / "config.json").is_file():
            return None
    elif source == "hub" and not zoo.is_cached(location) and not zoo.hub_reachable():
        return None
    else:
        zoo.check_config(name, zoo.config_file(source, location))
    try:
        return AutoConfig.from_pretrained(location)
    except (OSError, ValueError) as error:
        raise ValueError(f"Could not read the configuration of '{name}': {error_sentence(error)}") from None


def student_layers(cfg: DistillConfig, teacher: PretrainedConfig) -> int:
    """The student's depth: cfg.student_layers, else half the teacher's. ValueError when deeper than the teacher."""
    teacher_layers = num_layers(teacher)
    layers = cfg.student_layers or max(1, teacher_layers // 2)
    if layers > teacher_layers:
        raise ValueError(f"The student cannot have more layers ({layers:,}) than the teacher ({teacher_layers:,}).")
    return layers


def check_against_teacher(cfg: DistillConfig, teacher: PretrainedConfig) -> PretrainedConfig:
    """The student's config as the run will build it (a reduced student's vocabulary at its requested size).

    Raises ValueError, in the words of train.setup and core.models.student, for a max length past the teacher's
    positions, more layers than the teacher, initialising layers that do not fit it, an unsupported architecture,
    or a width above the teacher's or not divisible by its heads, and for a reduced vocabulary not below the
    teacher's."""
    if cfg.reduced_vocab and cfg.student_vocab_size >= teacher.vocab_size:
        raise ValueError(vocab_not_smaller(cfg.student_vocab_size, teacher.vocab_size))
    max_positions = teacher.max_position_embeddings
    if cfg.max_length > max_positions:
        raise ValueError(f"--max-length {cfg.max_length:,} is longer than the teacher's maximum ({max_positions:,}).")
    layers = student_layers(cfg, teacher)
    if not cfg.reduced_vocab and cfg.init_layers:
        check_init_layers(list(cfg.init_layers), layers, num_layers(teacher))
    model_type = teacher.model_type if cfg.student_type == "same" else cfg.student_type
    check_model_type(model_type)
    hidden = cfg.student_hidden if cfg.reduced_vocab else None
    return student_config(teacher, model_type, layers, hidden_size=hidden, vocab_size=cfg.student_vocab_size)
