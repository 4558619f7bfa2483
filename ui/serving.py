"""Keeping the server quick while models work: the page and its configuration kept in memory once rendered, and
Gradio's per-session work made cheaper.

Gradio renders the page (GET /) and the configuration clients read (GET /config) afresh for every request: a deep
copy of the whole app's configuration (about 0.4 MB of JSON here) and a template, about 50 ms of Python on an idle
machine. While predictions, embeddings and benchmarks run in the same process, that Python waits its turn for the
interpreter with theirs, and a page took seconds at the 95th percentile under scripts.load_test --heavy. The
bytes depend only on the address the request came through (they embed the app's root URL) and never change while
the app runs (same bytes on every request), so each address's answer is kept after its first rendering.
"""
from __future__ import annotations

import importlib.util
import sys
from collections import OrderedDict

CACHED_PATHS = frozenset({"/", "/config"})
MAX_ADDRESSES = 16  # addresses kept (a Space is reached through a few); more are rendered each time as before


def _address(scope: dict) -> tuple:
    """What Gradio's root URL is made from: the scheme, server, root path and the host and forwarding headers."""
    headers = tuple(sorted((name, value) for name, value in scope.get("headers", [])
                           if name in (b"host", b"forwarded") or name.startswith(b"x-forwarded")))
    return scope.get("scheme"), scope.get("server"), scope.get("root_path", ""), headers


class PageCache:
    """ASGI middleware: answers GET / and GET /config from memory after the first successful answer for the same
    address (see the module docstring). Other requests, requests with a query string and answers other than
    200 without cookies pass through untouched."""

    def __init__(self, app, max_addresses: int = MAX_ADDRESSES):
        self.app, self.max_addresses = app, max_addresses
        self.kept: OrderedDict[tuple, tuple[dict, bytes]] = OrderedDict()

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["method"] != "GET" or scope["path"] not in CACHED_PATHS \
                or scope.get("query_string"):
            await self.app(scope, receive, send)
            return
        key = (scope["path"], *_address(scope))
        if key in self.kept:
            self.kept.move_to_end(key)
            start, body = self.kept[key]
            await send(start)
            await send({"type": "http.response.body", "body": body})
            return
        parts: dict = {"start": None, "body": []}

        async def keep(message):
            if message["type"] == "http.response.start":
                parts["start"] = message
            elif message["type"] == "http.response.body":
                parts["body"].append(message.get("body", b""))
            await send(message)

        await self.app(scope, receive, keep)
        start = parts["start"]
        if start is None or start["status"] != 200 or any(name == b"set-cookie" for name, _ in start["headers"]):
            return
        self.kept[key] = (start, b"".join(parts["body"]))
        if len(self.kept) > self.max_addresses:
            self.kept.popitem(last=False)


def record_absent_bokeh() -> None:
    """Make `import bokeh` fail at once when bokeh is not installed. Gradio's Plot tries it for every plot each time
    a visitor's session starts, and a failed import searches every folder of sys.path again: with the app's eleven
    plots that was over a quarter of a new session's setup, which Gradio does in the server's event loop, where it
    holds up every other request."""
    if "bokeh" not in sys.modules and importlib.util.find_spec("bokeh") is None:
        sys.modules["bokeh"] = None  # an import of a module recorded as None raises ImportError immediately
