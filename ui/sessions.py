"""Who is asking: the session (a browser tab, or one gradio_client Client) of the request being handled, how many of
a session's requests wait in Gradio's queue or run now, and the key that seals what the app keeps in a browser."""
from __future__ import annotations

import os
import re
import secrets
import string
from pathlib import Path


def session_id() -> str | None:
    """The session (a browser tab, or one gradio_client Client) of the request being handled; None outside one."""
    from gradio.context import LocalContext

    request = LocalContext.request.get(None)
    return getattr(request, "session_hash", None) if request is not None else None


def pending_requests(session: str | None, group: str) -> int:
    """How many requests of `session` (None: of every session) in the concurrency group `group` wait in Gradio's
    queue or run now.

    Read from the queue of the app handling the current request (Gradio 6 keeps every event from its arrival to its
    end in Queue.event_ids_to_events); 0 outside a request."""
    from gradio.context import LocalContext

    queue = getattr(LocalContext.blocks.get(None), "_queue", None)
    events = list(getattr(queue, "event_ids_to_events", {}).values())
    return sum(1 for event in events
               if event.concurrency_id == group and (session is None or event.session_hash == session))


BROWSER_KEY_FILE = ".browser-key"  # in the runs folder: the key lasts as long as the runs it tells apart
BROWSER_KEY = re.compile(r"[A-Za-z0-9]{16,128}")


def browser_key(folder: Path) -> str:
    """The key that seals what the app keeps in a visitor's browser (gr.BrowserState's `secret`: which runs are
    theirs, their last benchmark): read from folder/.browser-key, else made (32 letters and digits) and written there,
    so that an app restarted on the same folder reads what the one before it kept. Gradio's default, a key made at
    each start, lost it at every restart.

    The key reaches the page with the app's config, as every BrowserState's does: it keeps the stored value from
    other pages, not from the visitor. A file that is not such a key is replaced; a folder that cannot be written
    gives a key for this start only, as Gradio's default does."""
    path = Path(folder) / BROWSER_KEY_FILE
    try:
        kept = path.read_text(encoding="ascii").strip()
        if BROWSER_KEY.fullmatch(kept):
            return kept
    except (OSError, UnicodeDecodeError):
        pass
    key = "".join(secrets.choice(string.ascii_letters + string.digits) for _ in range(32))
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_name(f"{BROWSER_KEY_FILE}.{os.getpid()}.tmp")
        temporary.write_text(key, encoding="ascii")
        os.chmod(temporary, 0o600)
        temporary.replace(path)  # atomic: two apps starting at once each read a whole key
    except OSError:
        pass
    return key
