"""The models the lab knows, in one table, and how to load any of them.

A model is named in one of five ways:
  - a known name from KNOWN_MODELS ("rubert-base-cased-conversational", "bundled-teacher", ...);
  - "arch:NAME" (NAME a known name): that model's exact architecture with random weights (for speed measurements);
  - "run:RUN_ID": the student of a distillation run (its final model, else its last checkpoint);
  - "run:RUN_ID@init": that run's student as it was before its first step;
  - a path to a local Hugging Face model directory, or to a run's directory (loaded as its run:RUN_ID);
  - a Hugging Face Hub id ("owner/name").
Every loader goes through AutoModelForMaskedLM / AutoTokenizer and never enables remote code, and every loaded model
passes the same checks: a config.json that names its model_type, a tokenizer with a vocabulary, a cased vocabulary
read cased, a masked-LM head that was in the checkpoint (not freshly initialised), and text composed to NFC before
tokenising.
"""
from __future__ import annotations

import functools
import json
import logging
import os
import pickle
import re
import socket
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import torch
from safetensors import SafetensorError
from transformers import AutoConfig, AutoModelForMaskedLM, AutoTokenizer, PreTrainedModel, PreTrainedTokenizerBase

from core.formatting import error_sentence
from core.models.tokenizer import (
    BERT_SPECIALS,
    compose_unicode,
    folds_case_or_accents,
    is_cased_vocabulary,
    wordpiece_from_vocab,
)
from core.paths import ASSETS
from core.runs import RunModel, RunPaths, run_dir_of, run_model, run_version

ARCH_DIR = ASSETS / "archs"
BUNDLED_DIR = ASSETS / "models"
HUB_ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,95}/[A-Za-z0-9][A-Za-z0-9._-]{0,95}$")

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class KnownModel:
    name: str
    role: str  # "teacher" or "student"
    description: str
    hub_id: str | None = None
    bundled_dir: str | None = None  # folder name under assets/models
    published: dict = field(default_factory=dict)  # figures from the DeepPavlov model card


KNOWN_MODELS: dict[str, KnownModel] = {m.name: m for m in [
    KnownModel("rubert-base-cased-conversational", "teacher",
               "DeepPavlov Conversational RuBERT: BERT, 12 layers, 768 wide, 119,547-word vocabulary, "
               "177.9M parameters",
               hub_id="DeepPavlov/rubert-base-cased-conversational",
               published=dict(size_mb=679, cpu_latency_s=0.655, gpu_latency_s=0.031,
                              cpu_throughput=0.3754, gpu_throughput=36.4902)),
    KnownModel("distilrubert-base-cased-conversational", "student",
               "DistilRuBERT-base: DistilBERT, 6 layers, 768 wide, 119,547-word vocabulary, 135.4M parameters",
               hub_id="DeepPavlov/distilrubert-base-cased-conversational",
               published=dict(size_mb=517, cpu_latency_s=0.3285, gpu_latency_s=0.0212,
                              cpu_throughput=0.5803, gpu_throughput=52.2495)),
    KnownModel("distilrubert-small-cased-conversational", "student",
               "DistilRuBERT-small: DistilBERT, 2 layers, 768 wide, 119,547-word vocabulary, 107.1M parameters",
               hub_id="DeepPavlov/distilrubert-small-cased-conversational",
               published=dict(size_mb=409, cpu_latency_s=0.1656, gpu_latency_s=0.015,
                              cpu_throughput=0.9692, gpu_throughput=71.3553)),
    KnownModel("distilrubert-tiny-cased-conversational-v1", "student",
               "DistilRuBERT-tiny-v1: DistilBERT, 3 layers, 264 wide, 30,522-word vocabulary, 10.4M parameters",
               hub_id="DeepPavlov/distilrubert-tiny-cased-conversational-v1",
               published=dict(size_mb=41)),
    KnownModel("bundled-teacher", "teacher",
               "The lab's own tiny Russian BERT (4 layers, 300 wide), pretrained on the bundled corpus; works offline",
               bundled_dir="teacher"),
    KnownModel("bundled-student", "student",
               "The lab's own 2-layer student, distilled from bundled-teacher by train.distill; works offline",
               bundled_dir="student"),
]}

DEEPPAVLOV_PAIR = ("rubert-base-cased-conversational", "distilrubert-base-cased-conversational")
BUNDLED_PAIR = ("bundled-teacher", "bundled-student")


@dataclass
class LoadedModel:
    name: str
    model: PreTrainedModel
    tokenizer: PreTrainedTokenizerBase
    source: str  # "bundled", "hub", "local", "arch" or "run"
    notice: str = ""  # one line about what loading had to correct (e.g. a cased vocabulary read cased), else empty


def arch_names() -> list[str]:
    return sorted(p.stem for p in ARCH_DIR.glob("*.json"))


def arch_config(name: str):
    """The exact architecture of a known model as a transformers config (numbers only, no weights)."""
    path = ARCH_DIR / f"{name}.json"
    if not path.is_file():
        raise ValueError(f"No architecture named '{name}'. Known architectures: {', '.join(arch_names())}.")
    data = json.loads(path.read_text(encoding="utf-8"))
    return AutoConfig.for_model(data.pop("model_type"), **data)


@functools.lru_cache(maxsize=1)
def hub_reachable(timeout_s: float = 1.5) -> bool:
    """True when the Hugging Face Hub can be reached; cached for the life of the process."""
    if os.environ.get("HF_HUB_OFFLINE", "0").lower() in ("1", "true", "yes"):
        return False
    try:
        with socket.create_connection(("huggingface.co", 443), timeout=timeout_s):
            return True
    except OSError:
        return False


WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")  # transformers reads the first it finds: one is enough
VOCABULARY_FILES = ("vocab.txt", "tokenizer.json")  # a tokenizer needs one of them


def is_cached(hub_id: str, cache_dir: str | Path | None = None) -> bool:
    """True when the Hugging Face cache (default: transformers' own) holds what loading `hub_id` needs offline:
    config.json, a weights file and a vocabulary. A download cut short after config.json is not cached."""
    from huggingface_hub import try_to_load_from_cache

    def found(filename: str) -> bool:
        where = try_to_load_from_cache(hub_id, filename, cache_dir=str(cache_dir) if cache_dir else None)
        return isinstance(where, str)

    return (found("config.json") and any(found(f) for f in WEIGHT_FILES)
            and any(found(f) for f in VOCABULARY_FILES))


def is_available(name: str) -> bool:
    """Whether `name` can be loaded now without waiting on a network that is not there."""
    known = KNOWN_MODELS.get(name)
    if known and known.bundled_dir:
        return (BUNDLED_DIR / known.bundled_dir / "config.json").is_file()
    hub_id = known.hub_id if known else name
    if known is None and Path(name).exists():
        return True
    return is_cached(hub_id) or hub_reachable()


def default_pair() -> tuple[tuple[str, str], str]:
    """The teacher/student pair to start with, and a one-line notice when it is not the DeepPavlov pair."""
    if all(is_available(n) for n in DEEPPAVLOV_PAIR):
        return DEEPPAVLOV_PAIR, ""
    return BUNDLED_PAIR, ("The Hugging Face Hub is out of reach and the DeepPavlov models are not cached, "
                          "so the lab uses its bundled tiny Russian teacher and student.")


def resolve(name: str) -> tuple[str, str]:
    """Turn a model name into (source, location); raise ValueError with a sentence a person can act on."""
    name = (name or "").strip()
    if not name:
        if hub_reachable():
            raise ValueError("Choose a model: a known name, a Hub id such as "
                             "DeepPavlov/rubert-base-cased-conversational, or a local model folder.")
        # offline a Hub id loads only from the cache: name first what loads here
        raise ValueError(f"Choose a model: {' or '.join(BUNDLED_PAIR)}, run:RUN_ID for a run's student, or a local "
                         "model folder (the Hugging Face Hub is out of reach, so a Hub id loads only when it is "
                         "already cached).")
    if name in KNOWN_MODELS:
        known = KNOWN_MODELS[name]
        if known.bundled_dir:
            return "bundled", str(BUNDLED_DIR / known.bundled_dir)
        return "hub", known.hub_id
    if name.startswith("arch:"):
        arch_config(name[5:])  # validates the name
        return "arch", name[5:]
    if name.startswith("run:"):
        run_id, _ = run_name_parts(name)
        run_dir = run_dir_of(run_id)
        if not run_dir.is_dir():
            # the run's id only: the runs folder's path is this server's business
            # the terminal's user and the page's both read it: name both ways a run is made
            raise ValueError(f"There is no run '{run_id}' in this lab's runs folder: name a run that train.distill "
                             "or the Distill tab started (run:RUN_ID, RUN_ID being its folder's name), or start one.")
        return "run", str(run_dir)
    try:
        is_dir, exists = Path(name).expanduser().is_dir(), Path(name).expanduser().exists()
    except OSError as error:  # a name too long for a path, say: it is no folder here, and no Hub id either
        shown = name if len(name) <= 40 else name[:40] + "…"
        raise ValueError(f"The model '{shown}' ({len(name):,} characters) is not a known name, a Hub id or a folder "
                         f"this machine can open ({error.strerror or error}).") from None
    if is_dir:
        # a run's folder given by path loads as its run:ID does: its student, final/ or its newest checkpoint
        return ("run" if is_run_folder(name) else "local"), str(Path(name).expanduser().resolve())
    if exists:
        raise ValueError(f"'{name}' is a file, not a model folder: give the folder that holds its config.json, "
                         "weights and tokenizer files.")
    if name.startswith((".", "/", "~")) or os.sep in name.strip("/").replace("/", "", 1):
        raise ValueError(f"The folder '{name}' does not exist.")
    if HUB_ID_PATTERN.match(name):
        return "hub", name
    raise ValueError(f"Unknown model '{name}'. Use a known name ({', '.join(KNOWN_MODELS)}), "
                     "arch:NAME for a known name's architecture, run:RUN_ID for a run's student, a local model folder, "
                     "or a Hub id like owner/name.")


def is_run_folder(name: str) -> bool:
    """Whether `name` is the path of a run's directory (one with a status.json, as train.distill writes)."""
    try:
        return RunPaths(Path(name).expanduser()).status.is_file()
    except OSError:  # a name too long for a path
        return False


def run_name_parts(name: str) -> tuple[str, str | None]:
    """(RUN_ID, None) for "run:RUN_ID", (RUN_ID, "init") for "run:RUN_ID@init"; ValueError for any
    other copy named after '@' (run ids never hold '@')."""
    run_id, at, copy = name.strip()[4:].partition("@")
    if at and copy != "init":
        raise ValueError(f"'{name}' names an unknown copy of run '{run_id}': use run:{run_id} for its trained "
                         f"student or run:{run_id}@init for its student before training.")
    return run_id, copy or None


def run_student(name: str, run_dir: Path) -> RunModel:
    """The model folder that a "run:..." name loads, with its notice: init/ for "@init", else the run's current
    student (final/, else its newest checkpoint that can be read; the notice names any newer one that could not).
    Raises ValueError when that copy is not saved, or no checkpoint of the run can be read."""
    if name.startswith("run:") and run_name_parts(name)[1] == "init":
        init = RunPaths(run_dir).init
        if not (init / "config.json").is_file():
            raise ValueError(f"Run '{run_dir.name}' kept no copy of its student before training (it has no init "
                             "folder); only runs started by train.distill keep one, so load run:"
                             f"{run_dir.name} or start a new run.")
        return RunModel(init)
    return run_model(run_dir)


def run_student_dir(name: str, run_dir: Path) -> Path:
    """The model folder that a "run:..." name loads (run_student's folder, without its notice)."""
    return run_student(name, run_dir).path


def run_model_version(name: str) -> str | None:
    """What a loaded copy of a "run:..." model is a copy of, for caches: "init" for "@init" (it never changes),
    else the run's run_version ("final", the newest checkpoint's name, or None); for a run's folder given by path,
    its run_version. ValueError for a bad name."""
    if not name.startswith("run:"):
        return run_version(Path(name).expanduser().resolve())
    run_id, copy = run_name_parts(name)
    return copy if copy else run_version(run_dir_of(run_id))


def load(name: str, device: str | torch.device = "cpu", attentions: bool = False,
         dtype: torch.dtype = torch.float32) -> LoadedModel:
    """Load a masked LM and its tokenizer by any of the names above.

    attentions=True selects the eager attention kernel, the only one that returns attention maps. Raises ValueError
    with a sentence a person can act on when the name is unknown, the model is out of reach, the folder lacks a
    model_type or a vocabulary, or the checkpoint has no masked-LM head (a randomly initialised head predicts noise).
    A cased vocabulary paired with a lowercasing tokenizer is read cased, and `notice` says so; a run's student
    loaded from an older checkpoint because the newest cannot be read has a notice naming that file.
    """
    source, location = resolve(name)
    attn = "eager" if attentions else "sdpa"
    if source == "arch":
        return _load_arch(name, location, device, attn, dtype)
    run_notice = ""
    if source == "run":
        student = run_student(name, Path(location))
        location, run_notice = str(student.path), student.notice
    if source == "hub" and not is_cached(location) and not hub_reachable():
        raise ValueError(f"The model '{location}' is not in this machine's Hugging Face cache and the Hub cannot be "
                         "reached. Use a bundled model (bundled-teacher, bundled-student) or download it where there "
                         "is internet (hf download " + location + ") and copy the cache here.")
    check_config(name, config_file(source, location))
    tokenizer, notice = load_tokenizer(name, location)
    model, info = from_library(name, AutoModelForMaskedLM.from_pretrained, location, dtype=dtype,
                               attn_implementation=attn, output_loading_info=True)
    check_mlm_head(name, model, info["missing_keys"])
    model.to(device).eval()
    return LoadedModel(name, model, tokenizer, source, " ".join(n for n in (run_notice, notice) if n))


def from_library(name: str, loader, *args, **kwargs):
    """Call a transformers loader; what it raises for a bad model (unreadable weights, a missing file, a value it
    refuses) becomes one ValueError sentence naming the model."""
    try:
        return loader(*args, **kwargs)
    except (pickle.UnpicklingError, EOFError, SafetensorError):
        raise ValueError(f"The weights of '{name}' cannot be read: the file is damaged or is not a PyTorch or "
                         "safetensors checkpoint; download or save the model again.") from None
    except OSError as error:
        raise ValueError(f"Could not load '{name}' as a masked language model: {error_sentence(error)}") from None
    except ValueError as error:
        if "model_type" in str(error):
            raise ValueError(_no_model_type(name)) from None
        raise ValueError(f"'{name}' is not a masked language model this lab can load: "
                         f"{error_sentence(error)}") from None


def config_file(source: str, location: str) -> Path | None:
    """The config.json a load would read, when it is on this machine (a folder, or a Hub model already cached)."""
    if source == "hub":
        from huggingface_hub import try_to_load_from_cache
        found = try_to_load_from_cache(location, "config.json")
        return Path(found) if isinstance(found, str) else None
    return Path(location) / "config.json"


def check_config(name: str, path: Path | None) -> None:
    """Refuse a model folder whose config.json is missing, unreadable or names no model_type; ValueError."""
    if path is None:
        return  # a Hub model not cached yet: from_pretrained fetches it and its errors are mapped in load()
    if not path.is_file():
        raise ValueError(f"'{name}' has no config.json; a model folder holds config.json, the weights "
                         "(model.safetensors or pytorch_model.bin) and the tokenizer files (vocab.txt or "
                         "tokenizer.json).")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ValueError(f"The config.json of '{name}' cannot be read as JSON ({error_sentence(error)}); "
                         "fix or replace it.") from None
    if not isinstance(data, dict) or not data.get("model_type"):
        raise ValueError(_no_model_type(name))


def _no_model_type(name: str) -> str:
    return (f"The config.json of '{name}' has no \"model_type\", so transformers cannot tell which architecture "
            "it is (older BERT checkpoints lack it): add \"model_type\": \"bert\" to config.json (\"distilbert\" "
            "for a DistilBERT) and load it again.")


def load_tokenizer(name: str, location: str) -> tuple[PreTrainedTokenizerBase, str]:
    """The tokenizer of a model folder or Hub id, composing Unicode (NFC) first, and a notice (empty when none).

    A folder in DeepPavlov's layout (config.json, weights, vocab.txt) without tokenizer_config.json gets
    transformers' default do_lower_case=True, which turns the cased "Ёжик" into "е ##жи ##к". A vocabulary that holds
    upper-case letters or й/ё is therefore always read cased (do_lower_case=False, strip_accents=False).
    Raises ValueError when the tokenizer has no vocabulary beyond its special tokens (no vocab.txt or tokenizer.json).
    """
    tokenizer = from_library(name, AutoTokenizer.from_pretrained, location)
    vocab = tokenizer.get_vocab()
    if len(vocab) <= len(set(tokenizer.all_special_tokens)):
        raise ValueError(f"The tokenizer of '{name}' has no vocabulary beyond its {len(vocab)} special tokens; "
                         "the model folder needs its tokenizer files (vocab.txt or tokenizer.json).")
    notice = ""
    if folds_case_or_accents(tokenizer) and is_cased_vocabulary(vocab):
        tokenizer = from_library(name, AutoTokenizer.from_pretrained, location, do_lower_case=False,
                                 strip_accents=False)
        if folds_case_or_accents(tokenizer):
            raise ValueError(f"The tokenizer of '{name}' lowercases text or strips accents, but its vocabulary is "
                             "cased, and it cannot be switched to cased; save a tokenizer that keeps case with it.")
        notice = (f"The tokenizer of '{name}' was set to lowercase text or strip accents, but its vocabulary is cased "
                  "(upper-case letters, й, ё), so it is read cased (do_lower_case=False, strip_accents=False).")
        log.warning(notice)
    return compose_unicode(tokenizer), notice


def check_mlm_head(name: str, model: PreTrainedModel, missing_keys: Iterable[str]) -> None:
    """Refuse a checkpoint saved without its masked-LM head; ValueError.

    from_pretrained fills weights missing from a checkpoint with random values; for the head (BERT's cls.*,
    DistilBERT's vocab_*) that means predictions of noise. The encoder lives under model.base_model_prefix.
    """
    prefix = model.base_model_prefix + "."
    head = sorted(k for k in missing_keys if not k.startswith(prefix))
    if head:
        raise ValueError(f"'{name}' has no masked-LM head: its checkpoint holds the encoder only ({len(head)} head "
                         f"weights missing, e.g. {head[0]}), so it cannot fill in [MASK] nor serve as a teacher; "
                         "use a checkpoint saved with its head (a *ForMaskedLM model).")


def _load_arch(name: str, arch: str, device, attn: str, dtype) -> LoadedModel:
    config = arch_config(arch)
    config._attn_implementation = attn
    torch.manual_seed(0)  # the same random weights every time, so measurements repeat
    with torch.device(device):
        model = AutoModelForMaskedLM.from_config(config, dtype=dtype, attn_implementation=attn)
    return LoadedModel(name, model.eval(), random_tokenizer(config.vocab_size), "arch")


def random_tokenizer(vocab_size: int) -> PreTrainedTokenizerBase:
    """A stand-in WordPiece tokenizer with the right vocabulary size, for architecture-only models."""
    return wordpiece_from_vocab(BERT_SPECIALS + [f"w{i}" for i in range(vocab_size - len(BERT_SPECIALS))])


def model_summary(model: torch.nn.Module) -> dict:
    """Parameters and size as the model card counts them: fp32 bytes of the parameters, in MiB.

    model.parameters() yields a tied tensor once (the MLM decoder shares the word embeddings), as a checkpoint
    stores it.
    """
    params = sum(p.numel() for p in model.parameters())
    return {"params": params, "size_mb": round(params * 4 / 2**20, 1)}
