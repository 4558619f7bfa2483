"""A masked LM at its [MASK] positions: texts encoded for a model, its MLM head run only there, one mask's guesses.

The encoder sees every token; the MLM head runs only at the masked positions (for BERT and DistilBERT; other masked
LMs run whole), which gives the same logits there as the whole model.
"""
from __future__ import annotations

from collections.abc import Sequence
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
        raise ValueError(f"The text is {int(lengths.max())} tokens long for '{loaded.name}'; "
                         f"the model reads at most {limit}.")
    return {"input_ids": batch["input_ids"], "attention_mask": batch["attention_mask"]}
