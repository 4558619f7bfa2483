"""Many users at once: concurrent fill-mask, embedding and benchmark requests through gradio_client, while the page
itself is fetched again and again to see whether it stays quick.

python -m scripts.load_test [--url http://127.0.0.1:7860/] [--fill-mask 30] [--embed 5] [--uncached-embed 0]
                            [--embed-lines 400] [--benchmarks 0] [--heavy]

--heavy is the mix the abuse audit tried: 60 fill-mask requests, 10 embedding maps of 400 typed lines each (lines no
request shares, so nothing comes from the embedding cache) and 3 benchmarks, all sent at once; the page's p95 should
stay under 0.5 s. Without --url the script starts the app itself (bundled models, a temporary runs folder) and also
reports how long the app took to start serving. Prints p50/p95 latency of each kind of request and of the page on
stdout, a line per stage and a bar of answered requests on stderr; exits 1 if any request failed.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path

from gradio_client import Client
from tqdm import tqdm

from core.bench.engine import percentile
from core.formatting import error_sentence
from core.paths import ASSETS
from scripts.appserver import start_app
from scripts.progress import stage

SENTENCES = ["Доброе [MASK]! Как спалось?", "Спасибо за [MASK], ты очень помог.", "На улице идёт сильный [MASK].",
             "Давай вечером сходим в [MASK].", "Я забыл [MASK] от почты."]
HEAVY = dict(fill_mask=60, embed=0, uncached_embed=10, embed_lines=400, benchmarks=3)
PAGE_TARGET_S = 0.5  # the page's p95 the heavy mix should stay under
CONNECTING = 4  # clients connecting at once, before the clock starts
CONNECT_TIMEOUT_S = 120.0
KINDS = ("fill_mask", "embedding_map", "uncached_embedding", "benchmark")


def fill_mask(client: Client, i: int, args) -> float:
    started = time.perf_counter()
    client.predict(model_1="bundled-teacher", model_2="bundled-student", top_k=5,
                   sentence=SENTENCES[i % len(SENTENCES)], api_name="/fill_mask")
    return time.perf_counter() - started


def embedding_map(client: Client, i: int, args) -> float:
    started = time.perf_counter()
    client.predict(source="Probe set", model_1="bundled-teacher", model_2="bundled-student",
                   method="PCA" if i % 2 == 0 else "UMAP", api_name="/embedding_map")
    return time.perf_counter() - started


def uncached_lines(i: int, count: int) -> str:
    """`count` held-out corpus lines marked with request i, so that no two requests embed the same text."""
    corpus = [line for line in (ASSETS / "corpus" / "valid.txt").read_text(encoding="utf-8").splitlines() if line]
    return "\n".join(f"{corpus[(i * count + k) % len(corpus)]} ({i}.{k})" for k in range(count))


def uncached_embedding(client: Client, i: int, args) -> float:
    text = uncached_lines(i, args.embed_lines)
    started = time.perf_counter()
    client.predict(source="Typed sentences", sentences=text, model_1="bundled-teacher", model_2="bundled-student",
                   method="PCA", api_name="/embedding_map")
    return time.perf_counter() - started


def benchmark(client: Client, i: int, args) -> float:
    started = time.perf_counter()
    client.predict(models=["bundled-teacher", "bundled-student"], device="cpu", batch_sizes="1,8", seq_len=64,
                   modes=["reference"], runs=3, compile=False, api_name="/run_benchmark")
    return time.perf_counter() - started


class PagePoller:
    """Fetches the page every `every` seconds in a thread until stopped, keeping each fetch's seconds."""

    def __init__(self, url: str, every: float):
        self.url, self.every, self.times, self.failures = url, every, [], 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)

    def _poll(self) -> None:
        while not self._stop.is_set():
            started = time.perf_counter()
            try:
                # as a browser asks for it: compressed (Gradio compresses each answer with Brotli)
                request = urllib.request.Request(self.url, headers={"Accept-Encoding": "gzip, deflate, br"})
                with urllib.request.urlopen(request, timeout=30) as answer:
                    answer.read()
                self.times.append(time.perf_counter() - started)
            except OSError:
                self.failures += 1
            self._stop.wait(self.every)

    def __enter__(self) -> PagePoller:
        self._thread.start()
        return self

    def __exit__(self, *_) -> None:
        self._stop.set()
        self._thread.join()


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--url")
    p.add_argument("--fill-mask", type=int, default=30, help="fill-mask requests (default 30)")
    p.add_argument("--embed", type=int, default=5, help="embedding maps of the probe set, cached after the first")
    p.add_argument("--uncached-embed", type=int, default=0, help="embedding maps of typed lines no request shares")
    p.add_argument("--embed-lines", type=int, default=400, help="lines of each uncached embedding (default 400)")
    p.add_argument("--benchmarks", type=int, default=0, help="benchmarks of the bundled pair, each its own session")
    p.add_argument("--page-every", type=float, default=0.25, help="seconds between fetches of the page")
    p.add_argument("--heavy", action="store_true", help="the audit's mix: " + ", ".join(
        f"{k.replace('_', '-')} {v}" for k, v in HEAVY.items()))
    args = p.parse_args(argv)
    if args.heavy:
        vars(args).update(HEAVY)
    return args


def report(futures: list, wall: float, poller: PagePoller) -> int:
    """Print each kind's figures and the page's; the number of failed requests."""
    failures = 0
    for kind in KINDS:
        times = []
        for name, future in futures:
            if name != kind:
                continue
            try:
                times.append(future.result())
            except Exception as error:  # count it and say why; a load test must not stop at the first failure
                failures += 1
                print(f"{kind} failed: {type(error).__name__}: {error_sentence(error)}", file=sys.stderr)
        if times:
            print(f"{kind:18s} {len(times):3d} answered  p50 {statistics.median(times):6.2f} s  "
                  f"p95 {percentile(times, 0.95):6.2f} s  max {max(times):6.2f} s")
    if poller.times:
        p95 = percentile(poller.times, 0.95)
        print(f"{'page':18s} {len(poller.times):3d} fetched   p50 {statistics.median(poller.times):6.2f} s  "
              f"p95 {p95:6.2f} s  max {max(poller.times):6.2f} s  (p95 under {PAGE_TARGET_S} s: "
              f"{'yes' if p95 < PAGE_TARGET_S else 'no'}; {poller.failures} fetches failed)")
    print(f"all {len(futures)} requests sent at once; {len(futures) - failures} answered in {wall:.1f} s")
    return failures


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    counts = [args.fill_mask, args.embed, args.uncached_embed, args.benchmarks]
    if min(counts) < 0 or sum(counts) < 1 or args.embed_lines < 1 or args.page_every <= 0:
        print("error: the request counts cannot be negative and together must send at least one request; "
              "--embed-lines and --page-every must be above 0.", file=sys.stderr)
        return 2
    app = None
    if not args.url:
        folder = Path(tempfile.mkdtemp(prefix="rudistil-load-"))
        stage(f"starting the app (log in {folder / 'app.log'}) ...")
        started = time.perf_counter()
        app = start_app(folder / "runs", folder / "app.log")
        print(f"app serving after {time.perf_counter() - started:.1f} s", flush=True)
        args.url = app.url
    try:
        kinds = [fill_mask, embedding_map, uncached_embedding, benchmark]
        jobs = [(fn, i) for fn, count in zip(kinds, counts) for i in range(count)]
        with ThreadPoolExecutor(max_workers=len(jobs)) as pool:
            # one client a simulated user, connected before the clock starts: the figures are the app's answers
            stage(f"connecting {len(jobs)} clients to {args.url} ...")
            # (a few at a time, with a patient timeout: each connection reads the API description, and dozens at
            # once outwait httpx's 5-second default on 2 cores)
            with ThreadPoolExecutor(max_workers=CONNECTING) as connecting:
                clients = list(connecting.map(
                    lambda _: Client(args.url, verbose=False, httpx_kwargs={"timeout": CONNECT_TIMEOUT_S}), jobs))
            stage("sending the first request, which loads the two models ...")
            warm = time.perf_counter()
            fill_mask(clients[0], 0, args)  # the first request loads the two models, once for everyone
            print(f"first request (loads the models) {time.perf_counter() - warm:.2f} s", flush=True)
            stage(f"sending {len(jobs)} requests at once, fetching the page every {args.page_every} s ...")
            with PagePoller(args.url, args.page_every) as poller:
                started = time.perf_counter()
                futures = [(fn.__name__, pool.submit(fn, client, i, args)) for (fn, i), client in zip(jobs, clients)]
                for _ in tqdm(as_completed([f for _, f in futures]), total=len(futures), unit="answer",
                              file=sys.stderr):
                    pass
                wall = time.perf_counter() - started
        return 1 if report(futures, wall, poller) else 0
    finally:
        if app:
            app.kill()


if __name__ == "__main__":
    sys.exit(main())
