"""Initialising a narrower student with its own vocabulary from a teacher (the recipe of DistilRuBERT-tiny-v1).

Layers: each student layer is the average of a group of consecutive teacher layers, sliced to the new width
(per attention head, so each student head starts from the first dimensions of one teacher head).
Embeddings: each student token starts from the mean of the teacher embeddings of the teacher tokens whose greedy
split contains it; a student token no teacher token reaches starts from the mean of its own teacher pieces.
"""
from __future__ import annotations

import torch
from transformers import AutoModelForMaskedLM, PreTrainedModel

from core.models.student import canonical_state, dims, layer_groups, load_canonical, num_layers, student_config
from core.models.vocab import VocabMapping

HEAD_ROWS = {"q", "k", "v"}  # output rows grouped by attention head
HEAD_COLUMNS = {"attn_out"}  # input columns grouped by attention head
FFN_ROWS, FFN_COLUMNS = {"ffn_in"}, {"ffn_out"}


def _head_index(width: int, heads: int, new_width: int) -> torch.Tensor:
    """Indices of the first new_width/heads dimensions of every head in a width-wide vector."""
    old_dim, new_dim = width // heads, new_width // heads
    return torch.cat([torch.arange(h * old_dim, h * old_dim + new_dim) for h in range(heads)])


def _slice_layer(name: str, tensor: torch.Tensor, d: dict, hidden: int, ffn: int) -> torch.Tensor:
    heads_index = _head_index(d["hidden"], d["heads"], hidden)
    part, kind = name.split(".")[-2], name.split(".")[-1]
    if part in HEAD_ROWS:
        return tensor[heads_index][:, :hidden] if kind == "weight" else tensor[heads_index]
    if part in HEAD_COLUMNS:
        return tensor[:hidden][:, heads_index] if kind == "weight" else tensor[:hidden]
    if part in FFN_ROWS:
        return tensor[:ffn, :hidden] if kind == "weight" else tensor[:ffn]
    if part in FFN_COLUMNS:
        return tensor[:hidden, :ffn] if kind == "weight" else tensor[:hidden]
    return tensor[:hidden]  # layer norms


def student_token_means(teacher_values: torch.Tensor, mapping: VocabMapping, student_tokenizer,
                        teacher_tokenizer) -> torch.Tensor:
    """(student vocab, ...) the mean of the teacher rows whose teacher token splits into each student token."""
    size = len(student_tokenizer)
    pairs = torch.tensor([(t, s) for t, pieces in enumerate(mapping.pieces) for s in pieces], dtype=torch.long)
    sums = torch.zeros((size,) + teacher_values.shape[1:], dtype=teacher_values.dtype)
    sums.index_add_(0, pairs[:, 1], teacher_values[pairs[:, 0]])
    counts = torch.zeros(size).index_add_(0, pairs[:, 1], torch.ones(len(pairs)))
    for token, student_id in student_tokenizer.get_vocab().items():
        if counts[student_id] == 0:  # reached by no teacher token: use its own teacher pieces
            ids = teacher_tokenizer.convert_tokens_to_ids(teacher_tokenizer.tokenize(token.removeprefix("##"))) or \
                [teacher_tokenizer.unk_token_id]
            sums[student_id] = teacher_values[ids].mean(dim=0)
            counts[student_id] = 1
    return sums / counts.view((-1,) + (1,) * (teacher_values.ndim - 1))


def make_reduced_student(teacher: PreTrainedModel, teacher_tokenizer, student_tokenizer, mapping: VocabMapping,
                         layers: int, hidden_size: int | None = None, model_type: str = "same") -> PreTrainedModel:
    d = dims(teacher.config)
    hidden = hidden_size or d["hidden"]
    if hidden > d["hidden"]:
        raise ValueError(f"The student width ({hidden:,}) cannot exceed the teacher's ({d['hidden']:,}).")
    teacher_layers = num_layers(teacher.config)
    if not 1 <= layers <= teacher_layers:
        raise ValueError(f"The student needs between 1 and {teacher_layers:,} layers; got {layers:,}.")
    model_type = teacher.config.model_type if model_type == "same" else model_type
    config = student_config(teacher.config, model_type, layers, hidden_size=hidden, vocab_size=len(student_tokenizer))
    ffn = config.hidden_dim if model_type == "distilbert" else config.intermediate_size
    source = {k: v.detach().float().cpu() for k, v in canonical_state(teacher).items()}
    # one pass over the vocabularies for both per-token tensors: the embedding rows with the head bias beside them
    token_rows = torch.cat([source["word_emb.weight"], source["head_bias"][:, None]], dim=1)
    token_means = student_token_means(token_rows, mapping, student_tokenizer, teacher_tokenizer)
    canon = {
        "word_emb.weight": token_means[:, :-1][:, :hidden],
        "pos_emb.weight": source["pos_emb.weight"][:, :hidden],
        "head_bias": token_means[:, -1],
        "head_dense.weight": source["head_dense.weight"][:hidden, :hidden],
    }
    for name in ("emb_norm.weight", "emb_norm.bias", "head_dense.bias", "head_norm.weight", "head_norm.bias"):
        canon[name] = source[name][:hidden]
    for student_layer, group in enumerate(layer_groups(teacher_layers, layers)):
        for key in [k for k in source if k.startswith("layers.0.")]:
            part = key[len("layers.0."):]
            mean = torch.stack([source[f"layers.{t - 1}.{part}"] for t in group]).mean(dim=0)
            canon[f"layers.{student_layer}.{part}"] = _slice_layer(part, mean, d, hidden, ffn)
    student = AutoModelForMaskedLM.from_config(config, attn_implementation=teacher.config._attn_implementation)
    with torch.no_grad():
        load_canonical(student, canon)
    student.config.teacher_layer_groups = layer_groups(teacher_layers, layers)
    return student
