"""A masked LM at its [MASK] positions: texts encoded for a model, its MLM head run only there, one mask's guesses.

The encoder sees every token; the MLM head runs only at the masked positions (for BERT and DistilBERT; other masked
LMs run whole), which gives the same logits there as the whole model. In training, `logits_only_at` does the same
inside the model's own forward, so the step still runs through whatever wraps the model (DDP, FSDP).
"""
from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import torch
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from core.models.zoo import LoadedModel

MASK = "[MASK]"  # what people type; each tokenizer's own mask token replaces it


@dataclass
class MaskPrediction:
    """One model's guesses for one [MASK]."""
    tokens: list[str]  # top-k vocabulary strings, best first, '##' kept
    probs: list[float]
    ids: list[int]
    log_probs: torch.Tensor | None = None  # (vocab,) the whole distribution, kept while KL still needs it

    @property
    def words(self) -> list[str]:
        return [display_word(t) for t in self.tokens]


def display_word(token: str) -> str:
    """A vocabulary entry as people read it: a continuation piece "##ка" shows as "…ка"."""
    return "…" + token[2:] if token.startswith("##") and len(token) > 2 else token


def apply_mlm_head(model: PreTrainedModel, hidden: torch.Tensor) -> torch.Tensor:
    """The model's MLM head on some hidden states: (n, hidden) -> (n, vocab). BERT and DistilBERT only."""
    model_type = model.config.model_type
    if model_type == "bert":
        return model.cls(hidden)  # transform (dense, activation, LayerNorm) then the decoder tied to the embeddings
    if model_type == "distilbert":
        hidden = model.activation(model.vocab_transform(hidden))
        return model.vocab_projector(model.vocab_layer_norm(hidden))
    raise ValueError(f"The MLM head of a '{model_type}' model is not known here; use a BERT or DistilBERT model.")


@torch.no_grad()
def masked_lm_logits(model: PreTrainedModel, input_ids: torch.Tensor, attention_mask: torch.Tensor | None,
                     select: torch.Tensor) -> torch.Tensor:
    """Logits at the selected positions: (n_selected, vocab), rows in (batch, position) order.

    The encoder sees every token; the head (for the teacher's vocabulary, a 768 x 119,547 projection) runs only
    where `select` (bs, seq_len, bool) is true. Other masked LMs fall back to the whole model.
    """
    if model.config.model_type not in ("bert", "distilbert"):
        return model(input_ids=input_ids, attention_mask=attention_mask).logits[select]  # (n, vocab)
    hidden = model.base_model(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state  # (bs, seq, dim)
    return apply_mlm_head(model, hidden[select])  # (n, vocab)


@contextmanager
def logits_only_at(model: PreTrainedModel, select: torch.Tensor) -> Iterator[None]:
    """Within the block, `model`'s forward computes its MLM logits only where `select` (bs, seq, bool) is true.

    The output's .logits are then (n_selected, vocab), rows in (batch, position) order, equal to the whole model's
    logits at those positions (the output layer works position by position); hidden states and attentions are the
    whole model's, and gradients flow as usual. A forward pre-hook on the output embeddings (the dim x vocab decoder)
    hands it only the selected rows of its input, so the forward still runs through the model itself, or through the
    DDP / FSDP module that wraps it. In a distillation step whose losses read only the 15% masked positions, the
    vocabulary products of both models are most of the work: on the bundled pair (24,000 entries, batch 32, 2 CPU
    threads) a training step took 0.42 s instead of 1.04 s (scripts.bench_distill_step --kl-masked-only
    --all-logits). Raises ValueError when the model has no output embeddings, and, when the forward runs,
    when the decoder's input is not (bs, seq, dim) of `select`'s shape.
    """
    decoder = model.get_output_embeddings()
    if decoder is None:
        raise ValueError(f"A '{model.config.model_type}' model has no output embeddings to compute logits with.")

    def gather_selected(module, args):
        hidden = args[0]  # (bs, seq, dim)
        if tuple(hidden.shape[:-1]) != tuple(select.shape):
            raise ValueError(f"The MLM decoder read a {tuple(hidden.shape)} input; positions were selected for "
                             f"{tuple(select.shape)}.")
        return (hidden[select], *args[1:])  # (n_selected, dim)

    handle = decoder.register_forward_pre_hook(gather_selected)
    try:
        yield
    finally:
        handle.remove()


def max_tokens(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase) -> int:
    limit = model.config.max_position_embeddings
    if 0 < getattr(tokenizer, "model_max_length", 0) < limit:
        limit = tokenizer.model_max_length
    return limit


def encode(loaded: LoadedModel, texts: Sequence[str]) -> dict[str, torch.Tensor]:
    """Tokenised, padded texts; [MASK] becomes the tokenizer's own mask token. Refuses a text the model cannot read."""
    tokenizer = loaded.tokenizer
    if tokenizer.mask_token is None:
        raise ValueError(f"The tokenizer of '{loaded.name}' has no mask token, so it cannot fill in words.")
    texts = [t.replace(MASK, tokenizer.mask_token) for t in texts]
    batch = tokenizer(texts, padding=True, return_attention_mask=True, return_token_type_ids=False,
                      return_tensors="pt", verbose=False)
    lengths = batch["attention_mask"].sum(dim=1)  # (bs,)
    limit = max_tokens(loaded.model, tokenizer)
    if int(lengths.max()) > limit:
        raise ValueError(f"The text is {int(lengths.max()):,} tokens long for '{loaded.name}'; "
                         f"the model reads at most {limit:,}.")
    return {"input_ids": batch["input_ids"], "attention_mask": batch["attention_mask"]}
