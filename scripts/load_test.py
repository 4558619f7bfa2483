"""Many users at once: concurrent fill-mask and embedding requests through gradio_client.

python -m scripts.load_test [--url http://127.0.0.1:7860/] [--fill-mask 30] [--embed 5]

Without --url the script starts the app itself (bundled models, a temporary runs folder) and also reports how long
the app took to start serving. Prints p50/p95 latency of each kind of request on stdout, a line per stage and a
bar of answered requests on stderr; exits 1 if any request failed.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path

from gradio_client import Client
from tqdm import tqdm

from core.bench.engine import percentile
from core.formatting import error_sentence
from scripts.appserver import start_app
from scripts.progress import stage

SENTENCES = ["Доброе [MASK]! Как спалось?", "Спасибо за [MASK], ты очень помог.", "На улице идёт сильный [MASK].",
             "Давай вечером сходим в [MASK].", "Я забыл [MASK] от почты."]


def fill_mask(client: Client, i: int) -> float:
    started = time.perf_counter()
    client.predict(model_1="bundled-teacher", model_2="bundled-student", top_k=5,
                   sentence=SENTENCES[i % len(SENTENCES)], api_name="/fill_mask")
    return time.perf_counter() - started


def embedding_map(client: Client, i: int) -> float:
    started = time.perf_counter()
    client.predict(source="Probe set", model_1="bundled-teacher", model_2="bundled-student",
                   method="PCA" if i % 2 == 0 else "UMAP", api_name="/embedding_map")
    return time.perf_counter() - started


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--url")
    p.add_argument("--fill-mask", type=int, default=30)
    p.add_argument("--embed", type=int, default=5)
    args = p.parse_args()
    if args.fill_mask < 0 or args.embed < 0 or args.fill_mask + args.embed < 1:
        print("error: --fill-mask and --embed cannot be negative, and together must send at least one request.",
              file=sys.stderr)
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
        jobs = [(fill_mask, i) for i in range(args.fill_mask)] + [(embedding_map, i) for i in range(args.embed)]
        with ThreadPoolExecutor(max_workers=len(jobs)) as pool:
            # one client a simulated user, connected before the clock starts: the figures are the app's answers
            stage(f"connecting {len(jobs)} clients to {args.url} ...")
            clients = list(pool.map(lambda _: Client(args.url, verbose=False), jobs))
            stage("sending the first request, which loads the two models ...")
            warm = time.perf_counter()
            fill_mask(clients[0], 0)  # the first request loads the two models, once for everyone
            print(f"first request (loads the models) {time.perf_counter() - warm:.2f} s", flush=True)
            stage(f"sending {len(jobs)} requests at once ...")
            started = time.perf_counter()
            futures = [(fn.__name__, pool.submit(fn, client, i)) for (fn, i), client in zip(jobs, clients)]
            for _ in tqdm(as_completed([f for _, f in futures]), total=len(futures), unit="answer", file=sys.stderr):
                pass
        wall = time.perf_counter() - started
        failures = 0
        for kind in ("fill_mask", "embedding_map"):
            times = []
            for name, future in futures:
                if name != kind:
                    continue
                try:
                    times.append(future.result())
                except Exception as error:  # count it and say why; a load test must not stop at the first failure
                    failures += 1
                    print(f"{kind} failed: {error_sentence(error)}", file=sys.stderr)
            if times:
                print(f"{kind:14s} {len(times):3d} answered  p50 {statistics.median(times):6.2f} s  "
                      f"p95 {percentile(times, 0.95):6.2f} s  max {max(times):6.2f} s")
        print(f"all {len(jobs)} requests sent at once; {len(jobs) - failures} answered in {wall:.1f} s")
        return 1 if failures else 0
    finally:
        if app:
            app.kill()


if __name__ == "__main__":
    sys.exit(main())
