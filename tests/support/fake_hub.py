"""A stand-in for the Hugging Face Hub: huggingface_hub's metadata and download calls answered from a table of
repositories, writing files into a private cache in the real layout (refs/main, snapshots/<commit>/<file>)."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace

import huggingface_hub
from huggingface_hub import constants
from huggingface_hub.hf_api import RepoSibling

from core.models import zoo

COMMIT = "0123456789abcdef0123456789abcdef01234567"

# Each repository's files and sizes in bytes; more files than the lab loads, and both weight formats in some.
REPOS: dict[str, dict[str, int]] = {
    "DeepPavlov/rubert-base-cased-conversational": {
        "config.json": 642, "pytorch_model.bin": 711_456_796, "tf_model.h5": 711_000_000, "vocab.txt": 1_649_718,
        "special_tokens_map.json": 112, "tokenizer_config.json": 24, "README.md": 1_200, ".gitattributes": 400},
    "DeepPavlov/distilrubert-base-cased-conversational": {
        "config.json": 570, "pytorch_model.bin": 541_000_000, "model.safetensors": 540_900_000,
        "vocab.txt": 1_649_718, "special_tokens_map.json": 112, "tokenizer_config.json": 30, "README.md": 2_000},
    "DeepPavlov/distilrubert-small-cased-conversational": {
        "config.json": 570, "model.safetensors": 428_000_000, "vocab.txt": 1_649_718,
        "tokenizer_config.json": 30, "onnx/model.onnx": 420_000_000},
    "DeepPavlov/distilrubert-tiny-cased-conversational-v1": {
        "config.json": 560, "pytorch_model.bin": 43_000_000, "vocab.txt": 231_508, "tokenizer.json": 700_000,
        "special_tokens_map.json": 112, "tokenizer_config.json": 300},
}


def lab_sizes(hub_id: str) -> dict[str, int]:
    """The files of a fake repository the lab should ask for, written out by hand for the tests to compare."""
    chosen = {
        "DeepPavlov/rubert-base-cased-conversational": ["config.json", "pytorch_model.bin", "vocab.txt",
                                                        "tokenizer_config.json", "special_tokens_map.json"],
        "DeepPavlov/distilrubert-base-cased-conversational": ["config.json", "model.safetensors", "vocab.txt",
                                                              "tokenizer_config.json", "special_tokens_map.json"],
        "DeepPavlov/distilrubert-small-cased-conversational": ["config.json", "model.safetensors", "vocab.txt",
                                                               "tokenizer_config.json"],
        "DeepPavlov/distilrubert-tiny-cased-conversational-v1": ["config.json", "pytorch_model.bin", "vocab.txt",
                                                                 "tokenizer_config.json", "special_tokens_map.json",
                                                                 "tokenizer.json"],
    }[hub_id]
    return {name: REPOS[hub_id][name] for name in chosen}


def write_cached(cache_dir: Path, hub_id: str, files) -> Path:
    """Put `files` of `hub_id` into `cache_dir` as huggingface_hub lays them out; returns the snapshot folder."""
    repo = cache_dir / f"models--{hub_id.replace('/', '--')}"
    snapshot = repo / "snapshots" / COMMIT
    snapshot.mkdir(parents=True, exist_ok=True)
    (repo / "refs").mkdir(exist_ok=True)
    (repo / "refs" / "main").write_text(COMMIT)
    for name in files:
        (snapshot / name).parent.mkdir(parents=True, exist_ok=True)
        (snapshot / name).write_bytes(b"x")  # the content does not matter, only that the file is there
    return snapshot


@dataclass
class FakeHub:
    cache_dir: Path
    reachable: bool = True
    fail_on: str | None = None  # a hub_id whose download loses the connection
    metadata_fails: bool = False  # the socket check passes but the Hub's API does not answer (a proxy, a firewall)
    info_calls: list[str] = field(default_factory=list)
    downloads: list[tuple[str, list[str]]] = field(default_factory=list)  # (hub_id, allow_patterns)

    def model_info(self, hub_id: str, files_metadata: bool = False, **_):
        self.info_calls.append(hub_id)
        if not self.reachable or self.metadata_fails:
            import httpx2
            raise httpx2.ConnectError("[Errno -3] Temporary failure in name resolution")
        assert files_metadata, "sizes are only in the answer with files_metadata=True"
        return SimpleNamespace(siblings=[RepoSibling(rfilename=n, size=s) for n, s in REPOS[hub_id].items()])

    def snapshot_download(self, repo_id: str, *, allow_patterns=None, cache_dir=None, tqdm_class=None, **_):
        """Like the real one: a bar of bytes received, a bar of bytes written and a bar of files, from tqdm_class;
        the byte bars' totals grow as each file starts, and bytes arrive in chunks."""
        assert Path(cache_dir) == self.cache_dir
        self.downloads.append((repo_id, list(allow_patterns)))
        if repo_id == self.fail_on:
            import httpx2
            raise httpx2.ReadTimeout("The read operation timed out")
        files = [n for n in REPOS[repo_id] if n in allow_patterns]
        transfer = tqdm_class(desc="Downloading bytes", total=0, initial=0, unit="B", unit_scale=True)
        written = tqdm_class(desc="Reconstructing", total=0, initial=0, unit="B", unit_scale=True)
        with tqdm_class(total=len(files), desc=f"Fetching {len(files)} files") as fetched:
            for name in files:
                size = REPOS[repo_id][name]
                transfer.total += size
                written.total += size
                for chunk in (size // 2, size - size // 2):
                    transfer.update(chunk)
                    written.update(chunk)
                fetched.update(1)
        transfer.close()
        written.close()
        return str(write_cached(self.cache_dir, repo_id, files))


def install(monkeypatch, tmp_path: Path, **kwargs) -> FakeHub:
    """Replace huggingface_hub's download and metadata calls and the reachability check; a private cache."""
    cache_dir = tmp_path / "hf-cache"
    cache_dir.mkdir()
    fake = FakeHub(cache_dir, **kwargs)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache_dir))
    monkeypatch.setattr(huggingface_hub.HfApi, "model_info", lambda self, *a, **k: fake.model_info(*a, **k))
    monkeypatch.setattr(huggingface_hub, "snapshot_download", fake.snapshot_download)
    monkeypatch.setattr(zoo, "hub_reachable", lambda *a, **k: fake.reachable)
    return fake
