"""Pretrain the lab's own tiny Russian teacher from scratch: python -m train.pretrain_teacher --help

A cased WordPiece tokenizer is trained on the corpus, then a small BERT masked LM learns by MLM, with optional navec
word vectors as starting embeddings and an optional nearby-lines contrastive loss; the weights with the best
held-out masked-token accuracy are kept. The options and what each does: train.cli.pretrain_teacher_parser.
"""
from __future__ import annotations

if __name__ == "__main__":  # read the flags (train.cli) before the imports below load torch: see run_command
    from train.cli import pretrain_teacher_command

    pretrain_teacher_command()

import argparse
import copy
import json
import sys
import time
from dataclasses import asdict
from pathlib import Path

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm
from transformers import AutoTokenizer, BertConfig, BertForMaskedLM, get_linear_schedule_with_warmup

from core.bench import machine
from core.compare import embed, quality
from core.distill.data import length_grouped_batches, mlm_batch, read_corpus, step_generator, tokenize_lines
from core.distill.evaluate import masked_batches, mlm_figures
from core.formatting import STOPPED_EXIT_CODE, shown
from core.models import word_vectors
from core.models.tokenizer import ALPHABET, BERT_SPECIALS, MIN_VOCAB_SIZE, train_wordpiece
from core.models.zoo import LoadedModel
from core.paths import REPO_ROOT, check_output_folder
from core.saving import save_model, save_tokenizer
from train import neighbour_contrast
from train.cli import pretrain_teacher_parser


def portable(value):
    """Paths inside the repository recorded relative to it, so the record reads the same on every machine."""
    if isinstance(value, str) and Path(value).is_absolute() and Path(value).is_relative_to(REPO_ROOT):
        return str(Path(value).relative_to(REPO_ROOT))
    return value


def parse_args(argv=None) -> argparse.Namespace:
    """The flags of train.cli.pretrain_teacher_parser; argparse exits 2 on a malformed one."""
    return pretrain_teacher_parser().parse_args(argv)


TEACHER_FILES = ("pretraining.json", "checkpoint.pt", "config.json")  # a folder holding one is a teacher's


def check_numbers(args: argparse.Namespace) -> str | None:
    """The first number a model cannot be built or trained with, as a sentence; None when all are usable."""
    at_least_one = {"--vocab-size": args.vocab_size, "--min-frequency": args.min_frequency, "--layers": args.layers,
                    "--hidden": args.hidden, "--heads": args.heads, "--ffn": args.ffn, "--steps": args.steps,
                    "--batch-size": args.batch_size, "--eval-every": args.eval_every}
    for flag, value in at_least_one.items():
        if value < 1:
            return f"{flag} must be 1 or more; got {shown(value)}."
    if args.vocab_size < MIN_VOCAB_SIZE:
        return (f"--vocab-size must be at least {MIN_VOCAB_SIZE} (BERT's {len(BERT_SPECIALS)} special tokens and the "
                f"{len(ALPHABET)} letters, digits and signs every vocabulary holds); got {args.vocab_size:,}.")
    if args.hidden % args.heads:
        return (f"--hidden must be a multiple of --heads (each head takes an equal share of the width); got "
                f"{args.hidden:,} and {args.heads:,}.")
    if args.max_length < 3:
        return f"--max-length must be 3 or more tokens ([CLS], a word, [SEP]); got {shown(args.max_length)}."
    if args.max_positions < args.max_length:
        return f"--max-positions ({args.max_positions:,}) must be at least --max-length ({args.max_length:,})."
    if not 0 < args.lr < float("inf"):
        return f"--lr must be a positive number, such as 1e-3; got {shown(args.lr)}."
    if not 0 <= args.warmup < 1:
        return f"--warmup is a share of the steps, from 0 to below 1; got {shown(args.warmup)}."
    if not 0 <= args.weight_decay < float("inf"):
        return f"--weight-decay must be 0 or a positive number; got {shown(args.weight_decay)}."
    if not 0 <= args.dropout < 1:
        return f"--dropout is a probability, from 0 to below 1; got {shown(args.dropout)}."
    return None


def check_args(args: argparse.Namespace) -> str | None:
    """The first argument a run cannot start with, as a sentence; None when all are usable."""
    problem = check_numbers(args)
    if problem:
        return problem
    if args.navec_file and args.init_embeddings != "navec":
        return "--navec-file is read only with --init-embeddings navec; add that option or leave the file out."
    try:
        check_output_folder(args.output_dir, "--output-dir", "a teacher's folder", "resume it",
                            marks=TEACHER_FILES)
    except ValueError as error:
        return str(error)
    if not (args.contrastive_weight >= 0 and args.contrastive_weight < float("inf")):
        return f"--contrastive-weight must be 0 or a positive number; got {shown(args.contrastive_weight)}."
    if args.contrastive_window < 1:
        return f"--contrastive-window must be 1 or more lines; got {shown(args.contrastive_window)}."
    if args.contrastive_weight and args.batch_size < 4:
        return f"--contrastive-weight needs --batch-size 4 or more (two pairs at least); got {shown(args.batch_size)}."
    if args.freeze_word_vectors and args.init_embeddings != "navec":
        return "--freeze-word-vectors keeps rows started from word vectors; add --init-embeddings navec."
    return None


def options(args: argparse.Namespace) -> dict:
    """The options that shape a run (all but --resume and the folder, which may have moved): a resumed run must have
    the same."""
    return {k: v for k, v in vars(args).items() if k not in ("resume", "output_dir")}


def pretraining_losses(model: BertForMaskedLM, batch: dict, pairs: int = 0) -> dict[str, torch.Tensor]:
    """The MLM cross-entropy of `model` on a masked batch (input_ids, attention_mask, labels: (bs, seq)), equal to
    model(**batch).loss, with the vocabulary head run only at the masked positions (about 15%): the head is the
    largest product of a small model with a large vocabulary. With pairs > 0, rows i and pairs + i are a pair of
    nearby lines and "contrast" is their InfoNCE (neighbour_contrast.info_nce) on mean-pooled last hidden states."""
    hidden = model.bert(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).last_hidden_state
    selected = batch["labels"] != -100  # (bs, seq)
    logits = model.cls(hidden[selected])  # (n_masked, vocab)
    losses = {"mlm": F.cross_entropy(logits.float(), batch["labels"][selected])}
    if pairs:
        pooled = embed.mean_pool(hidden, batch["attention_mask"])  # (bs, hidden), as the Embeddings tab pools
        losses["contrast"] = neighbour_contrast.info_nce(pooled[:pairs], pooled[pairs:2 * pairs])
    return losses


def training_batch(train, indices: list[int], tokenizer, args, step: int) -> tuple[dict, int]:
    """The masked batch of one step and its number of pairs: the lines at `indices`, and with a contrastive weight
    also one nearby line for each, cut to the longest of them so the pairs add no padding."""
    anchors = [train.sequences[i] for i in indices]
    if not args.contrastive_weight:
        return mlm_batch(anchors, tokenizer, step_generator(args.seed, step)), 0
    near = neighbour_contrast.neighbours(indices, len(train.sequences), args.contrastive_window,
                                         step_generator(args.seed, step, micro=1))
    longest = max(len(a) for a in anchors)
    sequences = anchors + [neighbour_contrast.cut_to(train.sequences[i], longest) for i in near]
    return mlm_batch(sequences, tokenizer, step_generator(args.seed, step)), len(anchors)


def probe_purity(model: BertForMaskedLM, tokenizer) -> float:
    """Topic purity (0..1) of the topic probe sentences' 10 nearest neighbours, last layer, mean pooling, as
    core.compare.quality.topic_purity measures the bundled models."""
    model.eval()
    try:
        return quality.topic_purity(LoadedModel("teacher in training", model, tokenizer, "local"))
    finally:
        model.train()


def main(argv=None) -> int:
    """The command line in this process: argparse exits 2 on a malformed flag, then run() returns the exit code."""
    return run(parse_args(argv))


def run(args: argparse.Namespace) -> int:
    """Check the parsed flags (exit code 2 and one line for what a person can fix), then pretrain."""
    problem = check_args(args)
    if problem:
        print(f"error: {problem}", file=sys.stderr)
        return 2
    try:
        lines = read_corpus(args.corpus)
        try:
            valid_lines = read_corpus(args.valid_corpus)
        except ValueError as error:
            raise ValueError(f"--valid-corpus: {error}") from None
        vectors = word_vectors.load_navec(args.navec_file) if args.init_embeddings == "navec" else None
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    torch.manual_seed(args.seed)
    out = Path(args.output_dir)
    checkpoint_path = out / "checkpoint.pt"
    resuming = args.resume and checkpoint_path.is_file()
    if resuming or args.tokenizer:  # a resumed run keeps the vocabulary its weights were trained with
        tokenizer = AutoTokenizer.from_pretrained(out if resuming else args.tokenizer)
    else:
        tokenizer = train_wordpiece(lines, args.vocab_size, min_frequency=args.min_frequency)
    words = word_vectors.corpus_words(lines, tokenizer)
    whole_words = len(word_vectors.whole_word_entries(tokenizer, words))
    print(f"vocabulary: {len(tokenizer):,} entries, {whole_words:,} of them whole words of the corpus", file=sys.stderr)
    if len(tokenizer) > args.vocab_size and not (resuming or args.tokenizer):
        # a smaller vocabulary than asked for would be a different model than the one the command names
        print(f"error: --vocab-size {args.vocab_size:,} is below what this corpus's alphabet alone needs (every "
              f"letter and sign, alone and as a word's continuation): give {len(tokenizer):,} or more.",
              file=sys.stderr)
        return 2
    config = BertConfig(vocab_size=len(tokenizer), hidden_size=args.hidden, num_hidden_layers=args.layers,
                        num_attention_heads=args.heads, intermediate_size=args.ffn,
                        max_position_embeddings=max(args.max_length, args.max_positions),
                        hidden_dropout_prob=args.dropout,
                        attention_probs_dropout_prob=args.dropout, pad_token_id=tokenizer.pad_token_id)
    model = BertForMaskedLM(config)
    device = torch.device("cuda" if args.device == "auto" and torch.cuda.is_available() else "cpu")
    embedding_init = None
    if vectors is not None:  # draws nothing from torch's global generator: other weights, data and dropout as without
        embedding_init = word_vectors.init_token_embeddings(model, tokenizer, vectors, seed=args.seed, words=words)
        print(word_vectors.describe(embedding_init), file=sys.stderr)
    model.to(device)
    frozen = None
    if vectors is not None and args.freeze_word_vectors:
        frozen = word_vectors.FrozenRows(model.get_input_embeddings().weight,
                                         word_vectors.vector_rows(tokenizer, vectors, words))
    train = tokenize_lines(lines, tokenizer, args.max_length)
    valid = masked_batches(valid_lines, tokenizer, args.max_length, seed=args.seed)
    decay = [p for p in model.parameters() if p.ndim > 1]
    no_decay = [p for p in model.parameters() if p.ndim <= 1]
    optimizer = torch.optim.AdamW([{"params": decay, "weight_decay": args.weight_decay},
                                   {"params": no_decay, "weight_decay": 0.0}], lr=args.lr, betas=(0.9, 0.98), eps=1e-6,
                                  fused=device.type == "cuda" or None)
    scheduler = get_linear_schedule_with_warmup(optimizer, int(args.warmup * args.steps), args.steps)
    out.mkdir(parents=True, exist_ok=True)
    log, best, epoch, batches, position, first_step, before_s = [], None, 0, [], 0, 1, 0.0
    anchors_per_step = args.batch_size // 2 if args.contrastive_weight else args.batch_size
    if resuming:
        state = torch.load(checkpoint_path, map_location=device, weights_only=False)
        saved = {k: v for k, v in state["args"].items() if k != "output_dir"}  # older checkpoints kept the folder
        if state["vocab_entries"] != len(tokenizer) or saved != options(args):
            print("error: the checkpoint was written with other options or another corpus; resume with the same "
                  "ones, or start a new --output-dir.", file=sys.stderr)
            return 2
        for module, key in ((model, "model"), (optimizer, "optimizer"), (scheduler, "scheduler")):
            module.load_state_dict(state[key])
        torch.set_rng_state(state["rng"])
        log, best, epoch, position, before_s = state["log"], state["best"], state["epoch"], state["position"], \
            state["elapsed_s"]
        batches = length_grouped_batches(train.lengths, anchors_per_step, args.seed, epoch - 1) if epoch else []
        first_step = state["step"] + 1
        print(f"resumed at step {state['step']:,}", file=sys.stderr)
    started = time.perf_counter() - before_s
    precision = args.precision
    if precision == "auto":
        precision = "bf16" if device.type == "cuda" or machine.cpu_has_fast_bf16() else "fp32"
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=precision == "bf16")
    record = {"args": {k: portable(v) for k, v in vars(args).items()}, "train_lines": len(lines),
              "train_tokens": train.tokens, "vocab_entries": len(tokenizer), "whole_word_entries": whole_words,
              "init_embeddings": asdict(embedding_init) if embedding_init else None,
              "torch_threads": torch.get_num_threads(), "torch": torch.__version__, "device": str(device),
              "precision": precision, "gpu": torch.cuda.get_device_name(0) if device.type == "cuda" else None}
    model.train()
    step = first_step
    try:
        for step in tqdm(range(first_step, args.steps + 1), initial=first_step - 1, total=args.steps,
                         desc="pretraining", unit="step", mininterval=5):
            if position >= len(batches):
                batches = length_grouped_batches(train.lengths, anchors_per_step, args.seed, epoch)
                position, epoch = 0, epoch + 1
            batch, pairs = training_batch(train, batches[position], tokenizer, args, step)
            position += 1
            with autocast:
                losses = pretraining_losses(model, {k: v.to(device) for k, v in batch.items()}, pairs)
                loss = losses["mlm"] + args.contrastive_weight * losses["contrast"] if pairs else losses["mlm"]
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            if frozen is not None:
                frozen.restore()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            if step % args.eval_every == 0 or step == args.steps:
                figures = mlm_figures(model, valid)
                log.append({"step": step, "loss": loss.item(), **{f"{k}_loss": v.item() for k, v in losses.items()},
                            "valid_mlm_acc": figures["mlm_acc"], "topic_purity": probe_purity(model, tokenizer),
                            "epoch": epoch, "elapsed_s": round(time.perf_counter() - started, 1)})
                print(json.dumps(log[-1]), file=sys.stderr)
                if best is None or figures["mlm_acc"] > best["valid_mlm_acc"]:
                    best = log[-1]
                    save_model(copy.deepcopy(model).cpu().to(getattr(torch, args.save_dtype)), out)
                    save_tokenizer(tokenizer, out)
                # written at every evaluation: a run stopped early keeps its curve and its best weights, and resumes
                (out / "pretraining.json").write_text(json.dumps({**record, "best": best, "log": log}, indent=1),
                                                      encoding="utf-8")
                state = {"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                         "scheduler": scheduler.state_dict(), "rng": torch.get_rng_state(), "step": step,
                         "epoch": epoch, "position": position, "log": log, "best": best,
                         "elapsed_s": time.perf_counter() - started, "vocab_entries": len(tokenizer),
                         "args": options(args)}
                torch.save(state, checkpoint_path.with_suffix(".tmp"))
                checkpoint_path.with_suffix(".tmp").replace(checkpoint_path)
    except KeyboardInterrupt:  # Ctrl-C (core.formatting.Interrupted): say what is kept, not a traceback
        saved = log[-1]["step"] if log else None
        kept = (f"the checkpoint of step {saved:,} is in {out}; run the same command with --resume to go on from it"
                if saved else "no evaluation was reached, so nothing was saved")
        print(f"Stopped at step {step:,}: {kept}.", file=sys.stderr)
        return STOPPED_EXIT_CODE
    print(f"best held-out masked-token accuracy {best['valid_mlm_acc']:.3f} at step {best['step']:,}; saved to {out}",
          file=sys.stderr)
    return 0

