"""Time the Predictions tab's fill-mask of one sentence for two models on this machine's CPU.

python -m scripts.bench_predict [--runs 30] [--threads 2,1] [--sentence "... [MASK] ..."]

Pairs: the bundled teacher and student (a random stand-in of the same size when assets/models/ does not hold them
yet), and random-weight models of DeepPavlov's real architectures (teacher against the base student, and against
tiny-v1, whose vocabulary differs). Each figure is the median of --runs calls after a warm-up, at torch's default
thread count and at one thread: on a machine other processes keep busy, torch's worker threads wait on each other
and one thread can be several times faster. The load average is printed so a reader can judge the figures.
Prints a table on stdout, and a line per stage on stderr as it goes; checks nothing.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

import torch

from core.compare import predict
from core.formatting import count, shown
from core.models import zoo
from core.models.student import StudentSpec, make_student
from core.models.tokenizer import train_wordpiece
from core.paths import ASSETS
from scripts.progress import stage

SENTENCE = "Я сегодня приготовила овощной [MASK] с фрикадельками, будешь тарелку или сначала чай попьём?"
ARCH_PAIRS = [("arch:rubert-base-cased-conversational", "arch:distilrubert-base-cased-conversational"),
              ("arch:rubert-base-cased-conversational", "arch:distilrubert-tiny-cased-conversational-v1")]


def bundled_pair() -> tuple[str, list[zoo.LoadedModel]]:
    if all(zoo.is_available(name) for name in zoo.BUNDLED_PAIR):
        stage(f"loading {' and '.join(zoo.BUNDLED_PAIR)} ...")
        return "bundled pair", [zoo.load(name) for name in zoo.BUNDLED_PAIR]
    stage("The bundled pair is not in assets/models yet; timing a random stand-in of its size instead "
          "(4-layer 256-wide BERT, 2-layer DistilBERT student, 6000-word vocabulary); training its tokenizer ...")
    from transformers import BertConfig, BertForMaskedLM
    lines = (ASSETS / "corpus" / "train.txt").read_text(encoding="utf-8").splitlines()
    tokenizer = train_wordpiece(lines, vocab_size=6000)
    torch.manual_seed(0)
    config = BertConfig(vocab_size=len(tokenizer), hidden_size=256, num_hidden_layers=4, num_attention_heads=4,
                        intermediate_size=1024, max_position_embeddings=128, pad_token_id=tokenizer.pad_token_id)
    teacher = BertForMaskedLM(config).eval()
    student = make_student(teacher, StudentSpec(num_layers=2, model_type="distilbert")).eval()
    return "bundled-size stand-in", [zoo.LoadedModel("stand-in-teacher", teacher, tokenizer, "arch"),
                                     zoo.LoadedModel("stand-in-student", student, tokenizer, "arch")]


def median_ms(fn, runs: int, warmup: int = 3, clock=time.perf_counter) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(runs):
        start = clock()
        fn()
        times.append(clock() - start)
    return statistics.median(times) * 1000


@torch.no_grad()
def whole_model_fill_mask(loaded: zoo.LoadedModel, text: str, top_k: int = 5):
    """The plain way, for reference: the head over every position, then the masked rows."""
    batch = loaded.tokenizer(text, return_tensors="pt", return_token_type_ids=False)
    logits = loaded.model(**batch).logits  # (1, seq, vocab)
    return logits[batch["input_ids"] == loaded.tokenizer.mask_token_id].softmax(-1).topk(top_k)


def measure(label: str, models: list[zoo.LoadedModel], sentence: str, runs: int, threads: int) -> dict:
    torch.set_num_threads(threads)
    stage(f"timing {label} at {threads} thread(s): 4 figures of {count(runs, 'run')} each ...")
    tokens = max(len(m.tokenizer(sentence)["input_ids"]) for m in models)
    return {
        "pair": label,
        "tokens": tokens,
        "threads": threads,
        "fill-mask x2": median_ms(lambda: [predict.fill_mask(m, sentence) for m in models], runs),
        "(CPU time)": median_ms(lambda: [predict.fill_mask(m, sentence) for m in models], runs,
                                clock=time.process_time),
        "with agreement": median_ms(lambda: predict.compare(models, sentence), runs),
        "whole-model head x2": median_ms(lambda: [whole_model_fill_mask(m, sentence) for m in models], runs),
    }


def thread_counts(text: str | None) -> list[int]:
    if text is None:
        return sorted({torch.get_num_threads(), 1}, reverse=True)
    try:
        counts = [int(t) for t in text.split(",")]
    except ValueError:
        counts = []
    if not counts or min(counts) < 1:
        raise ValueError(f"--threads takes thread counts separated by commas, such as 2,1; got '{text}'.")
    return counts


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--runs", type=int, default=30)
    p.add_argument("--threads", help="thread counts to time, separated by commas (default: torch's default and 1)")
    p.add_argument("--sentence", default=SENTENCE)
    args = p.parse_args(argv)
    try:
        predict.check_text(args.sentence)
        threads = thread_counts(args.threads)
        if args.runs < 1:
            raise ValueError(f"--runs must be at least 1, not {shown(args.runs)}.")
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"torch {torch.__version__}, default {torch.get_num_threads()} threads, {os.cpu_count()} CPUs; "
          f"median of {count(args.runs, 'run')}, in ms; load average {_load()}", flush=True)
    rows = []
    label, models = bundled_pair()
    rows += [measure(label, models, args.sentence, args.runs, t) for t in threads]
    for first, second in ARCH_PAIRS:
        stage(f"building {first} and {second} with random weights ...")
        models = [zoo.load(first), zoo.load(second)]
        rows += [measure(f"{first[5:]} + {second[5:]}", models, args.sentence, args.runs, t) for t in threads]
        del models
    columns = list(rows[0])
    widths = [max(len(c), *(len(_text(r[c])) for r in rows)) for c in columns]
    print("  ".join(c.ljust(w) for c, w in zip(columns, widths)))
    for row in rows:
        print("  ".join(_text(row[c]).ljust(w) for c, w in zip(columns, widths)))
    print("fill-mask x2: predict.fill_mask for both models (tokenise, encoder, head at the masks, top-5);\n"
          "(CPU time): the same, counted in this process's CPU time: at one thread, what it takes on an idle core;\n"
          "with agreement: predict.compare (the same plus top-1, overlap and KL on the shared vocabulary);\n"
          "whole-model head x2: the full model's logits at every position, for reference.")
    print(f"load average at the end: {_load()}")
    return 0


def _load() -> str:
    return " ".join(f"{x:.1f}" for x in os.getloadavg())


def _text(value) -> str:
    return f"{value:.1f}" if isinstance(value, float) else str(value)


if __name__ == "__main__":
    sys.exit(main())
