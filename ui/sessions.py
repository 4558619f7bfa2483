"""Who is asking: the session (a browser tab, or one gradio_client Client) of the request being handled, and how
many of a session's requests wait in Gradio's queue or run now."""
from __future__ import annotations


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
