"""The masked-LM head's matrix product at a vocabulary size the GPU's fast kernels accept.

RuBERT's vocabulary has 119,547 words, an odd number: the logits (tokens x 119,547) then have rows whose byte length
is not a multiple of 16, and cuBLAS cannot use Hopper's TMA-based kernels for the product with the decoder. On an
H200 it falls back to an old sm75 kernel that ran the four vocabulary products of a distillation step (teacher
forward, student forward, and the student's two backward products) at about 95 TFLOP/s instead of about 650: more
than half of the step. Padding the decoder to a multiple of 64 rows for the product and slicing the logits back is
the fix the field uses for the same reason (Megatron-LM's make-vocab-size-divisible-by, nanoGPT's 50,304); here the
weights and the logits the rest of the code sees are unchanged, only the product is padded.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from transformers import PreTrainedModel

PAD_TO = 64


class PaddedVocabLinear(torch.nn.Linear):
    """nn.Linear whose output features are padded with zero rows to a multiple of PAD_TO for the product, then
    sliced back: the same logits (bs, seq, vocab), as a view with a padded row stride."""

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:  # (..., in) -> (..., out)
        extra = -self.out_features % PAD_TO
        if extra == 0:
            return super().forward(hidden)
        weight = F.pad(self.weight, (0, 0, 0, extra))  # (out + extra, in)
        bias = F.pad(self.bias, (0, extra)) if self.bias is not None else None
        return F.linear(hidden, weight, bias)[..., :self.out_features]


def pad_vocab_product(model: PreTrainedModel) -> PreTrainedModel:
    """Make `model`'s output embeddings (the MLM decoder) a PaddedVocabLinear, in place, and return the model.

    Weights, their tying to the input embeddings, state_dict keys and saved files stay as they were; a model whose
    decoder is not a plain nn.Linear, or whose vocabulary is already a multiple of PAD_TO, is left alone. Worth it on
    a GPU; on a CPU the padded copy of the decoder costs more than it saves."""
    decoder = model.get_output_embeddings()
    if type(decoder) is torch.nn.Linear and decoder.out_features % PAD_TO:
        decoder.__class__ = PaddedVocabLinear
    return model
