"""Making a student from a teacher: fewer layers (and optionally a narrower width), initialised from the teacher.

BERT and DistilBERT name the same weights differently. Both are read into one neutral layout ("canonical" names
below), so a BERT teacher can initialise a DistilBERT student, as DeepPavlov did, and the other way round.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from transformers import AutoModelForMaskedLM, BertConfig, DistilBertConfig, PreTrainedModel

LAYER_NAMES = {  # canonical -> (BERT suffix, DistilBERT suffix) inside one transformer layer
    "q": ("attention.self.query", "attention.q_lin"),
    "k": ("attention.self.key", "attention.k_lin"),
    "v": ("attention.self.value", "attention.v_lin"),
    "attn_out": ("attention.output.dense", "attention.out_lin"),
    "attn_norm": ("attention.output.LayerNorm", "sa_layer_norm"),
    "ffn_in": ("intermediate.dense", "ffn.lin1"),
    "ffn_out": ("output.dense", "ffn.lin2"),
    "ffn_norm": ("output.LayerNorm", "output_layer_norm"),
}
OUTER_NAMES = {  # canonical -> (BERT name, DistilBERT name) outside the layers
    "word_emb.weight": ("bert.embeddings.word_embeddings.weight", "distilbert.embeddings.word_embeddings.weight"),
    "pos_emb.weight": ("bert.embeddings.position_embeddings.weight",
                       "distilbert.embeddings.position_embeddings.weight"),
    "emb_norm.weight": ("bert.embeddings.LayerNorm.weight", "distilbert.embeddings.LayerNorm.weight"),
    "emb_norm.bias": ("bert.embeddings.LayerNorm.bias", "distilbert.embeddings.LayerNorm.bias"),
    "head_dense.weight": ("cls.predictions.transform.dense.weight", "vocab_transform.weight"),
    "head_dense.bias": ("cls.predictions.transform.dense.bias", "vocab_transform.bias"),
    "head_norm.weight": ("cls.predictions.transform.LayerNorm.weight", "vocab_layer_norm.weight"),
    "head_norm.bias": ("cls.predictions.transform.LayerNorm.bias", "vocab_layer_norm.bias"),
    "head_bias": ("cls.predictions.bias", "vocab_projector.bias"),
}
SUPPORTED_TYPES = ("bert", "distilbert")


@dataclass
class StudentSpec:
    num_layers: int | None = None  # None: half the teacher's layers
    init_layers: list[int] | None = None  # teacher layers (0-based) copied into the student; None: evenly
    # spaced, keeping the first and the last (default_init_layers)
    model_type: str = "same"  # "same" as the teacher, "bert" or "distilbert"
    hidden_size: int | None = None  # None: the teacher's width; smaller: weights sliced (reduced-width students)


def check_model_type(model_type: str) -> int:
    """The column of `model_type` in the lab's weight tables; ValueError for a type other than BERT or DistilBERT."""
    if model_type not in SUPPORTED_TYPES:
        raise ValueError(f"Model type '{model_type}' is not supported; the lab works with BERT and DistilBERT.")
    return SUPPORTED_TYPES.index(model_type)


def num_layers(config) -> int:
    return config.n_layers if config.model_type == "distilbert" else config.num_hidden_layers


def dims(config) -> dict:
    """Width, heads, feed-forward size and vocabulary of a BERT or DistilBERT config, under one set of names."""
    if config.model_type == "distilbert":
        return dict(hidden=config.dim, heads=config.n_heads, ffn=config.hidden_dim, vocab=config.vocab_size,
                    max_positions=config.max_position_embeddings, act=config.activation)
    return dict(hidden=config.hidden_size, heads=config.num_attention_heads, ffn=config.intermediate_size,
                vocab=config.vocab_size, max_positions=config.max_position_embeddings, act=config.hidden_act)


def canonical_state(model: PreTrainedModel) -> dict[str, torch.Tensor]:
    """The weights of a BERT or DistilBERT masked LM under neutral names ("layers.3.q.weight", "word_emb.weight")."""
    column = check_model_type(model.config.model_type)
    state = model.state_dict()
    out = {canon: state[names[column]] for canon, names in OUTER_NAMES.items()}
    if column == 0:
        # BERT adds token-type 0 to every position; folding it into the position table keeps the function exact
        # for a DistilBERT student, which has no token types.
        out["pos_emb.weight"] = out["pos_emb.weight"] + state["bert.embeddings.token_type_embeddings.weight"][0]
    prefix = "bert.encoder.layer" if column == 0 else "distilbert.transformer.layer"
    for i in range(num_layers(model.config)):
        for canon, names in LAYER_NAMES.items():
            for part in ("weight", "bias"):
                out[f"layers.{i}.{canon}.{part}"] = state[f"{prefix}.{i}.{names[column]}.{part}"]
    return out


def load_canonical(model: PreTrainedModel, canon: dict[str, torch.Tensor]) -> None:
    """Write neutral-named weights into a BERT or DistilBERT model (shapes must already match)."""
    column = check_model_type(model.config.model_type)
    target = {names[column]: canon[c] for c, names in OUTER_NAMES.items()}
    prefix = "bert.encoder.layer" if column == 0 else "distilbert.transformer.layer"
    for i in range(num_layers(model.config)):
        for c, names in LAYER_NAMES.items():
            for part in ("weight", "bias"):
                target[f"{prefix}.{i}.{names[column]}.{part}"] = canon[f"layers.{i}.{c}.{part}"]
    if column == 0:
        target["bert.embeddings.token_type_embeddings.weight"] = torch.zeros_like(
            model.state_dict()["bert.embeddings.token_type_embeddings.weight"])
    state = model.state_dict()
    for name, value in target.items():
        if state[name].shape != value.shape:
            raise ValueError(f"Shape mismatch for {name}: model {tuple(state[name].shape)}, given {tuple(value.shape)}")
        state[name].copy_(value)
    model.tie_weights()


def default_init_layers(teacher_layers: int, student_layers: int) -> list[int]:
    """Teacher layers (0-based) that initialise the student: evenly spaced, keeping the first and the last.

    12 -> 6 gives [0, 2, 4, 7, 9, 11], DistilBERT's choice (Sanh et al., 2019, and Hugging Face's extraction
    script); 4 -> 2 gives [0, 3]. Each chosen layer lies in the group of layer_groups that its student layer learns
    from, so initialisation and the hidden-state loss agree. A one-layer student starts from the first layer.
    """
    if student_layers == 1:
        return [0]
    chosen = []
    for i, group in enumerate(layer_groups(teacher_layers, student_layers)):
        spaced = math.floor(i * (teacher_layers - 1) / (student_layers - 1) + 0.5)
        chosen.append(min(max(spaced, group[0] - 1), group[-1] - 1))  # group is 1-based, as in hidden_states
    return chosen


def layer_groups(teacher_layers: int, student_layers: int) -> list[list[int]]:
    """Consecutive teacher layers (1-based, as in hidden_states) that each student layer learns from.

    k = teacher/student layers; 12 -> 6 gives [[1, 2], [3, 4], ..., [11, 12]]. When k is not whole, the groups
    differ in size by at most one layer.
    """
    return [list(map(int, g)) for g in np.array_split(np.arange(1, teacher_layers + 1), student_layers)]


def check_init_layers(init: list[int], layers: int, teacher_layers: int) -> None:
    """ValueError unless `init` names one different teacher layer (0-based, below teacher_layers) per student layer,
    in increasing order."""
    if len(init) != layers:
        raise ValueError(f"Give one initialising teacher layer per student layer: {layers:,} needed, "
                         f"{len(init):,} given.")
    if any(not 0 <= i < teacher_layers for i in init):
        shown = str(init) if len(init) <= 24 else f"[{', '.join(map(str, init[:24]))}, ...]"
        raise ValueError(f"Initialising layers must be between 0 and {teacher_layers - 1}; got {shown}.")
    if len(set(init)) < len(init):
        # two student layers copied from one teacher layer start identical and learn alike: a slip, not a recipe
        raise ValueError(f"Initialising layers name a teacher layer more than once ({init}); give {layers} different "
                         f"layers between 0 and {teacher_layers - 1}.")
    if init != sorted(init):
        # each student layer reads what the one below it computed, as the teacher layer it is copied from read what
        # shallower ones computed: copies out of order start the student from a computation no layer was trained on
        raise ValueError(f"Initialising layers must go from shallower to deeper teacher layers, as the student's "
                         f"layers do: give {sorted(init)} rather than {init}.")


def student_config(teacher_config, model_type: str, layers: int, hidden_size: int | None = None,
                   vocab_size: int | None = None):
    """A config for the student: the teacher's dimensions, fewer layers, optionally narrower or a new vocabulary.
    ValueError for a width above the teacher's or not divisible by its heads."""
    d = dims(teacher_config)
    hidden = hidden_size or d["hidden"]
    if hidden > d["hidden"]:
        raise ValueError(f"The student width ({hidden:,}) cannot exceed the teacher's ({d['hidden']:,}).")
    ffn = d["ffn"] * hidden // d["hidden"]
    vocab = vocab_size or d["vocab"]
    if hidden % d["heads"]:
        raise ValueError(f"The student width {hidden:,} must be divisible by the number of heads ({d['heads']}).")
    common = dict(vocab_size=vocab, max_position_embeddings=d["max_positions"],
                  pad_token_id=teacher_config.pad_token_id)
    if model_type == "distilbert":
        return DistilBertConfig(dim=hidden, n_layers=layers, n_heads=d["heads"], hidden_dim=ffn, activation=d["act"],
                                sinusoidal_pos_embds=False, **common)
    return BertConfig(hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=d["heads"],
                      intermediate_size=ffn, hidden_act=d["act"], type_vocab_size=2, **common)


def make_student(teacher: PreTrainedModel, spec: StudentSpec = StudentSpec()) -> PreTrainedModel:
    """A student of spec.num_layers layers whose layers, embeddings and MLM head are copied from the teacher."""
    teacher_layers = num_layers(teacher.config)
    layers = spec.num_layers or max(1, teacher_layers // 2)
    if layers < 1:
        raise ValueError("The student needs at least one layer.")
    if layers > teacher_layers:
        raise ValueError(f"The student cannot have more layers ({layers:,}) than the teacher ({teacher_layers:,}).")
    init = list(spec.init_layers) if spec.init_layers else default_init_layers(teacher_layers, layers)
    check_init_layers(init, layers, teacher_layers)
    model_type = teacher.config.model_type if spec.model_type == "same" else spec.model_type
    check_model_type(model_type)
    if spec.hidden_size and spec.hidden_size != dims(teacher.config)["hidden"]:
        raise ValueError("A narrower student also needs its own vocabulary: use "
                         "core.reduced_student.make_reduced_student.")
    config = student_config(teacher.config, model_type, layers)
    config._attn_implementation = teacher.config._attn_implementation
    student = AutoModelForMaskedLM.from_config(config, attn_implementation=config._attn_implementation)
    source = canonical_state(teacher)
    canon = {k: v for k, v in source.items() if not k.startswith("layers.")}
    for new_index, teacher_index in enumerate(init):
        for key, value in source.items():
            if key.startswith(f"layers.{teacher_index}."):
                canon[key.replace(f"layers.{teacher_index}.", f"layers.{new_index}.", 1)] = value
    with torch.no_grad():
        load_canonical(student, canon)
    student.config.init_layers = init  # kept in config.json, so a student tells how it was made
    return student.to(next(teacher.parameters()).device)


def teacher_depth(name: str) -> int | None:
    """The number of layers of a named model from its config alone (no weights); None when it cannot be read."""
    from transformers import AutoConfig

    from core.models import zoo
    try:
        source, location = zoo.resolve(name)
        if source == "arch":
            return num_layers(zoo.arch_config(location))
        if source == "hub" and not zoo.is_cached(location):
            return None
        if source == "run":
            location = f"{location}/student"
        return num_layers(AutoConfig.from_pretrained(location))
    except (ValueError, OSError):
        return None
