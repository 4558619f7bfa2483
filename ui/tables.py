"""Read-only tables that fit their column: each column's share of the width from the characters its longest
unbreakable word needs, so a 1024-pixel window breaks no word over two lines; a Markdown table too wide for a phone
scrolls sideways with its words whole, and a line above it says so."""
from __future__ import annotations

import math

import gradio as gr

# A table's font is monospace, so a column's width in characters is its width in pixels over one character's. A
# browser breaks a cell's text at a space and after a hyphen, and anywhere in a word only when the word is wider
# than its cell; a non-breaking space keeps a figure beside its word ("чай 41%").


PADDING_CHARS = 2.5  # a cell's padding, 16 px, is two characters of 8.4 px; half of one more spares a word that
# would fit to the pixel ("finished" in 67.2 px of 67 px) from the shares' rounding


def column_widths(columns: dict[str, int]) -> list[str]:
    """Each column's share of the table's width in percent: the characters it needs, plus PADDING_CHARS. Rounded
    down, so the shares never add up to more than the table (a pixel more scrolled it sideways).

    columns: header -> the characters of the column's longest unbreakable word (header and values), at least 1."""
    units = [chars + PADDING_CHARS for chars in columns.values()]
    return [f"{math.floor(10000 * u / sum(units)) / 100}%" for u in units]


# A Markdown table's cells break words anywhere once the table is squeezed (Gradio's prose: "m / as / k" on a
# 390-pixel phone). A gr.Markdown with this class keeps each word whole and its tables scroll sideways instead
# (app.py's CSS).
SIDEWAYS_TABLES = "sideways-tables"

SCROLL_NOTE = "Scroll sideways for more columns →"
# Shows the note's block only while a table in the box is wider than its room (a phone), measured again whenever the
# box's or a table's size changes and whenever the box's content is replaced (a Markdown drawn again by an action).
SCROLL_NOTE_JS = """
const holder = element.closest('.block') || element;
const boxId = element.querySelector('.scroll-note').dataset.table;
const cut = (box) => [...box.querySelectorAll('*')].some(e => e.scrollWidth > e.clientWidth + 1
    && ['auto', 'scroll'].includes(getComputedStyle(e).overflowX));
const observe = (box) => {
    const update = () => { holder.style.display = cut(box) ? '' : 'none'; };
    const sizes = new ResizeObserver(update);
    const follow = () => { box.querySelectorAll('table').forEach(table => sizes.observe(table)); update(); };
    sizes.observe(box);
    new MutationObserver(follow).observe(box, {childList: true, subtree: true});
    follow();
};
const find = (tries) => {
    const box = document.getElementById(boxId);
    if (box) observe(box);
    else if (tries > 0) setTimeout(() => find(tries - 1), 200);
};
holder.style.display = 'none';
find(150);
"""


def scroll_note(box_id: str) -> gr.HTML:
    """A line, placed above the component `box_id`, saying that its table scrolls sideways; shown only while one
    of its tables is wider than the box (a phone), also after an action draws the box again."""
    return gr.HTML(SCROLL_NOTE, html_template=f'<p class="scroll-note" data-table="{box_id}">${{value}}</p>',
                   css_template=".scroll-note {margin: 0; font-size: var(--text-md); color: var(--body-text-color)}",
                   js_on_load=SCROLL_NOTE_JS, elem_id=f"{box_id}-scrolls")
