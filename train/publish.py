"""Publish a run's student on the Hugging Face Hub with a model card: python -m train.publish --help

    python -m train.publish RUN --repo-id owner/name                 # push (token from --token, HF_TOKEN or login)
    python -m train.publish RUN --repo-id owner/name --dry-run OUT   # only write the folder that would be pushed

RUN is a run directory or a run id under the runs folder; a run that has not finished publishes the student of its
newest checkpoint that can be read (a note on stderr names it and any unreadable newer one). The folder holds the
student in safetensors, its tokenizer and a README.md model card: YAML metadata for the Hub (language, license,
library, pipeline, base model, tags), the recipe and the training data read from the run's config.json, and a table
in the DeepPavlov model card's format (model | size | parameters | CPU latency | agreement and accuracy) with the
held-out figures of the run's last evaluation. The push is huggingface_hub's create_repo(exist_ok=True) and
upload_folder.
"""
from __future__ import annotations

if __name__ == "__main__":  # read the flags (train.cli) before the imports below load torch: see run_command
    from train.cli import publish_command

    publish_command()

import argparse
import os
import re
import shlex
import shutil
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import torch
from huggingface_hub import HfApi, ModelCard, ModelCardData
from transformers import AutoConfig, AutoModelForMaskedLM, AutoTokenizer
from transformers.utils import logging as hf_logging

from core.distill.losses import LOSS_PARTS
from core.formatting import count, error_sentence
from core.models import zoo
from core.models.hub import format_bytes
from core.models.student import dims, num_layers, teacher_depth
from core.paths import ASSETS, check_output_folder
from core.runs.checkpoints import latest_checkpoint, step_of
from core.runs.store import (
    RunPaths,
    find_run_dir,
    model_source,
    no_student_message,
    read_json,
    read_metrics,
    read_status,
    run_model,
)
from core.saving import save_model, save_tokenizer
from train.cli import DEFAULT_LICENSE, publish_parser
from train.config import BUNDLED_CORPUS, DistillConfig

CARD_LANGUAGE = "ru"
SPEED_SEQ_LEN = 512  # the DeepPavlov card's sequence length; shorter when the model accepts fewer positions
SPEED_RUNS = 5  # timed forward passes per model, after one warm-up pass
TOKEN_HELP = "https://huggingface.co/settings/tokens"

# What each loss weight multiplies, in the words of the card; keys are LossWeights' fields.
LOSS_TERMS = {
    "alpha_kl": "KL divergence between the teacher's and the student's output distributions, both softened by the "
                "temperature T, times T²",
    "alpha_mlm": "Masked-language-modelling cross-entropy of the student against the true masked tokens",
    "alpha_cos": "Cosine embedding loss between each student hidden state and the mean of its group of consecutive "
                 "teacher hidden states",
    "alpha_att": "MSE between each student attention map and the mean of its group of teacher attention maps",
    "alpha_hidden_mse": "MSE between the student's hidden states, projected to the teacher's width, and the "
                        "teacher's hidden states",
}
ARCHITECTURES = {"bert": "BERT", "distilbert": "DistilBERT"}  # model_type -> the name the field uses
SHORT_TERMS = {"alpha_kl": "KL", "alpha_mlm": "MLM", "alpha_cos": "cos", "alpha_att": "att",
               "alpha_hidden_mse": "hidden MSE"}


@dataclass
class ModelFigures:
    """One row of the card's table; None where a figure is not known.

    size_mb: fp32 bytes of the parameters in MiB, as the DeepPavlov card counts size; cpu_latency_s: median seconds
    of one forward pass at batch 1; agreement, mlm_acc: held-out shares from 0 to 1."""
    label: str
    size_mb: float | None = None
    params: int | None = None
    cpu_latency_s: float | None = None
    agreement: float | None = None
    mlm_acc: float | None = None


@dataclass
class SpeedNote:
    """How the latencies were measured: sequence length in tokens, the processor and torch's thread count."""
    seq_len: int
    cpu: str
    threads: int


@dataclass
class CardFacts:
    """The card's key figures, which a dry run prints: the optimizer steps the published student was trained (of
    the run's max_steps), its fp32 size in MiB and parameters, and the last held-out evaluation it quotes (step and
    shares from 0 to 1; None where the run made none)."""
    steps: int
    max_steps: int
    size_mb: float
    params: int
    evaluated_step: int | None = None
    agreement: float | None = None
    mlm_acc: float | None = None


@dataclass
class Published:
    """What publish() did: the folder written (None after a push, whose folder is temporary), the repository's
    address (None for a dry run), the note of a run published from a checkpoint (StudentToPublish.note), and the
    card's key figures (a dry run's)."""
    folder: Path | None
    url: str | None
    note: str = ""
    facts: CardFacts | None = None


# -- the run

@dataclass
class StudentToPublish:
    """The model folder to publish; the step it was trained to (None: the finished run's final/); and, for a run
    that has not finished, one or more sentences saying which checkpoint is published and which were unreadable."""
    path: Path
    step: int | None = None
    note: str = ""


def student_to_publish(run_dir: Path) -> StudentToPublish:
    """final/ of a finished run; else the student of its newest readable checkpoint (core.runs.run_model, the
    reader resume and run:<id> use, which passes over unreadable checkpoints and names them). ValueError when the
    run has saved no checkpoint, or none can be read (each named)."""
    source = model_source(run_dir)
    if source and source[0] == "final":
        return StudentToPublish(source[1])
    state = read_status(run_dir).get("state")
    how = f"has not finished (it is {state})" if state in ("queued", "running", "stopped", "failed") else \
        "has no finished student (no final/ folder)"
    if latest_checkpoint(run_dir) is None:
        raise ValueError(no_student_message(run_dir))
    model = run_model(run_dir)
    checkpoint = (read_json(model.path / "source.json", {}) or {}).get("checkpoint") or ""
    step = step_of(Path(checkpoint))
    note = (f"Run '{run_dir.name}' {how}: its student at step {step:,} ({checkpoint}), the newest checkpoint that "
            f"can be read, is published.")
    return StudentToPublish(model.path, step, f"{note} {model.notice}" if model.notice else note)


def run_config(run_dir: Path) -> DistillConfig:
    """The run's config.json as a DistillConfig; ValueError when it cannot be read."""
    values = read_json(RunPaths(run_dir).config)
    if not isinstance(values, dict):
        raise ValueError(f"The config.json of run '{run_dir.name}' cannot be read as JSON.")
    try:
        return DistillConfig.from_dict({k: v for k, v in values.items() if k != "output_dir"})
    except (TypeError, ValueError) as error:
        raise ValueError(f"The config.json of run '{run_dir.name}' is not one this version of the lab reads: "
                         f"{error_sentence(error)}") from None


def last_evaluation(records: list[dict]) -> dict:
    """The last metrics row holding held-out figures (eval_*), or {} when none does."""
    return next((r for r in reversed(records) if any(k.startswith("eval_") for k in r)), {})


def published_status(run_dir: Path, step: int | None) -> dict:
    """The run's status.json as the card reads it: for a checkpoint's student (step not None), the step it was
    trained to, not the run's later ones."""
    status = read_status(run_dir)
    return status if step is None else {**status, "step": step}


def published_evaluation(run_dir: Path, step: int | None) -> dict:
    """The last evaluation of the published student: up to `step` for a checkpoint's (None: the run's last)."""
    return last_evaluation([r for r in read_metrics(run_dir) if step is None or r["step"] <= step])


def trained_steps(cfg: DistillConfig, status: dict) -> int:
    return int(status.get("step") or cfg.max_steps)


def parameter_summary(student_config) -> dict:
    """zoo.model_summary (fp32 size in MiB, parameters) of a model of this config."""
    with torch.device("meta"):  # counts parameters without allocating them
        return zoo.model_summary(AutoModelForMaskedLM.from_config(student_config))


def card_facts(run_dir: Path, student_dir: Path, step: int | None = None) -> CardFacts:
    """The key figures of the card model_card writes for `student_dir` (step: as model_card's)."""
    cfg, evaluation = run_config(run_dir), published_evaluation(run_dir, step)
    summary = parameter_summary(AutoConfig.from_pretrained(student_dir))
    return CardFacts(trained_steps(cfg, published_status(run_dir, step)), cfg.max_steps, summary["size_mb"],
                     summary["params"], evaluation.get("step", 0) if evaluation else None,
                     evaluation.get("eval_agreement"), evaluation.get("eval_mlm_acc"))


def check_repo_id(repo_id: str) -> str:
    """`repo_id` stripped; ValueError unless it is owner/name."""
    repo_id = (repo_id or "").strip()
    if not zoo.HUB_ID_PATTERN.match(repo_id):
        raise ValueError(f"The repository id '{repo_id}' is not of the form owner/name (for example "
                         "your-name/distilrubert-tiny).")
    return repo_id


LICENSE_ID = re.compile(r"[a-z0-9][a-z0-9.+-]*")  # the Hub's license identifiers: apache-2.0, cc-by-sa-4.0, other


def check_license(license: str) -> str:
    """`license` stripped; ValueError unless it is shaped as a Hub license identifier (lower case, digits, '.', '-',
    '+'), which the card's metadata carries as it is."""
    license = (license or "").strip()
    if not LICENSE_ID.fullmatch(license):
        raise ValueError(f"The license '{license}' is not a license identifier such as apache-2.0, mit or cc-by-4.0 "
                         "(the Hub's list: https://huggingface.co/docs/hub/repositories-licenses); give 'other' for "
                         "a license not on it.")
    return license


# -- the teacher

def known_teacher(teacher: str) -> zoo.KnownModel | None:
    """The KNOWN_MODELS entry of a teacher named by the lab's name or by its Hub id."""
    return zoo.KNOWN_MODELS.get(teacher) or next((m for m in zoo.KNOWN_MODELS.values() if m.hub_id == teacher), None)


def teacher_label(teacher: str) -> str:
    """The teacher's name as a card shows it: a local folder by its folder name, never a path of this machine."""
    path = Path(teacher).expanduser()
    if teacher.startswith((".", "/", "~")) or (os.sep in teacher and path.exists()):
        return path.resolve().name
    return teacher


def base_model_of(teacher: str) -> str | None:
    """The card's base_model: the Hub id of a known DeepPavlov teacher, or the teacher's own when it was named by a
    Hub id (owner/name, not a folder here); None for a teacher with no Hub id (a local folder, the bundled teacher, a
    run's student), since the Hub reads base_model as a model id (`--base-model` names one)."""
    known = known_teacher(teacher)
    if known:
        return known.hub_id
    label = teacher_label(teacher)
    return teacher if label == teacher and teacher.count("/") == 1 and not teacher.startswith("run:") else None


def teacher_figures(teacher: str, evaluation: dict) -> ModelFigures:
    """The teacher's row: size and parameters from its config alone (no weights), else the size the DeepPavlov
    card published; its held-out masked-token accuracy from the run's evaluation."""
    size_mb = params = None
    try:
        from core.bench.plan import model_shape
        params = model_shape(teacher).params
        size_mb = round(params * 4 / 2**20, 1)
    except (ValueError, OSError):  # a Hub teacher neither cached nor reachable, a folder gone since the run
        known = known_teacher(teacher)
        size_mb = known.published.get("size_mb") if known else None
    return ModelFigures(f"Teacher ({teacher_label(teacher)})", size_mb, params,
                        mlm_acc=evaluation.get("eval_teacher_mlm_acc"))


# -- speed

def on_this_machine(name: str) -> bool:
    """Whether the model `name` loads without a download: bundled, a local folder, a run, or a cached Hub model."""
    try:
        source, location = zoo.resolve(name)
    except ValueError:
        return False
    return source != "hub" or zoo.is_cached(location)


def measure_latency(student_dir: Path, teacher: str) -> tuple[dict[str, float], SpeedNote]:
    """CPU latency in seconds (median of SPEED_RUNS forward passes, batch 1, float32) of the student folder and,
    when it is on this machine, the teacher; keyed by str(student_dir) and the teacher's name; measured by
    core.bench."""
    from core.bench import BenchConfig, run_benchmark
    from core.bench.machine import machine_dict
    seq_len = min(SPEED_SEQ_LEN, dims(AutoConfig.from_pretrained(student_dir))["max_positions"])

    def config(models: list[str]) -> BenchConfig:
        return BenchConfig(models=models, device="cpu", batch_sizes=[1], seq_len=seq_len, modes=["reference"],
                           runs=SPEED_RUNS, warmup=1)

    report = None
    if on_this_machine(teacher):  # a teacher still on the Hub is not downloaded only to be timed
        try:
            report = run_benchmark(config([str(student_dir), teacher]))
        except ValueError:  # the teacher does not load here after all: the student alone
            report = None
    report = report or run_benchmark(config([str(student_dir)]))
    machine = machine_dict("cpu")
    latencies = {row["model"]: row["latency_s"] for row in report["rows"]}
    return latencies, SpeedNote(seq_len, machine["cpu_model"], machine["torch_threads"])


# -- the card

def percent(share: float | None) -> str:
    return "—" if share is None else f"{share:.1%}"


def megabytes(size_mb: float | None) -> str:
    if size_mb is None:
        return "—"
    return f"{size_mb:,.0f}" if size_mb >= 100 else f"{size_mb:.1f}"


def millions(params: int | None) -> str:
    if params is None:
        return "—"
    return f"{params / 1e6:.1f}M" if params >= 10e6 else f"{params / 1e6:.2f}M"


def seconds(latency: float | None) -> str:
    return "—" if latency is None else f"{latency:.4g}"


def figures_table(rows: list[ModelFigures]) -> str:
    """The rows as a Markdown table in the DeepPavlov card's layout."""
    lines = ["| Model | Size, MB | Parameters | CPU latency, s | Top-1 agreement with the teacher | "
             "Masked-token accuracy |",
             "|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r.label} | {megabytes(r.size_mb)} | {millions(r.params)} | {seconds(r.cpu_latency_s)} | "
                     f"{percent(r.agreement)} | {percent(r.mlm_acc)} |")
    return "\n".join(lines)


def applying_weights(cfg: DistillConfig) -> list[str]:
    """The loss weights a run of this configuration uses (its recipe's terms), in the formula's order."""
    names = ["alpha_" + part.removeprefix("loss_") for part in LOSS_PARTS]
    skipped = {"alpha_cos", "alpha_att"} if cfg.reduced_vocab else {"alpha_hidden_mse"}
    return [name for name in names if name not in skipped]


def recipe_lines(cfg: DistillConfig, student_config, teacher_layers: int | None) -> list[str]:
    """The card's recipe: each loss with its weight, the total formula, the temperature, the student's layers and
    where they started, the optimiser."""
    w = cfg.losses
    used = [name for name in applying_weights(cfg) if getattr(w, name) > 0]
    formula = " + ".join(f"{getattr(w, name):g} · {SHORT_TERMS[name]}" for name in used)
    lines = [f"- {LOSS_TERMS[name]}: `{name}` = {getattr(w, name):g}" + ("" if getattr(w, name) > 0 else
             " (not used)") for name in applying_weights(cfg)]
    where = "masked positions only" if w.kl_masked_only else "every non-padding token"
    lines += [f"- Temperature T = {w.temperature:g}; KL taken over {where}.",
              f"- Total loss = {formula}."]
    layers = num_layers(student_config)
    of_teacher = f" of the teacher's {teacher_layers}" if teacher_layers else ""
    lines.append(f"- Student layers: {layers}{of_teacher} ({architecture(student_config)}).")
    init = getattr(student_config, "init_layers", None) or cfg.init_layers
    groups = getattr(student_config, "teacher_layer_groups", None)
    if init:
        lines.append(f"- Initialised from teacher layers {', '.join(map(str, init))} (0-based), with the teacher's "
                     "embeddings and masked-LM head.")
    elif groups:
        lines.append("- Initialised from the means of teacher layer groups "
                     f"{'; '.join(', '.join(map(str, g)) for g in groups)} (1-based).")
    if cfg.reduced_vocab:
        width = f", width {cfg.student_hidden}" if cfg.student_hidden else ""
        lines.append(f"- Own WordPiece vocabulary of {cfg.student_vocab_size:,} entries{width}; logits aligned with "
                     f"the teacher's by `{cfg.align}` ({cfg.reduce_op} over pieces).")
    lines.append(f"- AdamW (betas {cfg.betas[0]:g}, {cfg.betas[1]:g}; eps {cfg.adam_eps:g}), peak learning rate "
                 f"{cfg.lr:g} after {cfg.warmup:.0%} linear warm-up, weight decay {cfg.weight_decay:g}, gradient "
                 f"norm clipped at {cfg.grad_clip:g}, seed {cfg.seed}.")
    return lines


def architecture(config) -> str:
    return ARCHITECTURES.get(config.model_type, config.model_type)


MARKDOWN_SPECIALS = re.compile(r"([\\`*_\[\]<>|~#&])")


def card_text(text: str) -> str:
    """A name a person chose (an uploaded file's) as the card's Markdown shows it: as typed, on one line, its
    emphasis, code, link, HTML and table characters backslashed."""
    return MARKDOWN_SPECIALS.sub(r"\\\1", " ".join(str(text).splitlines()))


def count_lines(path: Path) -> int | None:
    """Non-blank lines of a text file, or None when it cannot be read here."""
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            return sum(1 for line in handle if line.strip())
    except OSError:
        return None


def data_lines(cfg: DistillConfig, run_dir: Path, status: dict, evaluation: dict) -> list[str]:
    """The card's training data: corpus, its lines, steps, batch size, max length, held-out evaluation."""
    train_path, valid_path = cfg.corpus_paths()
    if cfg.corpus == BUNDLED_CORPUS:
        corpus = ("RuDistil Lab's bundled corpus of conversational Russian "
                  f"(`{train_path.relative_to(ASSETS.parent)}`)")
    elif Path(cfg.corpus).resolve() == RunPaths(run_dir).corpus.resolve():
        # a run saved before corpus_name was kept has only its own copy's name, which is not the person's
        named = f" as '{card_text(cfg.corpus_name)}'" if cfg.corpus_name else ""
        corpus = f"a corpus uploaded to RuDistil Lab{named}"
    else:
        corpus = f"`{Path(cfg.corpus).name}`"
    lines = count_lines(train_path)
    counted = f", {lines:,} non-blank lines" if lines else ""
    held = (f"the held-out file `{valid_path.name}`" if valid_path is not None
            else "5% of the corpus's lines held out from training")
    steps = trained_steps(cfg, status)
    accumulation = f" × {cfg.grad_accum} accumulated micro-batches" if cfg.grad_accum > 1 else ""
    out = [f"- Corpus: {corpus}{counted}.",
           f"- {count(steps, 'optimizer step')}, batch size {count(cfg.batch_size, 'line')} per process{accumulation}; "
           f"lines cut at {count(cfg.max_length, 'token')}; {cfg.mlm_probability:.0%} of tokens masked.",
           f"- Held-out evaluation: up to {cfg.eval_lines:,} lines of {held}."]
    if evaluation.get("eval_masked_positions"):
        out[-1] = out[-1][:-1] + f", {int(evaluation['eval_masked_positions']):,} masked tokens."
    return out


def card_data(cfg: DistillConfig, student_config, license: str, base_model: str | None) -> dict:
    """The card's YAML metadata as ModelCardData's keyword arguments."""
    return dict(language=CARD_LANGUAGE, license=license, library_name="transformers", pipeline_tag="fill-mask",
                base_model=base_model, tags=["knowledge-distillation", "distillation", student_config.model_type,
                                             "russian", "rudistil-lab"])


def model_card(run_dir: Path, repo_id: str, student_dir: Path, license: str = DEFAULT_LICENSE,
               base_model: str | None = None, latencies: dict[str, float] | None = None,
               speed: SpeedNote | None = None, step: int | None = None):
    """The README.md of the published folder as a huggingface_hub ModelCard.

    student_dir: the folder being published (its config gives the student's shape, size and parameters);
    latencies: CPU seconds keyed by str(student_dir) and the teacher's name, from measure_latency; step: the step
    of the checkpoint published from a run that has not finished (None: its final student)."""
    cfg, latencies = run_config(run_dir), latencies or {}
    status, evaluation = published_status(run_dir, step), published_evaluation(run_dir, step)
    student_config = AutoConfig.from_pretrained(student_dir)
    summary = parameter_summary(student_config)
    d = dims(student_config)
    teacher_row = teacher_figures(cfg.teacher, evaluation)
    teacher_row.cpu_latency_s = latencies.get(cfg.teacher)
    student_row = ModelFigures(f"Student ({repo_id})", summary["size_mb"], summary["params"],
                               latencies.get(str(student_dir)), evaluation.get("eval_agreement"),
                               evaluation.get("eval_mlm_acc"))
    data = ModelCardData(**card_data(cfg, student_config, license, base_model or base_model_of(cfg.teacher)))
    known = known_teacher(cfg.teacher)
    teacher_name = teacher_label(cfg.teacher)
    teacher_link = f"[{teacher_name}](https://huggingface.co/{known.hub_id})" if known and known.hub_id else \
        f"`{teacher_name}`"
    name = repo_id.split("/")[-1]
    evaluated_step = evaluation.get("step", 0)  # the evaluation's step; `step` stays the published checkpoint's
    evaluated = (f"Held-out figures from the run's last evaluation (step {evaluated_step:,}): top-1 agreement is the "
                 "share of masked tokens where the student's first guess is the teacher's; masked-token accuracy is "
                 "the share where a model's first guess is the true token." if evaluation else
                 "The run logged no held-out evaluation.")
    if evaluation and step is not None and evaluated_step < step:  # stopped between an evaluation and a checkpoint
        evaluated += (f" They describe the student at step {evaluated_step:,}, before the published step-{step:,} "
                      "weights: the run stopped before it evaluated them.")
    if speed is not None:
        timed = (f"CPU latency: median of {SPEED_RUNS} forward passes of one random sequence of {speed.seq_len} "
                 f"tokens, float32, on {speed.cpu} ({speed.threads} threads), measured when the model was published. "
                 "DeepPavlov's card measured latency the same way (batch 1, 512 tokens) on a Xeon E5-2698 v4: "
                 "compare figures measured on one machine only.")
    else:
        timed = "CPU latency was not measured (`python -m train.publish ... --measure-speed` measures it)."
    body = "\n".join([
        f"# {name}",
        "",
        f"A Russian masked language model ({architecture(student_config)}, {num_layers(student_config)} layers, "
        f"{d['hidden']} wide, {d['heads']} heads, {d['vocab']:,}-entry vocabulary, {millions(summary['params'])} "
        f"parameters) distilled from the teacher {teacher_link} with RuDistil Lab (`python -m train.distill`), "
        "the recipe of DistilBERT and DeepPavlov's DistilRuBERT.",
        "",
        "## Recipe",
        "",
        *recipe_lines(cfg, student_config, teacher_depth(cfg.teacher)),
        "",
        "## Training data",
        "",
        *data_lines(cfg, run_dir, status, evaluation),
        "",
        "## Size, speed and agreement",
        "",
        figures_table([teacher_row, student_row]),
        "",
        evaluated,
        "",
        timed,
        "",
        "## Use",
        "",
        "```python",
        "from transformers import pipeline",
        "",
        f'fill = pipeline("fill-mask", model="{repo_id}")',
        f'fill("Привет, как {_mask_token(student_dir)}?")',
        "```",
        "",
        f"Published from run `{run_dir.name}` of RuDistil Lab with `python -m train.publish`."
        + (f" The run had not finished: this is its student at step {step:,} of {cfg.max_steps:,}, its newest "
           "checkpoint that could be read." if step is not None else ""),
        "",
    ])
    return ModelCard(f"---\n{data.to_yaml()}\n---\n\n{body}")


def _mask_token(student_dir: Path) -> str:
    return AutoTokenizer.from_pretrained(student_dir).mask_token or "[MASK]"


# -- the folder and the push

def write_folder(run_dir: Path, folder: Path, repo_id: str, license: str = DEFAULT_LICENSE,
                 base_model: str | None = None, measure_speed: bool = False) -> Path:
    """Write the run's student (safetensors; student_to_publish's folder), its tokenizer and README.md into `folder`
    (created; it must not exist or be empty). Returns `folder`. ValueError when the run has no readable student or
    the folder is not empty."""
    student, teacher = student_to_publish(run_dir), run_config(run_dir).teacher
    final = student.path
    folder = Path(folder)
    check_output_folder(folder, "The folder")
    created = not folder.exists()
    folder.mkdir(parents=True, exist_ok=True)
    try:
        try:
            model = zoo.from_library(run_dir.name, AutoModelForMaskedLM.from_pretrained, final)
            save_model(model, folder)  # transformers 5 writes model.safetensors, never pickles
            save_tokenizer(AutoTokenizer.from_pretrained(final), folder)
        except OSError as error:
            raise ValueError(f"Could not write the student of run '{run_dir.name}' to '{folder}': "
                             f"{error_sentence(error)}") from None
        if not (folder / "model.safetensors").is_file():
            raise ValueError(f"The student of run '{run_dir.name}' was not saved as model.safetensors; save it "
                             "again with transformers 5.")
        latencies, speed = measure_latency(folder, teacher) if measure_speed else ({}, None)
        model_card(run_dir, repo_id, folder, license, base_model, latencies, speed, student.step).save(
            folder / "README.md")
    except BaseException:  # a half-written folder would pass for a finished one
        for item in folder.iterdir():  # the folder was new or empty: what is in it now is ours
            if item.is_dir():
                shutil.rmtree(item, ignore_errors=True)
            else:
                item.unlink(missing_ok=True)
        if created:
            folder.rmdir()
        raise
    return folder


def hub_error_sentence(error: Exception, repo_id: str) -> str:
    """What a failed create_repo or upload_folder means, as one sentence a person can act on."""
    from huggingface_hub.errors import HfHubHTTPError, OfflineModeIsEnabled

    if isinstance(error, OfflineModeIsEnabled):
        return ("HF_HUB_OFFLINE is set, so nothing can be pushed to the Hugging Face Hub: unset it where there is "
                "internet, or write the folder with --dry-run OUT_DIR and upload it from another machine "
                f"(hf upload {repo_id} OUT_DIR).")
    if isinstance(error, HfHubHTTPError):
        status = getattr(error.response, "status_code", None)
        if status == 401:
            return (f"The Hugging Face Hub refused the token (401 Unauthorized): give a valid token with write access "
                    f"(--token or HF_TOKEN; tokens are made at {TOKEN_HELP}).")
        if status == 403:
            return (f"The token may not write to {repo_id} (403 Forbidden): use a token with write access to the "
                    f"'{repo_id.split('/')[0]}' namespace, or a repository id under your own name.")
        said = error_sentence(error.server_message or error).rstrip(".")
        return f"The Hugging Face Hub refused to publish {repo_id} ({status or type(error).__name__}: {said}); " \
               "fix what it says and publish again."
    return ("The Hugging Face Hub cannot be reached from this machine (no network or a proxy in the way): publish "
            f"where there is internet, or write the folder with --dry-run OUT_DIR and upload it from there "
            f"(hf upload {repo_id} OUT_DIR).")


def hub_call(repo_id: str, call, /, *args, **kwargs):
    """call(*args, **kwargs), a huggingface_hub call about `repo_id`; an unreachable Hub, an offline mode or a
    refusal becomes ValueError(hub_error_sentence)."""
    from huggingface_hub.errors import HTTPError

    try:
        return call(*args, **kwargs)
    except (HTTPError, OSError) as error:  # HfHubHTTPError and OfflineModeIsEnabled are both
        raise ValueError(hub_error_sentence(error, repo_id)) from None


def hub_token(token: str | None = None) -> str:
    """The token to push with: `token`, else HF_TOKEN, else a saved `hf auth login`. ValueError when there is none."""
    if token and token.strip():
        return token.strip()
    from huggingface_hub import get_token
    try:
        found = get_token()
    except Exception:  # an OIDC exchange that failed: the same as no token for a person at a terminal
        found = None
    if not found:
        raise ValueError(f"No Hugging Face token: pass --token, set HF_TOKEN, or run `hf auth login` (a token with "
                         f"write access, made at {TOKEN_HELP}); or write the folder only with --dry-run OUT_DIR.")
    return found


def publish(run: str | Path, repo_id: str, token: str | None = None, private: bool = False,
            license: str = DEFAULT_LICENSE, base_model: str | None = None, measure_speed: bool = False,
            dry_run_dir: str | Path | None = None) -> Published:
    """Publish a run's student (final/, or for a run that has not finished its newest readable checkpoint's, with a
    note saying so): the command line and the Distill tab both call this.

    With dry_run_dir, only write the folder there. Else create the repository (exist_ok) first, so that a bad token
    or an unreachable Hub fails before anything is written, then write the folder to a temporary folder, upload it
    and remove it. Raises ValueError with one sentence for bad input (not a run, a run without a readable student, a
    malformed repo id or license, a non-empty dry-run folder), a missing token, or a Hub that cannot be reached or
    refuses."""
    repo_id, license = check_repo_id(repo_id), check_license(license)
    run_dir = find_run_dir(run)
    if dry_run_dir is not None:
        student = student_to_publish(run_dir)
        folder = write_folder(run_dir, Path(dry_run_dir), repo_id, license, base_model, measure_speed)
        return Published(folder, None, student.note, card_facts(run_dir, folder, student.step))
    note = student_to_publish(run_dir).note  # a run without a readable student is refused before the token is asked
    api = HfApi(token=hub_token(token))
    # the repository first: a bad token or no network fails in a second, before the folder is written
    url = hub_call(repo_id, api.create_repo, repo_id, private=private, exist_ok=True, repo_type="model")
    folder = Path(tempfile.mkdtemp(prefix="rudistil-publish-"))
    try:
        write_folder(run_dir, folder, repo_id, license, base_model, measure_speed)
        hub_call(repo_id, api.upload_folder, repo_id=repo_id, folder_path=str(folder), repo_type="model",
                 commit_message="Publish a student distilled with RuDistil Lab")
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return Published(None, str(url) if url else f"https://huggingface.co/{repo_id}", note)


# -- the command line

def dry_run_lines(folder: Path, repo_id: str, facts: CardFacts) -> list[str]:
    """What a dry run prints: the folder and the repository a push would upload it to, each file with its size (in
    decimal units, as the Hub shows them), and the card's key figures."""
    files = sorted(p for p in folder.rglob("*") if p.is_file())
    names, sizes = [str(p.relative_to(folder)) for p in files], [p.stat().st_size for p in files]
    width = max(map(len, names), default=0)
    if facts.evaluated_step is None:
        evaluated = "no held-out evaluation"
    else:
        evaluated = (f"last evaluation at step {facts.evaluated_step:,}: top-1 agreement with the teacher "
                     f"{percent(facts.agreement)}, masked-token accuracy {percent(facts.mlm_acc)}")
    return [f"Wrote {folder}, the folder a push to {repo_id} uploads:",
            *(f"  {name:<{width}}  {format_bytes(size):>9}" for name, size in zip(names, sizes)),
            f"  {count(len(files), 'file')}, {format_bytes(sum(sizes))} in all",
            f"Card: {count(facts.steps, 'optimizer step')} of {facts.max_steps:,}; {evaluated}; size "
            f"{megabytes(facts.size_mb)} MB (fp32, as the card's table counts it), {millions(facts.params)} "
            "parameters.",
            f"To push this folder as it is: hf upload {repo_id} {shlex.quote(str(folder))}"]


def main(argv: list[str] | None = None) -> int:
    """The command line in this process: argparse exits 2 on a malformed flag, then run() returns the exit code."""
    return run(publish_parser().parse_args(argv))


def run(args: argparse.Namespace) -> int:
    """Publish, or with --dry-run write and describe the folder; exit code 2 and one line for what a person can fix."""
    hf_logging.disable_progress_bar()  # loading bars would bury the one-line result
    try:
        result = publish(args.run, args.repo_id, token=args.token, private=args.private, license=args.license,
                         base_model=args.base_model, measure_speed=args.measure_speed, dry_run_dir=args.dry_run)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if result.note:
        print(f"note: {result.note}", file=sys.stderr)
    if result.folder is None:
        print(f"published {result.url}")
    else:
        print("\n".join(dry_run_lines(result.folder, check_repo_id(args.repo_id), result.facts)))
    return 0
