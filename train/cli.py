"""Command-line flags of train.distill: a config file (YAML or JSON) first, then flags that override it."""
from __future__ import annotations

import argparse
from pathlib import Path

from core.formatting import OneLineParser, parse_int_list
from core.models.vocab import ALIGNMENTS
from core.paths import check_output_folder
from core.runs.store import RunPaths, find_run_dir
from train.config import DistillConfig, build_config, read_config_file

# What may change when a run is resumed; everything else shapes the student or its data and must stay.
RESUMABLE_CHANGES = {"max_steps", "save_every", "log_every", "eval_every", "eval_lines", "keep_checkpoints",
                     "mixed_precision", "device", "output_dir", "trace", "gradient_checkpointing",
                     "compile", "report_to", "num_proc", "fsdp"}


def int_list(text: str) -> list[int]:
    try:
        return parse_int_list(text, "Layer numbers", example="0,2,4")
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def build_parser() -> argparse.ArgumentParser:
    d = DistillConfig()
    w = d.losses
    p = OneLineParser(prog="python -m train.distill", description=(
        "Distil a smaller masked language model from a teacher with KL on softened logits, the MLM loss and a cosine "
        "loss between student hidden states and means of consecutive teacher hidden states. Writes a run directory "
        "(config.json, metrics.jsonl, checkpoints/, final/). Works under `accelerate launch` on many GPUs."),
        argument_default=None)
    p.add_argument("--config", help="YAML or JSON file of options (flags given here override it)")
    g = p.add_argument_group("models")
    g.add_argument("--teacher", help=f"known name, Hub id or local folder (default {d.teacher})")
    g.add_argument("--student-layers", type=int, help="student depth (default: half the teacher's)")
    g.add_argument("--init-layers", type=int_list, help="teacher layers (0-based) that initialise the student "
                   "(default: evenly spaced, keeping the first and the last, as DistilBERT: 12 -> 6 layers gives "
                   "0,2,4,7,9,11)")
    g.add_argument("--student-type", choices=["same", "bert", "distilbert"], help="architecture of the student")
    g.add_argument("--student-vocab-size", type=int, help="train a smaller WordPiece vocabulary for the student")
    g.add_argument("--student-hidden", type=int, help="narrower student width (needs --student-vocab-size)")
    g.add_argument("--align", choices=ALIGNMENTS, help="how logits meet across vocabularies (default reduce): match "
                   "and reduce as the paper's code, match-pieces and reduce-shared the lab's variants")
    g.add_argument("--reduce-op", choices=["sum", "mean"], help="reduce, reduce-shared: sum (default) or mean of the "
                   "student's logits over a teacher token's pieces")
    g = p.add_argument_group("data")
    g.add_argument("--corpus", help="'bundled' (the lab's corpus); a UTF-8 .txt file, one sample a line; a .jsonl, "
                   ".csv or .parquet file (see --text-column); a folder or glob ('data/*.parquet') of such files; or a "
                   "Hub dataset id (see --corpus-config, --corpus-split)")
    g.add_argument("--valid-corpus", help="held-out samples for evaluation, any kind --corpus takes (a Hub dataset: "
                   "its validation split) (default: the bundled split, or 5%% of the corpus, at most 500 samples; "
                   "with --streaming its first 500)")
    g.add_argument("--text-column", help="the column of samples in .jsonl, .csv, .parquet files and Hub datasets "
                   f"(default {d.text_column})")
    g.add_argument("--corpus-config", help="configuration (subset) of a Hub dataset")
    g.add_argument("--corpus-split", help=f"split of a Hub dataset (default {d.corpus_split})")
    g.add_argument("--streaming", action="store_true", help="read the corpus as training goes, for corpora larger "
                   "than the disk cache (default: tokenise it once into Arrow files, reused by the next run)")
    g.add_argument("--num-proc", type=int, help="processes that tokenise the corpus (default: every CPU for a "
                   "corpus over 100,000 samples)")
    g.add_argument("--max-length", type=int, help=f"tokens per sample, longer lines are cut (default {d.max_length})")
    g.add_argument("--mlm-probability", type=float, help=f"share of tokens masked (default {d.mlm_probability})")
    g = p.add_argument_group("optimisation")
    g.add_argument("--max-steps", type=int, help=f"optimizer steps (default {d.max_steps})")
    g.add_argument("--batch-size", type=int, help=f"samples per process per micro-batch (default {d.batch_size})")
    g.add_argument("--grad-accum", type=int, help="micro-batches per optimizer step (default 1)")
    g.add_argument("--lr", type=float, help=f"peak learning rate of AdamW (default {d.lr})")
    g.add_argument("--warmup", type=float, help=f"share of steps of linear warm-up (default {d.warmup})")
    g.add_argument("--weight-decay", type=float, help=f"AdamW weight decay (default {d.weight_decay})")
    g.add_argument("--grad-clip", type=float, help=f"gradient norm clip (default {d.grad_clip})")
    g.add_argument("--compile", action="store_true",
                   help="torch.compile student and teacher (on a GPU: about a minute of compiling, then faster steps)")
    g.add_argument("--fsdp", action="store_true",
                   help="shard the student, its gradients and its optimizer state over the processes of `accelerate "
                   "launch` (PyTorch FSDP2; on GPUs or CPUs; implied by train/accelerate_fsdp.yaml on GPUs)")
    g.add_argument("--gradient-checkpointing", action="store_true",
                   help="recompute the student's activations in backward (less memory, about a third more time)")
    g = p.add_argument_group("losses")
    g.add_argument("--temperature", type=float, help=f"softmax temperature T of the KL term (default {w.temperature})")
    g.add_argument("--alpha-kl", type=float, help=f"weight of KL(teacher || student) (default {w.alpha_kl})")
    g.add_argument("--alpha-mlm", type=float, help=f"weight of the MLM cross-entropy (default {w.alpha_mlm})")
    g.add_argument("--alpha-cos", type=float, help=f"weight of the hidden-state cosine loss (default {w.alpha_cos})")
    g.add_argument("--alpha-att", type=float, help="weight of the attention-map MSE of distilrubert-small (default 0)")
    g.add_argument("--alpha-hidden-mse", type=float, help="reduced-vocabulary students: weight of the projected "
                                                          f"hidden-state MSE (default {w.alpha_hidden_mse})")
    g.add_argument("--kl-masked-only", action="store_true", help="KL at masked positions only (default: all tokens)")
    g = p.add_argument_group("run")
    g.add_argument("--seed", type=int, help=f"seed of data order, masks and initialisation (default {d.seed})")
    g.add_argument("--log-every", type=int, help=f"steps between metrics records (default {d.log_every})")
    g.add_argument("--eval-every", type=int, help=f"steps between held-out evaluations (default {d.eval_every})")
    g.add_argument("--eval-lines", type=int, help=f"held-out lines used by each evaluation (default {d.eval_lines})")
    g.add_argument("--save-every", type=int, help=f"steps between checkpoints (default {d.save_every})")
    g.add_argument("--keep-checkpoints", type=int, help=f"checkpoints kept on disk (default {d.keep_checkpoints})")
    g.add_argument("--mixed-precision", choices=["auto", "no", "fp16", "bf16"], help="default auto: bf16/fp16 on GPU")
    g.add_argument("--device", choices=["auto", "cpu"], help="auto uses the GPU when there is one")
    g.add_argument("--output-dir", help="run directory (default runs/<date-time-id>)")
    g.add_argument("--resume", nargs="?", const=True, metavar="RUN_DIR",
                   help="continue the run in RUN_DIR (or --output-dir) from its last checkpoint")
    g.add_argument("--trace", action="store_true", help="record each process's batches and a weight checksum")
    g.add_argument("--report-to", metavar="TRACKERS", help="experiment trackers that also receive every metrics "
                   "record and the options: tensorboard, trackio, wandb, mlflow, several separated by commas, or "
                   "none (default); local ones write under RUN_DIR/tracking")
    return p


def parse_args(argv: list[str] | None) -> tuple[DistillConfig, bool]:
    """(config, resume). Raises ValueError for inconsistent input; argparse exits 2 on malformed flags."""
    args = vars(build_parser().parse_args(argv))
    config_file, resume = args.pop("config"), args.pop("resume")
    overrides = {k: v for k, v in args.items() if v is not None and v is not False}
    if resume:
        named = resume if isinstance(resume, str) else overrides.get("output_dir") or ""
        if not str(named).strip() or str(named).strip() == ".":
            raise ValueError("--resume needs the run directory of an earlier run (--resume RUN_DIR or --output-dir).")
        try:
            run_dir = find_run_dir(named)
        except ValueError as error:
            raise ValueError(f"--resume: {error}") from None
        saved = read_config_file(run_dir / "config.json")
        changed = sorted(k for k, v in {**(read_config_file(config_file) if config_file else {}), **overrides}.items()
                         if k not in RESUMABLE_CHANGES and saved.get(k) != v)
        if changed:
            raise ValueError(f"A resumed run keeps its settings; these cannot change: {', '.join(changed)}.")
        cfg = build_config(saved, {**overrides, "output_dir": str(run_dir)})
    else:
        cfg = build_config(read_config_file(config_file) if config_file else {}, overrides)
    cfg.check()
    return cfg, bool(resume)


def check_output_dir(run_dir: Path) -> None:
    """Refuse, before anything loads, a run directory that is a file, holds other files than a run's, or cannot be
    made or written (core.paths.check_output_folder). ValueError naming --output-dir and the directory."""
    paths = RunPaths(run_dir)
    check_output_folder(paths.root, f"--output-dir '{paths.root}'", "a run's folder", "resume it",
                        marks=tuple(p.name for p in (paths.config, paths.request, paths.status)))
