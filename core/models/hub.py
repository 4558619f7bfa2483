"""Preparing a machine to go offline: the DeepPavlov models into the Hugging Face cache, only the files the lab loads.

    python -m core.models.hub                      # plan, then download what is not cached yet
    python -m core.models.hub --dry-run            # only say what would be downloaded, how much and where
    python -m core.models.hub --models rubert-base-cased-conversational,distilrubert-base-cased-conversational

A model counts as cached when its config.json, its weights and its vocabulary are in the cache; cached models are
skipped without asking the Hub. Sizes come from the Hub's file metadata (HfApi.model_info(files_metadata=True)), the
download from huggingface_hub.snapshot_download with allow_patterns naming each file, into the cache that
transformers reads (HF_HUB_CACHE, by default ~/.cache/huggingface/hub). Once the teacher and the base student are
cached, the app starts with the DeepPavlov pair even without a network.
"""
from __future__ import annotations

import argparse
import io
import shutil
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from tqdm.auto import tqdm

from core.formatting import OneLineParser, count
from core.models import zoo

CONFIG = "config.json"
WEIGHTS = zoo.WEIGHT_FILES
VOCABULARIES = zoo.VOCABULARY_FILES
TOKENIZER_FILES = ("vocab.txt", "tokenizer_config.json", "special_tokens_map.json", "tokenizer.json")

# (model name, bytes written so far over the whole download, bytes of the whole download)
ProgressFn = Callable[[str, int, int], None]


@dataclass(frozen=True)
class ModelPlan:
    """What one model needs: the files to fetch with their sizes in bytes, or nothing when it is cached."""
    name: str
    hub_id: str
    files: dict[str, int] = field(default_factory=dict)  # file name -> bytes, as the Hub reports it
    cached: bool = False

    @property
    def size_bytes(self) -> int:
        return sum(self.files.values())


@dataclass(frozen=True)
class DownloadPlan:
    models: list[ModelPlan]
    cache_dir: Path

    @property
    def to_fetch(self) -> list[ModelPlan]:
        return [m for m in self.models if not m.cached]

    @property
    def size_bytes(self) -> int:
        return sum(m.size_bytes for m in self.to_fetch)

    def describe(self) -> str:
        """The plan as lines: the total and the cache folder first, then one line a model."""
        fetch = self.to_fetch
        if not fetch:
            head = (f"{'All ' + count(len(self.models), 'model') + ' are' if len(self.models) > 1 else 'The model is'} "
                    f"already in the Hugging Face cache at {self.cache_dir}.")
        else:
            head = (f"{format_bytes(self.size_bytes)} to download: {count(len(fetch), 'model')} into the Hugging Face "
                    f"cache at {self.cache_dir}.")
        width = max(len(m.name) for m in self.models)
        lines = [head]
        for m in self.models:
            what = "already cached" if m.cached else f"{format_bytes(m.size_bytes):>9}  {', '.join(m.files)}"
            lines.append(f"  {m.name:<{width}}  {what}")
        return "\n".join(lines)


@dataclass(frozen=True)
class Downloaded:
    name: str
    folder: Path  # the snapshot folder in the cache
    size_bytes: int


def hub_models() -> list[str]:
    """The lab's names of the models that live on the Hub (the DeepPavlov teacher and students), in table order."""
    return [name for name, known in zoo.KNOWN_MODELS.items() if known.hub_id]


def cache_folder() -> Path:
    """The Hugging Face cache that transformers reads (HF_HUB_CACHE, else HF_HOME/hub, else ~/.cache/...)."""
    from huggingface_hub import constants
    return Path(constants.HF_HUB_CACHE)


def format_bytes(size: int) -> str:
    """Bytes as people read them, in decimal units as the Hub shows sizes: '712 kB', '679.1 MB', '1.32 GB'."""
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if size >= scale:
            return f"{size / scale:.2f} {unit}" if unit == "GB" else f"{size / scale:.1f} {unit}"
    return f"{size} B"


def choose_names(names: Sequence[str] | None) -> list[str]:
    """The models to prepare: all Hub models when `names` is empty, else those named; ValueError for other names."""
    known = hub_models()
    if not names:
        return known
    unknown = [n for n in names if n not in known]
    if unknown:
        raise ValueError(f"'{unknown[0]}' is not one of the lab's Hub models; choose among {', '.join(known)}.")
    return list(dict.fromkeys(names))


def offline_sentence(cache_dir: Path | None = None) -> str:
    return ("The Hugging Face Hub cannot be reached from this machine (no network, or HF_HUB_OFFLINE is set), so the "
            "DeepPavlov models cannot be downloaded here: run `python -m core.models.hub` where there is internet, "
            f"then copy {cache_dir or cache_folder()} to the same place on this machine.")


def select_files(hub_id: str, sizes: dict[str, int | None]) -> dict[str, int]:
    """From a repository's files and sizes in bytes, those the lab loads: config.json, one weights file
    (model.safetensors when there is one, as transformers prefers it, else pytorch_model.bin) and the tokenizer
    files present. Raises ValueError when config.json, the weights or a vocabulary is missing."""
    weights = next((w for w in WEIGHTS if w in sizes), None)
    if CONFIG not in sizes or weights is None or not any(v in sizes for v in VOCABULARIES):
        raise ValueError(f"The Hub repository {hub_id} lacks config.json, model.safetensors or pytorch_model.bin, or "
                         "vocab.txt, so the lab could not load it; check the repository on huggingface.co.")
    names = [CONFIG, weights, *(f for f in TOKENIZER_FILES if f in sizes)]
    return {name: int(sizes[name] or 0) for name in names}


def repo_sizes(hub_id: str) -> dict[str, int | None]:
    """Every file of a Hub model repository with its size in bytes (HfApi.model_info with files_metadata=True).

    Raises ValueError with the offline sentence when the Hub cannot be reached, or naming the repository when the
    Hub refuses it."""
    from huggingface_hub import HfApi
    from huggingface_hub.errors import HfHubHTTPError, HTTPError

    try:
        info = HfApi().model_info(hub_id, files_metadata=True)
    except HfHubHTTPError as error:
        raise ValueError(f"The Hub refused to describe {hub_id} ({type(error).__name__}); check that "
                         "huggingface.co is up and the repository exists, then try again.") from None
    except (HTTPError, OSError):  # no route, a refused connection, a timeout, offline mode
        raise ValueError(offline_sentence()) from None
    return {s.rfilename: s.size for s in info.siblings or []}


def plan_download(names: Sequence[str] | None = None, cache_dir: Path | None = None) -> DownloadPlan:
    """What downloading `names` (the lab's names; default: all Hub models) would fetch, and how much.

    Cached models are marked and not asked about; for the others the Hub is asked for file sizes. Raises ValueError
    with one sentence for an unknown name, an unreachable Hub or a repository without the files the lab needs."""
    cache_dir = Path(cache_dir or cache_folder())
    names = choose_names(names)
    models = []
    for name in names:
        hub_id = zoo.KNOWN_MODELS[name].hub_id
        if zoo.is_cached(hub_id, cache_dir):
            models.append(ModelPlan(name, hub_id, cached=True))
            continue
        if not zoo.hub_reachable():
            raise ValueError(offline_sentence(cache_dir))
        models.append(ModelPlan(name, hub_id, select_files(hub_id, repo_sizes(hub_id))))
    return DownloadPlan(models, cache_dir)


def check_space(plan: DownloadPlan) -> None:
    """Refuse a download the cache's disk cannot hold; ValueError."""
    folder = plan.cache_dir
    while not folder.exists():  # the cache folder may not exist yet: measure the disk it will be on
        folder = folder.parent
    free = shutil.disk_usage(folder).free
    if plan.size_bytes > free:
        raise ValueError(f"The download needs {format_bytes(plan.size_bytes)} but the disk of {plan.cache_dir} has "
                         f"{format_bytes(free)} free; free some space or set HF_HUB_CACHE to a larger disk.")


def _byte_counter(on_bytes: Callable[[int], None]) -> type[tqdm]:
    """A tqdm class for snapshot_download that shows nothing and reports the bytes of one model as they arrive.

    snapshot_download makes several bars from it: byte bars (unit "B": bytes received, bytes written) and a bar of
    files. Whichever byte bar is furthest is the model's progress, so it stays right whether one or both are fed."""
    byte_bars: list[tqdm] = []

    class ByteCounter(tqdm):
        def __init__(self, *args, **kwargs):
            kwargs["file"] = io.StringIO()  # huggingface_hub draws its own bars; ours is drawn by the caller
            super().__init__(*args, **kwargs)
            if self.unit == "B":
                byte_bars.append(self)

        def update(self, n=1):
            shown = super().update(n)
            if self.unit == "B":
                on_bytes(max(int(bar.n) for bar in byte_bars))
            return shown

    return ByteCounter


def download(plan: DownloadPlan, progress: ProgressFn | None = None) -> list[Downloaded]:
    """Fetch the plan's models that are not cached, only their listed files, into plan.cache_dir.

    `progress(name, done_bytes, total_bytes)` is called as bytes arrive (done_bytes counts the whole plan). Raises
    ValueError with one sentence when the Hub cannot be reached or the disk is too small."""
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import HfHubHTTPError, HTTPError

    check_space(plan)
    total, before, done = plan.size_bytes, 0, []
    for model in plan.to_fetch:
        def on_bytes(n: int, name=model.name, start=before, size=model.size_bytes) -> None:
            if progress is not None:
                progress(name, start + min(n, size), total)

        try:
            folder = snapshot_download(model.hub_id, allow_patterns=list(model.files), cache_dir=str(plan.cache_dir),
                                       tqdm_class=_byte_counter(on_bytes))
        except HfHubHTTPError as error:
            raise ValueError(f"The Hub refused a file of {model.hub_id} ({type(error).__name__}); "
                             f"{_kept(done)}try again later.") from None
        except (HTTPError, OSError):
            raise ValueError(f"The connection to the Hugging Face Hub was lost while downloading {model.name}; "
                             f"{_kept(done)}run the download again to fetch the rest.") from None
        before += model.size_bytes
        on_bytes(model.size_bytes)
        done.append(Downloaded(model.name, Path(folder), model.size_bytes))
    return done


def _kept(done: list[Downloaded]) -> str:
    if not done:
        return ""
    verbs = "is complete and stays" if len(done) == 1 else "are complete and stay"
    return f"{', '.join(d.name for d in done)} {verbs} cached; "


def pair_line(cache_dir: Path | None = None) -> str:
    """After a download: whether the app will start with the DeepPavlov pair, in one sentence."""
    teacher, student = zoo.DEEPPAVLOV_PAIR
    missing = [n for n in zoo.DEEPPAVLOV_PAIR if not zoo.is_cached(zoo.KNOWN_MODELS[n].hub_id, cache_dir)]
    if not missing:
        return (f"After a restart the app uses the DeepPavlov pair ({teacher} as teacher, {student} as student), "
                "with or without a network.")
    return (f"Without a network the app keeps its bundled pair until {' and '.join(missing)} is downloaded too "
            f"(python -m core.models.hub --models {','.join(missing)}).")


def report(done: list[Downloaded], plan: DownloadPlan) -> str:
    """What a download did, and which pair the app uses after a restart, in two sentences."""
    if done:
        what = (f"Downloaded {', '.join(d.name for d in done)} ({format_bytes(sum(d.size_bytes for d in done))}) "
                f"into {plan.cache_dir}.")
    else:
        what = f"Nothing to download: every model asked for is already in {plan.cache_dir}."
    return f"{what} {pair_line(plan.cache_dir)}"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = OneLineParser(prog="python -m core.models.hub", description=(
        "Download DeepPavlov's Conversational RuBERT and its DistilRuBERT students into the Hugging Face cache (only "
        "the files the lab loads), so the lab uses them on a machine without a network."))
    p.add_argument("--models", default="", help="comma-separated names among " + ", ".join(hub_models())
                   + " (default: all of them)")
    p.add_argument("--dry-run", action="store_true", help="print what would be downloaded, how much and where; "
                   "download nothing")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    names = [n.strip() for n in args.models.split(",") if n.strip()]
    try:
        plan = plan_download(names)
    except ValueError as error:
        sys.stderr.write(f"error: {error}\n")
        return 2
    print(plan.describe(), flush=True)
    if args.dry_run:
        print("Dry run: nothing was downloaded.")
        return 0
    try:
        check_space(plan)  # before the bar is drawn, so a refusal is one line
    except ValueError as error:
        sys.stderr.write(f"error: {error}\n")
        return 2
    bar = tqdm(total=plan.size_bytes, unit="B", unit_scale=True, file=sys.stderr, mininterval=0.5,
               disable=not plan.to_fetch, bar_format="{desc:<45.45} {percentage:3.0f}%|{bar}| {n_fmt}/{total_fmt} "
               "[{elapsed}<{remaining}, {rate_fmt}]")

    def on_progress(name: str, done_bytes: int, total_bytes: int) -> None:
        bar.set_description_str(name, refresh=False)
        if done_bytes > bar.n:  # reports come from several download threads, not always in order
            bar.update(done_bytes - bar.n)

    try:
        done = download(plan, on_progress)
    except ValueError as error:
        bar.leave = False  # the error line replaces the unfinished bar
        bar.close()
        sys.stderr.write(f"error: {error}\n")
        return 2
    bar.close()
    print(report(done, plan))
    return 0


if __name__ == "__main__":
    sys.exit(main())
