"""Reading text files people give the lab (corpora, sentence lists): UTF-8 or a sentence saying what the file is."""
from __future__ import annotations

import codecs

from core.formatting import shown

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


# The first bytes of the files people take for text: documents and archives. A .docx, .xlsx, .odt or .epub is a ZIP.
SIGNATURES = [(b"PK\x03\x04", "a ZIP archive (a Word .docx, a spreadsheet or an e-book are ZIP files too)"),
              (b"%PDF-", "a PDF document"), (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "an old Word or Excel document"),
              (b"{\\rtf", "an RTF document"), (b"\x1f\x8b", "a gzip-compressed file"),
              (b"7z\xbc\xaf\x27\x1c", "a 7-Zip archive"), (b"Rar!", "a RAR archive")]
# Files no editor turns into text: images, sound, programs and databases, by their first bytes.
OTHER_SIGNATURES = [(b"\x89PNG\r\n\x1a\n", "a PNG image"), (b"\xff\xd8\xff", "a JPEG image"),
                    (b"GIF87a", "a GIF image"), (b"GIF89a", "a GIF image"), (b"ID3", "an MP3 sound file"),
                    (b"\x7fELF", "a program"), (b"SQLite format 3\x00", "an SQLite database"),
                    (b"PAR1", "a Parquet table")]


def not_text(head: bytes, name: str, want: str = "plain text (.txt, UTF-8)") -> ValueError | None:
    """A refusal naming what the file is when its first bytes show a document, an archive, an image, sound, a
    program, a database, UTF-16/32 text or binary data (NUL bytes) instead of UTF-8 text; None when they may be
    text. `name`: the file as its owner called it; `want`: what to save a document as, or give instead."""
    for signature, kind in SIGNATURES:
        if head.startswith(signature):
            return ValueError(f"'{name}' is {kind}, not plain text; save or export it as {want} and try again.")
    for signature, kind in OTHER_SIGNATURES:
        if head.startswith(signature):
            return ValueError(f"'{name}' is {kind}, not text; give {want} instead.")
    if head[:4] == b"RIFF" and head[8:12] in (b"WEBP", b"WAVE", b"AVI "):
        kind = {b"WEBP": "a WebP image", b"WAVE": "a WAV sound file", b"AVI ": "an AVI video"}[head[8:12]]
        return ValueError(f"'{name}' is {kind}, not text; give {want} instead.")
    encoding = wide_encoding(head[:4096])
    if encoding:
        return ValueError(f"'{name}' is saved as {encoding} text; save it as UTF-8 (in most editors: Save as, "
                          "Encoding: UTF-8) and try again.")
    if b"\x00" in head:
        return ValueError(f"'{name}' looks like a binary file, not text (it contains NUL bytes); give a UTF-8 text "
                          "file.")
    return None


def cyrillic_8bit(data: bytes) -> str | None:
    """"Windows-1251" or "KOI8-R" when the bytes of `data` that are not UTF-8 read as Russian in that one-byte
    encoding, else None.

    Russian in either encoding is mostly bytes from 0xC0 up, where both keep their Cyrillic letters: Windows-1251 its
    lower case from 0xE0, KOI8-R from 0xC0 to 0xDF, and a Russian text is mostly lower case. Latin-1 French or
    German has a few such bytes among many ASCII letters, so a share of the letters is asked for too."""
    stray = [ord(c) - 0xDC00 for c in data.decode("utf-8", "surrogateescape") if "\udc80" <= c <= "\udcff"]
    high = sum(b >= 0xC0 for b in stray)
    ascii_letters = sum(0x41 <= b <= 0x5A or 0x61 <= b <= 0x7A for b in data)
    if high < 3 or high < 0.3 * (high + ascii_letters):
        return None
    upper_half = sum(b >= 0xE0 for b in stray)
    return "Windows-1251" if upper_half >= high - upper_half else "KOI8-R"


def not_utf8(data: bytes, name: str, line: int) -> ValueError:
    """The refusal of a file that is not UTF-8 from line `line` (1-based) on. `data`: bytes around the first bad
    one; when they read as Russian in a one-byte encoding (see cyrillic_8bit) the sentence names it, since Excel and
    Notepad on a Russian Windows save Windows-1251, and says how to save UTF-8 instead."""
    encoding = cyrillic_8bit(data)
    if encoding:
        return ValueError(f"'{name}' is not UTF-8 text: it reads as Russian saved as {encoding} (first such byte on "
                          f"line {shown(line)}). Save it as UTF-8 (in Excel: Save as, 'CSV UTF-8'; in Notepad: Save "
                          "as, Encoding UTF-8) and try again.")
    return ValueError(f"'{name}' is not UTF-8 text (first bad byte on line {shown(line)}); save it as UTF-8 and try "
                      "again.")


def decode_utf8(raw: bytes, name: str) -> str:
    """`raw` as text (UTF-8, a BOM accepted). Raises ValueError naming the file as `name` (the name its owner gave
    it, never a server's temporary path): its encoding when it is UTF-16 or UTF-32, binary when it holds NUL bytes,
    a document or archive by its first bytes (see not_text), else the line of the first byte that is not UTF-8 and,
    for Russian saved as Windows-1251 or KOI8-R, that encoding (see not_utf8)."""
    refusal = not_text(raw[:1 << 20], name)
    if refusal:
        raise refusal
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = raw[:error.start].count(b"\n") + 1
        raise not_utf8(raw[max(0, error.start - (1 << 19)):error.start + (1 << 19)], name, line) from None


# Bidirectional controls: embeddings and overrides (U+202A-U+202E), isolates (U+2066-U+2069), and the left-to-right
# and right-to-left marks (U+200E, U+200F). Invisible, they reorder how the rest of a line is drawn: a U+202E in a
# sentence mirrored a figure's title. No Russian sentence needs them.
BIDI_CONTROLS = dict.fromkeys([*range(0x202A, 0x202F), *range(0x2066, 0x206A), 0x200E, 0x200F])


def without_bidi_controls(text: str) -> str:
    """`text` with every bidirectional control character removed."""
    return text.translate(BIDI_CONTROLS)
