"""Text as the page shows it: a sentence, a name or a table cell put into HTML (a gr.Error's toast, a plotly label)
or into a gr.Markdown, escaped so that it reads as typed; and the page's guard that inserts a pasted text of many
lines into a text box at once, so the checks that follow see it in moments."""
from __future__ import annotations

import html
import re

import gradio as gr


def page_text(text: str) -> str:
    """Text shown as HTML (a gr.Error's toast, a plotly label), escaped so that '<' and '&' show as typed."""
    return html.escape(str(text), quote=False)


MARKDOWN_SPECIALS = re.compile(r"([\\`*_\[\]|~$])")


def markdown_text(text: str) -> str:
    """Text put into a gr.Markdown (a sentence, a message, a table cell) shown as typed: HTML escaped, Markdown's
    emphasis, code, link, table and LaTeX characters backslashed, line breaks as spaces (a table row is one line)."""
    text = " ".join(str(text).splitlines())
    return MARKDOWN_SPECIALS.sub(r"\\\1", page_text(text))


LONG_TEXT_LINES = 200  # line breaks in one insertion past which the page inserts the text itself
# Chromium inserts a text of many lines into a text box one line at a time, laying the box out again after each
# (and Gradio's growing box measures itself at each): 10,000 lines pasted or filled in kept the page frozen for
# minutes before any refusal could show. Such an insertion is made at once instead, with one input event, so the
# checks that follow see the whole text in moments. (The box's undo history does not hold such an insertion.)
LONG_TEXT_JS = f"""
if (!window.rudistilLongText) {{
    window.rudistilLongText = true;
    document.addEventListener('beforeinput', (event) => {{
        const box = event.target;
        if (!(box instanceof HTMLTextAreaElement)
            || !['insertText', 'insertFromPaste', 'insertReplacementText'].includes(event.inputType)) return;
        const text = event.data ?? event.dataTransfer?.getData('text/plain');  // a paste's text is in dataTransfer
        if (typeof text !== 'string') return;
        let breaks = 0;
        for (let at = text.indexOf('\\n'); at >= 0 && breaks <= {LONG_TEXT_LINES}; at = text.indexOf('\\n', at + 1)) {{
            breaks++;
        }}
        if (breaks <= {LONG_TEXT_LINES}) return;
        event.preventDefault();
        box.setRangeText(text, box.selectionStart, box.selectionEnd, 'end');
        box.dispatchEvent(new InputEvent('input', {{bubbles: true, inputType: event.inputType}}));
    }}, true);
}}
"""


def long_text_guard() -> gr.HTML:
    """An element with no content that makes the page insert a pasted (or filled-in) text of more than
    LONG_TEXT_LINES lines into any text box at once (LONG_TEXT_JS); once a page is enough, more do no harm."""
    return gr.HTML("", visible="hidden", js_on_load=LONG_TEXT_JS, padding=False)
