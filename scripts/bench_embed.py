"""How fast the Embeddings tab is: 500 probe sentences embedded by a teacher and a student, mapped by PCA and UMAP.

    HF_HUB_OFFLINE=1 python -m scripts.bench_embed [--runs 5] [--sentences 500] [--no-real-size]

Figures are medians of several runs with the caches emptied before each (model loading not included; the app keeps
loaded models). The bundled pair is used when assets/models holds it; otherwise a stand-in of the same sizes:
the tiny DeepPavlov architecture (3 layers, 264 wide) and a random 4-layer, 256-wide BERT. The real-size pair is
the DeepPavlov teacher and base student architectures with random weights. Architecture-only models come with a
placeholder tokenizer that turns most words into one [UNK]; a WordPiece tokenizer trained on the bundled corpus is
put in its place, so sentences have realistic token counts. Figures go to stdout, a line per stage to stderr.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

import numpy as np
import torch
from transformers import BertConfig, BertForMaskedLM

from core.compare import embed
from core.compare.sentences import SentenceSet, probe_set
from core.formatting import count, shown
from core.models import zoo
from core.models.tokenizer import train_wordpiece
from core.paths import ASSETS
from scripts.progress import stage

STAND_IN_TEACHER = "random BERT, 256 wide"
STAND_IN_STUDENT = "arch:distilrubert-tiny-cased-conversational-v1"
REAL_SIZE = ("arch:rubert-base-cased-conversational", "arch:distilrubert-base-cased-conversational")


def corpus_tokenizer(vocab_size: int):
    stage(f"training a {vocab_size:,}-word WordPiece tokenizer on the bundled corpus ...")
    lines = (ASSETS / "corpus" / "train.txt").read_text(encoding="utf-8").splitlines()
    return train_wordpiece(lines, vocab_size=vocab_size)


def with_corpus_tokenizer(loaded: zoo.LoadedModel, tokenizer) -> zoo.LoadedModel:
    if len(tokenizer) > loaded.model.config.vocab_size:
        raise SystemExit(f"error: the corpus tokenizer ({len(tokenizer):,} words) is larger than {loaded.name}'s "
                         f"vocabulary ({loaded.model.config.vocab_size:,} words).")
    return zoo.LoadedModel(loaded.name, loaded.model, tokenizer, loaded.source)


def small_pair(tokenizer) -> tuple[zoo.LoadedModel, zoo.LoadedModel, str]:
    if all(zoo.is_available(n) for n in zoo.BUNDLED_PAIR):
        stage(f"loading {' and '.join(zoo.BUNDLED_PAIR)} ...")
        return zoo.load(zoo.BUNDLED_PAIR[0]), zoo.load(zoo.BUNDLED_PAIR[1]), "bundled pair"
    stage("the bundled pair is not in assets/models; building a stand-in of its sizes ...")
    torch.manual_seed(0)
    config = BertConfig(vocab_size=len(tokenizer), hidden_size=256, num_hidden_layers=4, num_attention_heads=4,
                        intermediate_size=1024, max_position_embeddings=512)
    teacher = zoo.LoadedModel(STAND_IN_TEACHER, BertForMaskedLM(config).eval(), tokenizer, "arch")
    student = with_corpus_tokenizer(zoo.load(STAND_IN_STUDENT), tokenizer)
    return teacher, student, "stand-in (assets/models/teacher is absent: the bundled pair is not there yet)"


def median_time(action, runs: int, clear_embeddings: bool = True, name: str = "") -> tuple[float, float]:
    """Median wall-clock and CPU seconds of `action` with the caches emptied before each run.

    CPU seconds (all threads of this process) say how much work was done even when other processes share the CPUs;
    with one thread on an idle machine the two are the same.
    """
    if name:
        stage(f"timing {name}: {count(runs, 'run')} ...")
    walls, cpus = [], []
    for _ in range(runs):
        if clear_embeddings:
            embed.EMBEDDINGS.clear()
        embed.PROJECTIONS.clear()
        wall, cpu = time.perf_counter(), time.process_time()
        action()
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
    return statistics.median(walls), statistics.median(cpus)


def measure_pair(teacher, student, sentences, runs: int, umap_runs: int) -> dict:
    def embed_both():
        return [embed.embed_space(m, sentences) for m in (teacher, student)]

    def embed_and_pca():
        for space in embed_both():
            embed.project(space, "pca", 2)

    def draw():  # what the Draw button does: embed, PCA, turn the second map onto the first, CKA and kNN overlap
        a, b = embed_both()
        embed.align(embed.project(a, "pca", 2), embed.project(b, "pca", 2))
        embed.compare(a, b)

    figures = {name: median_time(action, runs, name=name) for name, action in (
        ("embed both", embed_both), ("embed both + PCA 2D", embed_and_pca), ("Draw (embed, PCA, CKA, kNN@10)", draw))}
    spaces = embed_both()  # cached from here on: UMAP and the layer heatmaps are timed alone
    for dims in (2, 3):
        name = f"UMAP {dims}D of both (embeddings cached)"
        figures[name] = median_time(lambda dims=dims: [embed.project(space, "umap", dims) for space in spaces],
                                    umap_runs, clear_embeddings=False, name=name)
    name = "layer similarity (embeddings cached)"
    figures[name] = median_time(lambda: embed.layer_similarity(teacher, student, sentences), 1,
                                clear_embeddings=False, name=name)
    return figures


def mean_tokens(loaded: zoo.LoadedModel, sentences: SentenceSet) -> float:
    return float(np.mean([len(ids) for ids in loaded.tokenizer(list(sentences.sentences))["input_ids"]]))


def report(title: str, teacher, student, sentences, figures: dict) -> None:
    print(f"\n{title}: {teacher.name} ({embed.layer_count(teacher)} layers) + {student.name} "
          f"({embed.layer_count(student)} layers), {len(sentences):,} sentences, "
          f"{mean_tokens(teacher, sentences):.1f} tokens a sentence on average")
    print(f"  {'':<42} {'wall s':>7} {'CPU s':>7}")
    for name, (wall, cpu) in figures.items():
        print(f"  {name:<42} {wall:7.2f} {cpu:7.2f}")
    sys.stdout.flush()  # a piped stdout would otherwise hold the figures until the end


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="runs per figure (median printed)")
    parser.add_argument("--umap-runs", type=int, default=3)
    parser.add_argument("--sentences", type=int, default=500)
    parser.add_argument("--no-real-size", action="store_true", help="skip the real-size architectures")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's own choice)")
    args = parser.parse_args(argv)
    for flag in ("runs", "umap_runs", "sentences", "threads"):
        value = getattr(args, flag)
        if value is not None and value < 1:
            print(f"error: --{flag.replace('_', '-')} must be at least 1, not {shown(value)}.", file=sys.stderr)
            return 2
    if args.threads:
        torch.set_num_threads(args.threads)

    probes = probe_set()
    pick = np.unique(np.linspace(0, len(probes) - 1, min(args.sentences, len(probes))).round().astype(int))
    sentences = SentenceSet(tuple(probes.sentences[i] for i in pick), tuple(probes.labels[i] for i in pick),
                            "probe set sample")
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {os.cpu_count()} CPUs, "
          f"load average {os.getloadavg()[0]:.1f} (other processes slow every figure down)", flush=True)

    stage("warming up UMAP (import and numba compile) ...")
    started = time.perf_counter()
    embed.warm_up_umap()
    print(f"UMAP warm-up (import and numba compile, done in the background at app start): "
          f"{time.perf_counter() - started:.1f} s")

    tokenizer = corpus_tokenizer(vocab_size=8000)
    teacher, student, kind = small_pair(tokenizer)
    report(f"Small pair, {kind}", teacher, student, sentences,
           measure_pair(teacher, student, sentences, args.runs, args.umap_runs))
    print("  targets: embed both + PCA under 3 s; UMAP after warm-up under 5 s")

    if not args.no_real_size:
        big_tokenizer = corpus_tokenizer(vocab_size=30000)
        stage(f"building {' and '.join(REAL_SIZE)} with random weights ...")
        started = time.perf_counter()
        teacher, student = (with_corpus_tokenizer(zoo.load(n), big_tokenizer) for n in REAL_SIZE)
        print(f"\nreal-size models built in {time.perf_counter() - started:.1f} s")
        report("Real-size architectures (random weights)", teacher, student, sentences,
               measure_pair(teacher, student, sentences, max(1, min(args.runs, 3)), 1))
    print(f"\nload average at the end {os.getloadavg()[0]:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
