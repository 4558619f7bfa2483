"""The configuration of a distillation run: defaults, reading a YAML/JSON file, the command line's flags over them,
and the sanity checks."""
from __future__ import annotations

import argparse
import dataclasses
import json
import math
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from core.distill.losses import LossWeights
from core.distill.sources import CorpusSource
from core.formatting import shown
from core.models.alignments import ALIGNMENTS, REDUCE_OPS
from core.paths import ASSETS, check_output_folder
from core.runs.store import RunPaths, find_run_dir, quoted_id, read_status
from core.textfiles import not_text
from train.choices import DEVICES, MIXED_PRECISIONS, STUDENT_TYPES
from train.tracking import check_installed, tracker_names

BUNDLED_CORPUS = "bundled"  # the corpus that ships in assets/corpus
# upper bounds far beyond any sensible run: a typo (an extra zero or three) is refused before anything loads
MAX_STEPS = 10_000_000
MAX_BATCH_SIZE = 100_000
MAX_STUDENT_VOCAB = 1_000_000
MIN_STUDENT_HIDDEN = 8  # the narrowest width whose heads keep a few dimensions each
MIN_STUDENT_VOCAB = 100
MAX_LENGTH_RANGE = (8, 4096)  # tokens a line: the shortest that leaves room to mask, the longest any teacher reads
# What may change when a run is resumed; everything else shapes the student or its data and must stay.
RESUMABLE_CHANGES = {"max_steps", "save_every", "log_every", "eval_every", "eval_lines", "keep_checkpoints",
                     "mixed_precision", "device", "output_dir", "trace", "gradient_checkpointing",
                     "compile", "report_to", "num_proc", "fsdp"}


LOSS_FIELDS = tuple(f.name for f in dataclasses.fields(LossWeights))  # alpha_kl, ..., temperature, kl_masked_only


@dataclass
class DistillConfig:
    """Every option of a run. The loss weights and temperature are one LossWeights, declared once in
    core.distill.losses and held in `losses`; config files, flags and config.json keep their flat names
    (alpha_kl: 5, --alpha-kl 5): see from_dict and to_dict."""
    # models
    teacher: str = "bundled-teacher"
    student_layers: int | None = None  # None: half the teacher's layers
    init_layers: list[int] | None = None  # teacher layers (0-based) copied into the student; None: evenly spaced,
    # keeping the first and the last
    student_type: str = "same"  # one of STUDENT_TYPES: "same" (the teacher's architecture), "bert", "distilbert"
    # reduced vocabulary and width (Kolesnikova et al. 2022); None keeps the teacher's
    student_vocab_size: int | None = None
    student_hidden: int | None = None
    align: str = "reduce"  # how logits are compared across vocabularies: one of core.models.alignments.ALIGNMENTS
    reduce_op: str = "sum"  # one of core.models.alignments.REDUCE_OPS: of student logits over a teacher token's pieces
    # data
    corpus: str = BUNDLED_CORPUS
    # the name a person gave a corpus uploaded in the app, whose run reads its own copy (runs/<id>/corpus.txt): pages
    # and the model card say it; None: a corpus named by its path (and runs saved before this field)
    corpus_name: str | None = None
    valid_corpus: str | None = None  # None: the bundled validation split, or 5% held out of a custom corpus
    text_column: str = "text"  # the column of samples in .jsonl/.csv/.parquet files and Hub datasets
    corpus_config: str | None = None  # a Hub dataset's configuration (subset)
    corpus_split: str = "train"  # a Hub dataset's split
    streaming: bool = False  # read the corpus as training goes instead of tokenising it to disk first
    num_proc: int | None = None  # processes that tokenise the corpus; None: all CPUs for a large corpus
    max_length: int = 128
    mlm_probability: float = 0.15
    # optimisation
    max_steps: int = 300
    batch_size: int = 16
    grad_accum: int = 1
    lr: float = 5e-4
    warmup: float = 0.05  # fraction of max_steps
    weight_decay: float = 0.01
    betas: list[float] = field(default_factory=lambda: [0.9, 0.98])
    adam_eps: float = 1e-6
    grad_clip: float = 5.0
    gradient_checkpointing: bool = False  # recompute the student's layers in backward: less memory, a third more time
    compile: bool = False  # torch.compile student and teacher: a minute of compiling, then faster steps on a GPU
    fsdp: bool = False  # shard the student over the processes (FSDP2, train.sharding); FSDP configs imply it
    # losses: temperature, alpha_kl, alpha_mlm, alpha_cos, alpha_att, alpha_hidden_mse, kl_masked_only
    losses: LossWeights = field(default_factory=LossWeights)
    # bookkeeping
    seed: int = 42
    log_every: int = 10
    eval_every: int = 50
    eval_lines: int = 300
    save_every: int = 100
    keep_checkpoints: int = 2
    mixed_precision: str = "auto"  # one of MIXED_PRECISIONS: "auto" (bf16/fp16 on GPU, none on CPU), "no", ...
    device: str = "auto"  # one of DEVICES: "auto" (the GPU when there is one) or "cpu"
    output_dir: str | None = None  # None: runs/<timestamp>
    trace: bool = False  # write each rank's sample indices and a weight checksum (to check multi-process runs)
    report_to: list[str] = field(default_factory=list)  # experiment trackers (train.tracking.TRACKERS); [] for none

    @classmethod
    def from_dict(cls, values: dict) -> DistillConfig:
        """A config from flat option names (as in config files, flags and config.json): the loss fields go to
        `losses`. Raises ValueError naming any unknown option."""
        unknown = sorted(set(values) - set(FIELDS) - set(LOSS_FIELDS))
        if unknown:
            raise ValueError(f"Unknown option(s) in the config: {', '.join(unknown)}.")
        nested = values.get("losses") or {}
        nested = dataclasses.asdict(nested) if isinstance(nested, LossWeights) else dict(nested)
        nested.update({k: v for k, v in values.items() if k in LOSS_FIELDS})
        rest = {k: v for k, v in values.items() if k not in LOSS_FIELDS and k != "losses"}
        if "report_to" in rest:  # "tensorboard,wandb" from a flag, a list or a string from a file
            rest["report_to"] = tracker_names(rest["report_to"])
        return cls(**rest, losses=LossWeights(**nested))

    @property
    def reduced_vocab(self) -> bool:
        return bool(self.student_vocab_size)

    def corpus_paths(self) -> tuple[Path, Path | None]:
        if self.corpus == BUNDLED_CORPUS:
            return ASSETS / "corpus" / "train.txt", Path(self.valid_corpus) if self.valid_corpus else \
                ASSETS / "corpus" / "valid.txt"
        return Path(self.corpus), Path(self.valid_corpus) if self.valid_corpus else None

    def corpus_sources(self) -> tuple[CorpusSource, CorpusSource | None]:
        """The training corpus and the held-out one (None: held out of the training corpus)."""
        train_path, valid_path = self.corpus_paths()
        spec = str(train_path) if self.corpus == BUNDLED_CORPUS else self.corpus
        train = CorpusSource(spec, self.text_column, self.corpus_config, self.corpus_split, self.streaming,
                             "bundled" if self.corpus == BUNDLED_CORPUS else None)
        if valid_path is None:
            return train, None
        valid_spec = str(valid_path) if self.corpus == BUNDLED_CORPUS and not self.valid_corpus else self.valid_corpus
        return train, CorpusSource(valid_spec, self.text_column, self.corpus_config,
                                   self.corpus_split if self.valid_corpus is None else "validation", self.streaming,
                                   flag="--valid-corpus" if self.valid_corpus else None)

    def to_dict(self) -> dict:
        """Every option under its flat name, as config files and config.json hold them."""
        values = dataclasses.asdict(self)
        return {**{k: v for k, v in values.items() if k != "losses"}, **values["losses"]}

    def check(self) -> None:
        """Fail early, with one sentence a person can act on, before anything is loaded or written."""
        check_kinds(self)
        if len(self.betas) != 2 or not all(0 <= b < 1 for b in self.betas):
            raise ValueError(f"--betas must be two numbers from 0 to below 1, such as [0.9, 0.98]; got {self.betas}.")
        positive = dict(max_steps=self.max_steps, batch_size=self.batch_size, grad_accum=self.grad_accum,
                        log_every=self.log_every, eval_every=self.eval_every, save_every=self.save_every,
                        keep_checkpoints=self.keep_checkpoints, eval_lines=self.eval_lines)
        for name, value in positive.items():
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"--{name.replace('_', '-')} must be a whole number of at least 1; "
                                 f"got {shown(value)}.")
        for name, value, most in [("max_steps", self.max_steps, MAX_STEPS),
                                  ("batch_size", self.batch_size, MAX_BATCH_SIZE)]:
            if value > most:
                raise ValueError(f"--{name.replace('_', '-')} must be at most {most:,}; got {value:,}.")
        if self.num_proc is not None and not 1 <= self.num_proc <= 256:
            raise ValueError(f"--num-proc must be from 1 to 256; got {shown(self.num_proc)}.")
        if not self.text_column.strip():
            raise ValueError("--text-column must name a column; got an empty name.")
        if self.student_layers is not None and self.student_layers < 1:
            raise ValueError(f"--student-layers must be at least 1; got {shown(self.student_layers)}.")
        if not MAX_LENGTH_RANGE[0] <= self.max_length <= MAX_LENGTH_RANGE[1]:
            raise ValueError(f"--max-length must be between {MAX_LENGTH_RANGE[0]} and {MAX_LENGTH_RANGE[1]:,} tokens; "
                             f"got {shown(self.max_length)}.")
        if not 0 < self.mlm_probability < 1:
            raise ValueError(f"--mlm-probability must be between 0 and 1; got {self.mlm_probability}.")
        if not self.lr > 0 or self.lr > 1:
            raise ValueError(f"--lr must be above 0 and at most 1; got {self.lr}.")
        if not 0 <= self.warmup < 1:
            raise ValueError(f"--warmup is a fraction of the steps, from 0 to below 1; got {self.warmup}.")
        if not 0 < self.grad_clip < math.inf:
            raise ValueError(f"--grad-clip must be a finite number above 0; got {self.grad_clip}.")
        if not 0 <= self.weight_decay < math.inf:
            raise ValueError(f"--weight-decay must be a finite number, 0 or above; got {self.weight_decay}.")
        if self.eval_every % self.log_every:
            raise ValueError(f"--eval-every ({self.eval_every:,}) must be a multiple of --log-every "
                             f"({self.log_every:,}), so evaluations land on logged steps; add --log-every "
                             f"{math.gcd(self.eval_every, self.log_every):,}, or use --eval-every "
                             f"{-(-self.eval_every // self.log_every) * self.log_every:,}.")
        if self.student_type not in STUDENT_TYPES:
            raise ValueError(f"--student-type must be {either(STUDENT_TYPES)}; got '{self.student_type}'.")
        if self.mixed_precision not in MIXED_PRECISIONS:
            raise ValueError(f"--mixed-precision must be {either(MIXED_PRECISIONS)}; got '{self.mixed_precision}'.")
        if not 0 <= self.seed < 2**32:  # numpy's and torch's generators take no other
            raise ValueError(f"--seed must be a whole number from 0 to {2**32 - 1:,}; got {shown(self.seed)}.")
        if self.fsdp and self.mixed_precision == "fp16":
            raise ValueError("--fsdp trains in bf16 or fp32: use --mixed-precision bf16 or no.")
        if self.device not in DEVICES:
            raise ValueError(f"--device must be {either(DEVICES)}; got '{self.device}'.")
        if self.align not in ALIGNMENTS or self.reduce_op not in REDUCE_OPS:
            raise ValueError(f"--align must be one of {', '.join(ALIGNMENTS)}, and --reduce-op sum or mean.")
        if self.reduced_vocab and self.losses.kl_masked_only and self.align == "reduce":
            raise ValueError("--kl-masked-only does not apply to --align reduce, where the student reads the "
                             "unmasked text; use --align match or reduce-shared, or leave it out.")
        if self.student_hidden and not self.student_vocab_size:
            raise ValueError("A narrower student (--student-hidden) needs its own vocabulary: "
                             "also give --student-vocab-size.")
        vocab = self.student_vocab_size
        if vocab is not None and not MIN_STUDENT_VOCAB <= vocab <= MAX_STUDENT_VOCAB:
            raise ValueError(f"--student-vocab-size must be between {MIN_STUDENT_VOCAB} and {MAX_STUDENT_VOCAB:,}; "
                             f"got {self.student_vocab_size:,}.")
        if self.student_hidden is not None and self.student_hidden < MIN_STUDENT_HIDDEN:
            # whether it divides into the teacher's attention heads is checked once the teacher is loaded
            raise ValueError(f"--student-hidden must be at least {MIN_STUDENT_HIDDEN}; "
                             f"got {shown(self.student_hidden)}.")
        self.losses.check(reduced_vocab=self.reduced_vocab)
        check_installed(tracker_names(self.report_to))


def either(options: tuple[str, ...]) -> str:
    """The options as a sentence lists them: "auto, no, fp16 or bf16"."""
    return f"{', '.join(options[:-1])} or {options[-1]}" if len(options) > 1 else options[0]


FIELDS = {f.name: f for f in dataclasses.fields(DistillConfig)}
KINDS = {**typing.get_type_hints(DistillConfig), **typing.get_type_hints(LossWeights)}
KINDS.pop("losses")


def kind_ok(value, kind) -> bool:
    """Whether `value`, read from JSON, YAML or a flag, is of the annotated `kind` (an int counts as a float; a bool
    as nothing but a bool)."""
    args = typing.get_args(kind)
    if isinstance(kind, types.UnionType) or typing.get_origin(kind) is typing.Union:
        return any(kind_ok(value, arg) for arg in args)
    if typing.get_origin(kind) is list:
        return isinstance(value, list) and all(kind_ok(item, args[0]) for item in value)
    if kind is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if kind is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return value is None if kind is type(None) else isinstance(value, kind)


def kind_words(kind) -> str:
    """What a value of `kind` is, as an error sentence says it: "a whole number or null", "a list of numbers"."""
    if isinstance(kind, types.UnionType) or typing.get_origin(kind) is typing.Union:
        return " or ".join(kind_words(arg) for arg in typing.get_args(kind))
    if typing.get_origin(kind) is list:
        return "a list of " + kind_words(typing.get_args(kind)[0]).removeprefix("a ").replace("number", "numbers") \
            .replace("text", "texts")
    return {int: "a whole number", float: "a number", str: "text", bool: "true or false",
            type(None): "null"}.get(kind, kind.__name__)


def check_kinds(cfg: DistillConfig) -> None:
    """ValueError naming the first option whose value is of the wrong kind ("2" for student_layers, "x" for betas)."""
    values = cfg.to_dict()
    for name, kind in KINDS.items():
        if not kind_ok(values[name], kind):
            given = json.dumps(values[name], ensure_ascii=False, default=str)
            given = given if len(given) <= 60 else given[:60] + "…"
            raise ValueError(f"--{name.replace('_', '-')} must be {kind_words(kind)}; got {given}.")


def parse_problem(error: Exception) -> str:
    """What went wrong reading a config file, as one clause with its place: never a library's multi-line text."""
    if isinstance(error, UnicodeDecodeError):
        return "it is not UTF-8 text"
    if isinstance(error, json.JSONDecodeError):
        return f"{error.msg.rstrip(':. ')} (line {error.lineno}, column {error.colno})"
    mark = getattr(error, "problem_mark", None)
    problem = (getattr(error, "problem", None) or "it is not valid YAML").rstrip(":. ")
    return f"{problem} (line {mark.line + 1}, column {mark.column + 1})" if mark is not None else problem


def read_config_file(path: str | Path) -> dict:
    """The options of a YAML or JSON config file, by their flat names (dashes read as underscores); {} for an empty
    file. ValueError, one sentence naming the file, when it is missing, not text, not valid YAML or JSON, or not a
    mapping."""
    path = Path(path)
    try:
        found = path.is_file()
    except OSError as error:  # a name the system refuses as a path (too long)
        raise ValueError(f"The config file {quoted_id(path)} ({len(str(path)):,} characters) cannot be opened "
                         f"({error.strerror or error}); give a shorter path.") from None
    if not found:
        raise ValueError(f"The config file '{path}' does not exist.")
    with open(path, "rb") as handle:
        refusal = not_text(handle.read(1 << 16), str(path), want="a YAML or JSON text file")
    if refusal:  # a PDF or a Word file: say what it is rather than where YAML first fails on it
        raise ValueError(f"The config file {refusal}")
    try:
        text = path.read_text(encoding="utf-8")
        data = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except (UnicodeDecodeError, json.JSONDecodeError, yaml.YAMLError) as error:
        raise ValueError(f"Could not read the config file '{path}': {parse_problem(error)}; fix it and try "
                         "again.") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ValueError(f"The config file '{path}' must hold a mapping of option names to values.")
    return {key.replace("-", "_"): value for key, value in data.items()}


def build_config(file_values: dict, overrides: dict) -> DistillConfig:
    """Defaults, then the config file, then command-line flags (only those given)."""
    values = {**file_values, **{k: v for k, v in overrides.items() if v is not None}}
    return DistillConfig.from_dict(values)


def from_flags(flags: argparse.Namespace) -> tuple[DistillConfig, bool]:
    """(config, resume) from train.distill's parsed flags (train.cli.distill_parser): defaults, then the --config
    file, then the flags given; a resumed run keeps its config.json, where only RESUMABLE_CHANGES may differ.
    Raises ValueError for inconsistent input."""
    args = dict(vars(flags))
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
        done = read_status(run_dir).get("step")
        if isinstance(done, int) and not isinstance(done, bool) and cfg.max_steps < done:
            raise ValueError(f"--max-steps {cfg.max_steps:,} is below the {done:,} steps the run {run_dir.name} has "
                             f"done; give more than {done:,} to train it further, or leave --max-steps out.")
    else:
        cfg = build_config(read_config_file(config_file) if config_file else {}, overrides)
        default = DistillConfig()
        # given as a flag (even at its default) or set otherwise in a config file
        aligning = [k for k in ("align", "reduce_op") if k in overrides or getattr(cfg, k) != getattr(default, k)]
        if aligning and not cfg.student_vocab_size:  # else silently unused, yet written to the run's config.json
            flags = " and ".join(f"--{k.replace('_', '-')}" for k in aligning)
            verb = "set" if len(aligning) > 1 else "sets"
            raise ValueError(f"{flags} {verb} how logits meet across two vocabularies; the student shares the "
                             "teacher's unless you also give --student-vocab-size.")
    cfg.check()
    return cfg, bool(resume)


def check_output_dir(run_dir: Path) -> None:
    """Refuse, before anything loads, a run directory that is a file, holds other files than a run's, or cannot be
    made or written (core.paths.check_output_folder). ValueError naming --output-dir and the directory."""
    paths = RunPaths(run_dir)
    check_output_folder(paths.root, "--output-dir", "a run's folder", "resume it",
                        marks=tuple(p.name for p in (paths.config, paths.request, paths.status)))
