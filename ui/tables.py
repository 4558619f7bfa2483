"""Read-only tables that fit their column: each column's share of the width from the characters its longest
unbreakable word needs, so a 1024-pixel window breaks no word over two lines."""
from __future__ import annotations

import math

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
