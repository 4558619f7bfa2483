"""Tiny random models and lines of the bundled corpus, built offline."""
from __future__ import annotations

from pathlib import Path

import torch
from transformers import BertConfig, BertForMaskedLM

from core.paths import ASSETS

REPO = Path(__file__).resolve().parents[2]


def corpus_lines(n: int = 3000) -> list[str]:
    """The first n lines of the bundled training corpus."""
    return (ASSETS / "corpus" / "train.txt").read_text(encoding="utf-8").splitlines()[:n]


def tiny_bert(vocab_size: int, layers: int = 4, hidden: int = 32, seed: int = 0) -> BertForMaskedLM:
    """A random BERT masked LM, `layers` x `hidden` wide with 4 heads, in eval mode; the same weights for a seed."""
    torch.manual_seed(seed)
    config = BertConfig(vocab_size=vocab_size, hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=4,
                        intermediate_size=hidden * 2, max_position_embeddings=128)
    return BertForMaskedLM(config).eval()
