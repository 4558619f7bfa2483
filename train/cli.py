"""The command lines of train.distill, train.pretrain_teacher, train.publish, train.export and
scripts.export_student: their flags, read before torch and transformers are imported (core.formatting.run_command),
so --help and a mistyped flag answer at once. This module imports argparse and the lab's light modules only; each
command's checks that need the libraries come after, in its run().

train.distill: a config file (YAML or JSON) first, then flags that override it. Its help states DistillConfig's
defaults, which live beside torch (LossWeights); tests/test_cli_startup.py holds the two to the same values.
"""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

from core.formatting import OneLineParser, parse_int_list, run_command
from core.models.alignments import ALIGNMENTS, REDUCE_OPS
from core.paths import ASSETS
from train.choices import DEVICES, MIXED_PRECISIONS, STUDENT_TYPES

if TYPE_CHECKING:
    from train.config import DistillConfig

DEFAULT_LICENSE = "apache-2.0"  # of a published model card
EXPORT_FORMATS = ("onnx", "openvino")


# -- train.distill

def int_list(text: str) -> list[int]:
    try:
        return parse_int_list(text, "Layer numbers", example="0,2,4")
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def distill_parser() -> argparse.ArgumentParser:
    p = OneLineParser(prog="python -m train.distill", description=(
        "Distil a smaller masked language model from a teacher with KL on softened logits, the MLM loss and a cosine "
        "loss between student hidden states and means of consecutive teacher hidden states. Writes a run directory "
        "(config.json, metrics.jsonl, checkpoints/, final/). Works under `accelerate launch` on many GPUs."),
        argument_default=None)
    p.add_argument("--config", help="YAML or JSON file of options (flags given here override it)")
    g = p.add_argument_group("models")
    g.add_argument("--teacher", help="known name, Hub id or local folder (default bundled-teacher)")
    g.add_argument("--student-layers", type=int, help="student depth (default: half the teacher's)")
    g.add_argument("--init-layers", type=int_list, help="teacher layers (0-based) that initialise the student "
                   "(default: evenly spaced, keeping the first and the last, as DistilBERT: 12 -> 6 layers gives "
                   "0,2,4,7,9,11)")
    g.add_argument("--student-type", choices=STUDENT_TYPES, help="architecture of the student")
    g.add_argument("--student-vocab-size", type=int, help="train a smaller WordPiece vocabulary for the student")
    g.add_argument("--student-hidden", type=int, help="narrower student width (needs --student-vocab-size)")
    g.add_argument("--align", choices=ALIGNMENTS, help="how logits meet across vocabularies (default reduce): match "
                   "and reduce as the paper's code, match-pieces and reduce-shared the lab's variants")
    g.add_argument("--reduce-op", choices=REDUCE_OPS, help="reduce, reduce-shared: sum (default) or mean of the "
                   "student's logits over a teacher token's pieces")
    g = p.add_argument_group("data")
    g.add_argument("--corpus", help="'bundled' (the lab's corpus); a UTF-8 .txt file, one sample a line; a .jsonl, "
                   ".csv or .parquet file (see --text-column); a folder or glob ('data/*.parquet') of such files; or a "
                   "Hub dataset id (see --corpus-config, --corpus-split)")
    g.add_argument("--valid-corpus", help="held-out samples for evaluation, any kind --corpus takes (a Hub dataset: "
                   "its validation split) (default: the bundled split, or 5%% of the corpus, at most 500 samples; "
                   "with --streaming its first 500)")
    g.add_argument("--text-column", help="the column of samples in .jsonl, .csv, .parquet files and Hub datasets "
                   "(default text)")
    g.add_argument("--corpus-config", help="configuration (subset) of a Hub dataset")
    g.add_argument("--corpus-split", help="split of a Hub dataset (default train)")
    g.add_argument("--streaming", action="store_true", help="read the corpus as training goes, for corpora larger "
                   "than the disk cache (default: tokenise it once into Arrow files, reused by the next run)")
    g.add_argument("--num-proc", type=int, help="processes that tokenise the corpus (default: every CPU for a "
                   "corpus over 100,000 samples)")
    g.add_argument("--max-length", type=int, help="tokens per sample, longer lines are cut (default 128)")
    g.add_argument("--mlm-probability", type=float, help="share of tokens masked (default 0.15)")
    g = p.add_argument_group("optimisation")
    g.add_argument("--max-steps", type=int, help="optimizer steps (default 300)")
    g.add_argument("--batch-size", type=int, help="samples per process per micro-batch (default 16)")
    g.add_argument("--grad-accum", type=int, help="micro-batches per optimizer step (default 1)")
    g.add_argument("--lr", type=float, help="peak learning rate of AdamW (default 0.0005)")
    g.add_argument("--warmup", type=float, help="share of steps of linear warm-up (default 0.05)")
    g.add_argument("--weight-decay", type=float, help="AdamW weight decay (default 0.01)")
    g.add_argument("--grad-clip", type=float, help="gradient norm clip (default 5.0)")
    g.add_argument("--compile", action="store_true",
                   help="torch.compile student and teacher (on a GPU: about a minute of compiling, then faster steps)")
    g.add_argument("--fsdp", action="store_true",
                   help="shard the student, its gradients and its optimizer state over the processes of `accelerate "
                   "launch` (PyTorch FSDP2; on GPUs or CPUs; implied by train/accelerate_fsdp.yaml on GPUs)")
    g.add_argument("--gradient-checkpointing", action="store_true",
                   help="recompute the student's activations in backward (less memory, about a third more time)")
    g = p.add_argument_group("losses")
    g.add_argument("--temperature", type=float, help="softmax temperature T of the KL term (default 2.0)")
    g.add_argument("--alpha-kl", type=float, help="weight of KL(teacher || student) (default 5.0)")
    g.add_argument("--alpha-mlm", type=float, help="weight of the MLM cross-entropy (default 2.0)")
    g.add_argument("--alpha-cos", type=float, help="weight of the hidden-state cosine loss (default 1.0)")
    g.add_argument("--alpha-att", type=float, help="weight of the attention-map MSE of distilrubert-small (default 0)")
    g.add_argument("--alpha-hidden-mse", type=float, help="reduced-vocabulary students: weight of the projected "
                                                          "hidden-state MSE (default 1.0)")
    g.add_argument("--kl-masked-only", action="store_true", help="KL at masked positions only (default: all tokens)")
    g = p.add_argument_group("run")
    g.add_argument("--seed", type=int, help="seed of data order, masks and initialisation (default 42)")
    g.add_argument("--log-every", type=int, help="steps between metrics records (default 10)")
    g.add_argument("--eval-every", type=int, help="steps between held-out evaluations (default 50)")
    g.add_argument("--eval-lines", type=int, help="held-out lines used by each evaluation (default 300)")
    g.add_argument("--save-every", type=int, help="steps between checkpoints (default 100)")
    g.add_argument("--keep-checkpoints", type=int, help="checkpoints kept on disk (default 2)")
    g.add_argument("--mixed-precision", choices=MIXED_PRECISIONS, help="default auto: bf16/fp16 on GPU")
    g.add_argument("--device", choices=DEVICES, help="auto uses the GPU when there is one")
    g.add_argument("--output-dir", help="run directory (default runs/<date-time-id>)")
    g.add_argument("--resume", nargs="?", const=True, metavar="RUN_DIR",
                   help="continue the run in RUN_DIR (or --output-dir) from its last checkpoint; with a larger "
                   "--max-steps the learning-rate schedule is laid over the new length (the rate goes back up to "
                   "where a run of that length would be, then decays to 0 at its end)")
    g.add_argument("--trace", action="store_true", help="record each process's batches and a weight checksum")
    g.add_argument("--report-to", metavar="TRACKERS", help="experiment trackers that also receive every metrics "
                   "record and the options: tensorboard, trackio, wandb, mlflow, several separated by commas, or "
                   "none (default); local ones write under RUN_DIR/tracking")
    return p


def parse_args(argv: list[str] | None) -> tuple[DistillConfig, bool]:
    """(DistillConfig, resume) of train.distill's command line, for callers in one process (train.config.from_flags).
    Raises ValueError for inconsistent input; argparse exits 2 on malformed flags."""
    from train.config import from_flags  # loads torch (LossWeights): only once the flags are read

    return from_flags(distill_parser().parse_args(argv))


# -- train.pretrain_teacher

class TeacherHelpFormatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    pass


TEACHER_DESCRIPTION = """Pretrain the lab's own tiny Russian teacher from scratch.

A cased WordPiece tokenizer is trained on the corpus, then a small BERT masked LM learns by MLM alone. The
weights with the best held-out masked-token accuracy are kept. Everything follows from --seed, so the bundled
teacher can be rebuilt bit for bit on the same machine and library versions.

With --init-embeddings navec, the token embeddings of whole-word entries (and so the tied MLM output) start from
navec's Russian news word vectors (natasha project; `pip install natasha`) instead of random rows; a larger
--vocab-size, with --min-frequency 1 on a small corpus, holds more whole words for them to reach.

With --contrastive-weight above 0, each step also pairs every line with a nearby line of the corpus and adds a
SimCSE-style InfoNCE loss on their mean-pooled last hidden states (train/neighbour_contrast.py): half the batch are
anchors, half their neighbours. Each evaluation records the topic purity of the probe sentences' neighbourhoods.
"""


def pretrain_teacher_parser() -> argparse.ArgumentParser:
    p = OneLineParser(prog="python -m train.pretrain_teacher", description=TEACHER_DESCRIPTION,
                      formatter_class=TeacherHelpFormatter)
    p.add_argument("--corpus", default=str(ASSETS / "corpus" / "train.txt"), help="training lines (UTF-8)")
    p.add_argument("--valid-corpus", default=str(ASSETS / "corpus" / "valid.txt"), help="held-out lines")
    p.add_argument("--vocab-size", type=int, default=6000, help="WordPiece entries, special tokens included")
    p.add_argument("--min-frequency", type=int, default=2,
                   help="fewest occurrences in the corpus for a WordPiece merge; 1 lets a large vocabulary hold "
                        "words seen once")
    p.add_argument("--init-embeddings", choices=["none", "navec"], default="none",
                   help="start whole-word token embeddings from navec's Russian news word vectors (pip install "
                        "natasha) instead of random rows")
    p.add_argument("--freeze-word-vectors", action="store_true",
                   help="keep the rows started from word vectors (and so their tied MLM output) fixed while the rest "
                        "trains (with --init-embeddings navec)")
    p.add_argument("--navec-file", default=None,
                   help="a navec .tar to read instead of the news vectors inside natasha (with --init-embeddings "
                        "navec)")
    p.add_argument("--tokenizer", help="a saved tokenizer folder to use instead of training one (the WordPiece "
                                       "trainer breaks frequency ties differently from one process to the next)")
    p.add_argument("--layers", type=int, default=4, help="transformer layers")
    p.add_argument("--hidden", type=int, default=256, help="hidden width")
    p.add_argument("--heads", type=int, default=4, help="attention heads")
    p.add_argument("--ffn", type=int, default=1024, help="feed-forward width")
    p.add_argument("--max-length", type=int, default=128, help="tokens per training line")
    p.add_argument("--max-positions", type=int, default=512, help="longest input the model accepts")
    p.add_argument("--steps", type=int, default=7000, help="optimizer steps")
    p.add_argument("--batch-size", type=int, default=64, help="lines per step")
    p.add_argument("--lr", type=float, default=1e-3, help="peak learning rate of AdamW")
    p.add_argument("--warmup", type=float, default=0.06, help="share of steps of linear warm-up")
    p.add_argument("--weight-decay", type=float, default=0.01, help="AdamW weight decay")
    p.add_argument("--dropout", type=float, default=0.1, help="dropout of hidden states and attention")
    p.add_argument("--contrastive-weight", type=float, default=0.0,
                   help="weight of the nearby-lines InfoNCE loss beside MLM's (0: MLM alone); half of each batch are "
                        "then anchor lines and half their neighbours")
    p.add_argument("--contrastive-window", type=int, default=8,
                   help="a neighbour is 1 to this many lines before or after its anchor in the corpus file")
    p.add_argument("--eval-every", type=int, default=500, help="steps between held-out evaluations")
    p.add_argument("--seed", type=int, default=0, help="seed of initialisation, data order and masks")
    p.add_argument("--save-dtype", choices=["float32", "float16"], default="float16",
                   help="float16 halves the size of the bundled files; the lab loads them back as float32")
    p.add_argument("--device", choices=["auto", "cpu"], default="auto",
                   help="auto: the GPU when there is one (bf16 autocast there), else the CPU")
    p.add_argument("--precision", choices=["auto", "fp32", "bf16"], default="auto",
                   help="auto: bf16 autocast on a GPU and on CPUs that multiply bf16 in hardware (AMX, AVX-512 BF16), "
                        "else fp32; weights and optimizer stay fp32")
    p.add_argument("--output-dir", required=True)
    p.add_argument("--resume", action="store_true",
                   help="continue from OUTPUT_DIR/checkpoint.pt (written at every evaluation) with the same options")
    return p


# -- train.publish, train.export, scripts.export_student

def publish_parser() -> argparse.ArgumentParser:
    p = OneLineParser(prog="python -m train.publish", description=(
        "Publish a run's student on the Hugging Face Hub (a run that has not finished: its newest readable "
        "checkpoint's): the model in safetensors, its tokenizer and a "
        "model card (recipe, training data, size, held-out agreement and accuracy)."))
    p.add_argument("run", metavar="RUN", help="a run directory, or a run id under the runs folder")
    p.add_argument("--repo-id", required=True, help="the Hub repository, owner/name")
    p.add_argument("--token", help="a Hugging Face token with write access (default: HF_TOKEN, else a saved login)")
    p.add_argument("--private", action="store_true", help="create the repository private")
    p.add_argument("--license", default=DEFAULT_LICENSE, help=f"the card's license (default {DEFAULT_LICENSE})")
    p.add_argument("--base-model", help="the card's base_model, a Hub model id (default: the teacher's Hub id when "
                                        "it has one; none for a local teacher)")
    p.add_argument("--measure-speed", action="store_true", help="measure CPU latency for the card: the student, "
                   "and the teacher when it is on this machine (batch 1, up to 512 tokens; seconds to a minute)")
    p.add_argument("--dry-run", metavar="OUT_DIR", help="only write the folder to OUT_DIR (new or empty) and list "
                                                        "what a push would upload; push nothing")
    return p


def export_parser() -> argparse.ArgumentParser:
    p = OneLineParser(prog="python -m train.export", description="Export a masked LM (a finished run's student by "
                      "default) to a folder that ONNX Runtime or OpenVINO loads without the lab, with its tokenizer "
                      "and a README of its measured size, speed and agreement with PyTorch (flagged when low).")
    p.add_argument("model", help="run:RUN_ID or a run folder (a finished run's; run:RUN_ID@init: its student before "
                   "training), a known model name, a model folder or a Hub id")
    p.add_argument("--format", required=True, choices=EXPORT_FORMATS, help="onnx (ONNX Runtime) or openvino")
    p.add_argument("--int8", action="store_true", help="int8 weights: ONNX Runtime's dynamic quantisation, or "
                   "NNCF's weight compression for OpenVINO")
    p.add_argument("--output", required=True, help="a new or empty folder (an earlier export there is replaced)")
    return p


def export_student_parser() -> argparse.ArgumentParser:
    p = OneLineParser(prog="python -m scripts.export_student", description=(
        "Copy a finished run's student into a model folder to ship, in float16, with the run's config and metrics "
        "beside it."))
    p.add_argument("run", metavar="RUN", help="a run's folder, or its run id under the runs folder")
    p.add_argument("out_dir", metavar="OUT_DIR", type=Path, help="a new or empty folder, or an earlier export (a "
                   "folder with distill_config.json), which is replaced whole")
    return p


# -- each command's entry: what `python -m MODULE` runs and what its console script in pyproject.toml points at, so
# the pair of its parser and its work is written once. Each reads the flags before its work's module loads torch.

def distill_command() -> NoReturn:
    """python -m train.distill; rudistil-distill."""
    run_command("train.cli:distill_parser", "train.distill:run")


def pretrain_teacher_command() -> NoReturn:
    """python -m train.pretrain_teacher."""
    run_command("train.cli:pretrain_teacher_parser", "train.pretrain_teacher:run")


def publish_command() -> NoReturn:
    """python -m train.publish; rudistil-publish."""
    run_command("train.cli:publish_parser", "train.publish:run")


def export_command() -> NoReturn:
    """python -m train.export."""
    run_command("train.cli:export_parser", "train.export:run")


def export_student_command() -> NoReturn:
    """python -m scripts.export_student (a script of the checkout, not installed)."""
    run_command("train.cli:export_student_parser", "scripts.export_student:run")
