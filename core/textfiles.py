"""Reading text files people give the lab (corpora, sentence lists): UTF-8 or a sentence saying what the file is."""
from __future__ import annotations

import codecs

# Byte-order marks of the encodings people save "text" in by mistake; UTF-32's marks begin with UTF-16's, so first.
BOMS = [(codecs.BOM_UTF32_LE, "UTF-32"), (codecs.BOM_UTF32_BE, "UTF-32"), (codecs.BOM_UTF16_LE, "UTF-16"),
        (codecs.BOM_UTF16_BE, "UTF-16")]


def wide_encoding(head: bytes) -> str | None:
    """"UTF-16" or "UTF-32" when the first bytes of a file are text in that encoding, else None.

    By the byte-order mark; without one, UTF-16 by its zero bytes: the high byte of every ASCII character (spaces,
    digits, punctuation, line ends) is zero, so zeros fill one of the two byte positions and almost none of the
    other, which binary data and UTF-8 do not do."""
    for bom, name in BOMS:
        if head.startswith(bom):
            return name
    pairs = len(head) // 2
    if pairs < 8:
        return None
    even, odd = head[0:pairs * 2:2].count(0) / pairs, head[1:pairs * 2:2].count(0) / pairs
    if max(even, odd) >= 0.1 and min(even, odd) <= 0.01:
        return "UTF-16"
    return None


def decode_utf8(raw: bytes, name: str) -> str:
    """`raw` as text (UTF-8, a BOM accepted). Raises ValueError naming the file as `name` (the name its owner gave
    it, never a server's temporary path): its encoding when it is UTF-16 or UTF-32, binary when it holds NUL bytes,
    else the line of the first byte that is not UTF-8."""
    encoding = wide_encoding(raw[:4096])
    if encoding:
        raise ValueError(f"'{name}' is saved as {encoding} text; save it as UTF-8 (in most editors: Save as, "
                         "Encoding: UTF-8) and try again.")
    if b"\x00" in raw[:1 << 20]:
        raise ValueError(f"'{name}' looks like a binary file, not text (it contains NUL bytes); give a UTF-8 text "
                         "file.")
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = raw[:error.start].count(b"\n") + 1
        raise ValueError(f"'{name}' is not UTF-8 text (first bad byte on line {line}); save it as UTF-8 and try "
                         "again.") from None


# Bidirectional controls: embeddings and overrides (U+202A-U+202E), isolates (U+2066-U+2069), and the left-to-right
# and right-to-left marks (U+200E, U+200F). Invisible, they reorder how the rest of a line is drawn: a U+202E in a
# sentence mirrored a figure's title. No Russian sentence needs them.
BIDI_CONTROLS = dict.fromkeys([*range(0x202A, 0x202F), *range(0x2066, 0x206A), 0x200E, 0x200F])


def without_bidi_controls(text: str) -> str:
    """`text` with every bidirectional control character removed."""
    return text.translate(BIDI_CONTROLS)
