"""RuDistil Lab: the Gradio app (the Hugging Face Space's app_file). python app.py --help"""
from __future__ import annotations

import argparse
import errno
import ipaddress
import os
import socket
import sys

# The app runs several things at once (users' requests, a distillation run in a child process). OpenMP threads that
# spin while waiting for a busy core made a forward pass 10x slower on 2 cores; passive waiting keeps it fast.
# It must be set before torch starts its thread pool: gradio, the tabs and torch are imported inside the functions
# below, after this line has run.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

TITLE = "RuDistil Lab"
# Gradio's cache (uploads, and the files handlers return) is swept every half hour of files older than an hour.
DELETE_CACHE = (1800, 3600)  # (how often, how old), seconds
CSS = """
.offline-notice {border-left: 4px solid #e9a23b; padding: 4px 10px; background: rgba(233,162,59,.08)}
.pair-notice {border-left: 4px solid #7a8699; padding: 4px 10px}
.katex-display {overflow-x: auto; overflow-y: hidden; padding-bottom: 2px}  /* a formula wider than a phone scrolls */
/* ui.tables.SIDEWAYS_TABLES: a Markdown table wider than a phone scrolls sideways, its words whole */
.sideways-tables .prose {overflow-x: auto; overflow-y: hidden}
.sideways-tables th, .sideways-tables td {overflow-wrap: normal; word-break: normal}
/* Plotly's logo is a link named by no text; gr.Plot passes no Plotly config (displaylogo), so it goes here */
.js-plotly-plot .plotly .modebar-group:has(> .modebar-btn--logo) {display: none}
"""


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    env = os.environ.get
    from core.formatting import OneLineParser  # light: no torch, no gradio

    p = OneLineParser(
        description="Serve RuDistil Lab in the browser.",
        epilog="Limits of one request, from the environment: RUDISTIL_MAX_BENCH_S (estimated seconds of a benchmark; "
               "default 300 on a Space, 3600 elsewhere), RUDISTIL_MAX_EMBED_S (estimated seconds of embedding; 120 "
               "on a Space, 600 elsewhere), RUDISTIL_MAX_HUB_MB (download of a Hub model on a Space; 1000), "
               "RUDISTIL_MAX_RUN_S (estimated seconds of a distillation run; 1800 on a Space, 86400 elsewhere), "
               "RUDISTIL_MAX_SESSION_RUNS (runs one visitor has queued or running; 2 on a Space, no limit elsewhere), "
               "RUDISTIL_MAX_SESSION_MB (disk one visitor's runs take; 2000 on a Space, no limit elsewhere).")
    p.add_argument("--host", default=env("RUDISTIL_HOST", "0.0.0.0" if env("SPACE_ID") else "127.0.0.1"),
                   help="address to listen on (env RUDISTIL_HOST)")
    p.add_argument("--port", default=env("RUDISTIL_PORT", env("GRADIO_SERVER_PORT", "7860")),
                   help="port, 1 to 65535 (env RUDISTIL_PORT)")  # checked in check_address, in one sentence
    p.add_argument("--teacher", default=env("RUDISTIL_TEACHER"), help="default teacher (env RUDISTIL_TEACHER); "
                   "default: the DeepPavlov teacher when reachable, else bundled-teacher")
    p.add_argument("--student", default=env("RUDISTIL_STUDENT"), help="default student (env RUDISTIL_STUDENT)")
    return p.parse_args(argv)


def fail(message: str):
    """The command line's edge: one `error:` line on stderr and exit code 2."""
    print(f"error: {message}", file=sys.stderr)
    sys.exit(2)


def check_port(port) -> int:
    """The port as a whole number from 1 to 65535; ValueError with a sentence otherwise."""
    try:
        number = int(str(port).strip())
    except ValueError:
        raise ValueError(f"--port must be a whole number from 1 to 65535, not {str(port)!r}.") from None
    if not 1 <= number <= 65535:
        raise ValueError(f"--port must be a whole number from 1 to 65535, not {number}.")
    return number


def check_address(host: str, port) -> int:
    """The port, once `host` is an address of this machine and the port is free on it (checked by binding it for
    a moment, as the server will); ValueError with a sentence a person can act on otherwise. Without this, a bad
    host or a busy port surfaced as Gradio's traceback ("Cannot find empty port")."""
    number = check_port(port)
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, number, type=socket.SOCK_STREAM)[0]
    except (socket.gaierror, UnicodeError):
        raise ValueError(f"--host {host} is not an address or host name this machine can resolve; use 127.0.0.1 "
                         "(this machine only) or 0.0.0.0 (every network interface).") from None
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn does: a closing socket is no user
        try:
            probe.bind(address)
        except OSError as error:
            if error.errno == errno.EADDRINUSE:
                raise ValueError(f"port {number} on {host} is already in use (another program, or another copy of "
                                 "the app); choose another with --port.") from None
            if error.errno == errno.EACCES:
                raise ValueError(f"port {number} needs administrator rights on this machine; choose one from 1024 "
                                 "up with --port.") from None
            raise ValueError(f"cannot listen on {host} port {number}: {error.strerror or error}; --host must be an "
                             "address of this machine, such as 127.0.0.1 or 0.0.0.0.") from None
    return number


def build_app(ctx):
    """The app's gr.Blocks: a title, the offline notice and one tab a module of ui/. `ctx`: a ui.context.AppContext.

    A tab whose build() returns {"refresh": (function, outputs)} has those outputs redrawn when the page loads and
    each time the tab is opened, so its model lists include runs that finished since the app started; one that returns
    {"load": (function, inputs, outputs)} has that function run once as the page loads (the Distill tab opens on the
    visitor's run, the Benchmark tab on the last benchmark kept in their browser); {"kept": [gr.BrowserState, ...]}
    are rendered outside the tabs, so the page reads them as it loads."""
    import gradio as gr

    from ui import about_tab, bench_tab, distill_tab, embed_tab, predict_tab

    tabs = [("Distill", "distill", distill_tab), ("Predictions", "predict", predict_tab),
            ("Embeddings", "embed", embed_tab), ("Benchmark", "bench", bench_tab), ("About", "about", about_tab)]
    with gr.Blocks(title=TITLE, delete_cache=DELETE_CACHE) as demo:
        gr.Markdown(f"# {TITLE}\nSee, run and measure the knowledge distillation of Russian language models: "
                    "DeepPavlov's conversational RuBERT and its DistilRuBERT students, or the lab's own tiny pair.")
        # The line that names the pair in use: a warning's colours only when the lab fell back to its bundled pair.
        style = "offline-notice" if ctx.default_teacher == "bundled-teacher" else "pair-notice"
        gr.Markdown(ctx.notice, visible=bool(ctx.notice), elem_classes=style, elem_id="offline-notice")
        kept = []  # the tabs' gr.BrowserState, made unrendered
        with gr.Tabs():
            for label, tab_id, module in tabs:
                with gr.Tab(label, id=tab_id) as tab:
                    parts = module.build(ctx)
                parts = parts if isinstance(parts, dict) else {}
                if "refresh" in parts:
                    function, outputs = parts["refresh"]
                    demo.load(function, None, outputs, api_visibility="private")
                    tab.select(function, None, outputs, api_visibility="private")
                if "load" in parts:
                    function, inputs, outputs = parts["load"]
                    demo.load(function, inputs, outputs, api_visibility="private", show_progress="hidden")
                kept.extend(parts.get("kept", ()))
        # outside the tabs: the page mounts a tab's components only when the tab is first opened, and a gr.BrowserState
        # not mounted gives its event None, not what the browser keeps
        for state in kept:
            state.render()
    return demo


def theme():
    """Gradio's default theme with only the weights of its font that it ships whole, 400 and 700: its file for 600
    holds a handful of letters (A, B and some Cyrillic), so bold text drew those from it and the rest from a
    fallback font. Text asked for at 600 is drawn at 700."""
    import gradio as gr

    font = gr.themes.LocalFont("Source Sans Pro", weights=(400, 700))
    return gr.themes.Default(font=(font, "ui-sans-serif", "system-ui", "sans-serif"))


def is_loopback(host: str) -> bool:
    """Whether `host` (already checked by check_address) is reachable from this machine only."""
    try:
        return all(ipaddress.ip_address(info[4][0]).is_loopback
                   for info in socket.getaddrinfo(host, None, type=socket.SOCK_STREAM))
    except (OSError, ValueError):
        return False


def start_background_work(ctx) -> None:
    """Before serving: measure this machine's speed for time estimates while nothing else of the app uses the cores
    (measured while UMAP compiled, it came out about twenty times too slow, and a run of a few hours was refused as
    one of 87), then compile UMAP's numba code before anyone asks for a map, then start the runs queued before a
    restart, one at a time."""
    import torch

    from core.bench import machine
    from ui import embed_tab

    machine.quick_rate(torch.float32, "cpu")  # kept for five minutes: the first estimates use it
    embed_tab.warm_up_in_background()
    ctx.launcher.start()


def main(argv: list[str] | None = None) -> None:
    from starlette.middleware import Middleware

    from ui.components import MAX_UPLOAD
    from ui.context import AppContext
    from ui.downloads import remove_old_folders
    from ui.serving import PageCache, record_absent_bokeh

    args = parse_args(argv)
    try:
        port = check_address(args.host, args.port)  # before anything slow: a typo is answered at once
        # served to a network (a class on --host 0.0.0.0): each visitor's runs are theirs alone, as on a Space
        ctx = AppContext.create(args.teacher, args.student, owned_runs=not is_loopback(args.host))
        for name in (ctx.default_teacher, ctx.default_student):
            ctx.check_name(name)
    except ValueError as error:
        fail(str(error))
    remove_old_folders()  # download folders a previous run of the app left behind
    record_absent_bokeh()
    start_background_work(ctx)
    demo = build_app(ctx)
    demo.queue(max_size=64, default_concurrency_limit=4)
    try:
        demo.launch(server_name=args.host, server_port=port, max_file_size=MAX_UPLOAD, allowed_paths=[],
                    strict_cors=True, css=CSS, theme=theme(), footer_links=["api", "settings"],
                    app_kwargs={"middleware": [Middleware(PageCache)]})  # the page stays quick while models work
    except OSError as error:  # the port was taken between the check and the launch
        fail(f"cannot listen on {args.host} port {port}: {error}; choose another with --port.")


if __name__ == "__main__":
    main()
