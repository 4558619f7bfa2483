"""ui.serving: the page kept per address once rendered, and a missing bokeh recorded once."""
import asyncio
import sys

import pytest

from ui.serving import PageCache, record_absent_bokeh


class CountingApp:
    """An ASGI app that answers with the request's host and its own call count, status and headers as set."""

    def __init__(self, status=200, headers=()):
        self.calls, self.status, self.headers = 0, status, list(headers)

    async def __call__(self, scope, receive, send):
        self.calls += 1
        host = dict(scope["headers"]).get(b"host", b"")
        await send({"type": "http.response.start", "status": self.status,
                    "headers": [(b"content-type", b"text/html"), *self.headers]})
        await send({"type": "http.response.body", "body": b"page for " + host, "more_body": True})
        await send({"type": "http.response.body", "body": b" #%d" % self.calls})


def get(cache, path="/", host=b"127.0.0.1:7860", method="GET", query=b"", forwarded=None) -> tuple[int, bytes]:
    headers = [(b"host", host)] + ([(b"x-forwarded-host", forwarded)] if forwarded else [])
    scope = {"type": "http", "method": method, "path": path, "query_string": query, "headers": headers,
             "scheme": "http", "server": ("127.0.0.1", 7860), "root_path": ""}
    sent = []

    async def receive():
        return {"type": "http.request", "body": b""}

    async def send(message):
        sent.append(message)

    asyncio.run(cache(scope, receive, send))
    status = next(m["status"] for m in sent if m["type"] == "http.response.start")
    return status, b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")


def test_the_page_and_config_are_rendered_once_per_address():
    app = CountingApp()
    cache = PageCache(app)
    assert get(cache) == (200, b"page for 127.0.0.1:7860 #1")
    assert get(cache) == (200, b"page for 127.0.0.1:7860 #1")  # the kept bytes, the app not asked again
    assert get(cache, host=b"localhost:7860") == (200, b"page for localhost:7860 #2")
    assert get(cache, forwarded=b"lab.example.org") == (200, b"page for 127.0.0.1:7860 #3")
    assert get(cache, path="/config") == (200, b"page for 127.0.0.1:7860 #4")
    assert get(cache, path="/config") == (200, b"page for 127.0.0.1:7860 #4")
    assert app.calls == 4


@pytest.mark.parametrize("request_kind", [dict(path="/gradio_api/info"), dict(method="POST"), dict(query=b"view=api"),
                                          dict(method="HEAD")])
def test_other_requests_pass_through_every_time(request_kind):
    app = CountingApp()
    cache = PageCache(app)
    get(cache, **request_kind)
    get(cache, **request_kind)
    assert app.calls == 2


@pytest.mark.parametrize("app", [CountingApp(status=500), CountingApp(headers=[(b"set-cookie", b"a=1")])])
def test_errors_and_answers_with_cookies_are_not_kept(app):
    cache = PageCache(app)
    get(cache)
    get(cache)
    assert app.calls == 2


def test_it_keeps_a_bounded_number_of_addresses():
    app = CountingApp()
    cache = PageCache(app, max_addresses=2)
    for host in (b"a", b"b", b"c", b"a"):  # "a" was dropped when "c" came
        get(cache, host=host)
    assert app.calls == 4 and len(cache.kept) == 2


def test_a_missing_bokeh_fails_to_import_at_once(monkeypatch):
    monkeypatch.delitem(sys.modules, "bokeh", raising=False)
    monkeypatch.setattr("importlib.util.find_spec", lambda name: None)
    try:
        record_absent_bokeh()
        assert sys.modules["bokeh"] is None
        with pytest.raises(ImportError):
            import bokeh  # noqa: F401
    finally:
        sys.modules.pop("bokeh", None)
