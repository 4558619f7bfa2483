"""The model card's settings and the caps on one benchmark request: plain numbers, so the command line can show them
in --help without loading torch (core.bench.plan uses them to validate a request)."""
from __future__ import annotations

CARD_MODELS = ("arch:rubert-base-cased-conversational", "arch:distilrubert-base-cased-conversational")
CARD_BATCH = {"latency": 1, "throughput": 16}  # the card: latency at batch 1, throughput at batch 16
CARD_BATCH_SIZES = tuple(CARD_BATCH.values())
CARD_SEQ_LEN = 512
# Caps on one request, whoever sends it: past them a measurement says nothing more and only holds the machine.
MAX_RUNS = 50  # timed runs per measurement
MAX_WARMUP = 20  # warm-up runs per measurement
MAX_BATCH_SIZE = 256
MAX_SEQ_LEN = 4096  # tokens; each model's own limit (512 for the card's) is checked as well
MAX_MODELS = 8
MAX_NAME_CHARS = 200  # characters of a model name
