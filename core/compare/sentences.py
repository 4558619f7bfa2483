"""The sentences the Embeddings tab maps: the bundled topic probes, typed lines or an uploaded .txt/.csv, checked.

In a notebook:
    from core.compare.sentences import probe_set, read_sentence_file, typed_set
    probe_set()                   # the topic probe sentences, labelled by topic
    typed_set(text)               # one sentence a line
    read_sentence_file("my.csv")  # a .txt, one sentence a line, or a table with a 'sentence' or 'text' column
    word_scripts("The cat sat on the [MASK].")  # WordScripts(cyrillic=0, other=5): not a Russian sentence
    visible_text("Кошка\u200b спит")  # "Кошка спит": invisible characters taken out

Every way in gives a SentenceSet within the same limits, or a ValueError that says which line to change.
"""
from __future__ import annotations

import csv
import hashlib
import io
import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path

from core.compare import probes
from core.formatting import count, shown
from core.models.masked_lm import MASK
from core.textfiles import BIDI_CONTROLS, decode_utf8, without_bidi_controls

MAX_SENTENCES = 5000
MAX_SENTENCE_CHARS = 1000  # longer lines are refused: they are paragraphs or pasted data, not sentences
FILE_TYPES = (".txt", ".csv", ".tsv")
SENTENCE_COLUMNS = ("sentence", "text", "sentences", "предложение", "текст")  # a table's header, any case
LABEL_COLUMNS = ("label", "topic", "метка", "тема")
_LETTER_RUNS = re.compile(r"[^\W\d_]+")  # a word's letters: digits, underscores, marks and emoji split or drop out
# Characters that draw nothing: C0 and C1 controls other than tab and line ends, the soft hyphen (web pages put it
# inside words, where it split a word into two for the tokenizer), zero-width space, word joiner and a stray BOM.
# A line of only these looked empty on the page yet counted as a sentence.
INVISIBLE = dict.fromkeys([*range(0x00, 0x09), 0x0B, 0x0C, *range(0x0E, 0x20), *range(0x7F, 0xA0), 0xAD, 0x200B,
                           0x2060, 0xFEFF])


# A character that shows: neither white space nor one visible_text takes out. A search for it runs in C, where
# visible_text's translate took seconds over 100,000 pasted lines.
_SHOWN = re.compile("[^\\s" + "".join(re.escape(chr(c)) for c in [*INVISIBLE, *BIDI_CONTROLS]) + "]")


def has_shown_text(text: str) -> bool:
    """Whether `text` has a character that shows (visible_text(text).strip() is not empty), found fast."""
    return _SHOWN.search(text) is not None


def visible_text(text: str) -> str:
    """`text` without the characters that draw nothing or reorder the rest (bidirectional controls, see
    core.textfiles); a text of only such characters comes back empty."""
    return without_bidi_controls(text).translate(INVISIBLE)


@dataclass(frozen=True)
class SentenceSet:
    """The sentences every model embeds, with an optional label each (colours the maps)."""
    sentences: tuple[str, ...]
    labels: tuple[str, ...]  # one a sentence; "" where the input gave none
    source: str  # where they came from: "probe set", a file name, "the typed text"

    def __len__(self) -> int:
        return len(self.sentences)

    @property
    def key(self) -> str:
        """A hash of the sentences (not the labels): what embeddings are cached under."""
        return hashlib.sha1("\n".join(self.sentences).encode("utf-8")).hexdigest()


def probe_set() -> SentenceSet:
    """The bundled topic probe sentences, labelled by topic."""
    pairs = probes.topic_sentences()
    return SentenceSet(tuple(s for _, s in pairs), tuple(t for t, _ in pairs), "probe set")


def typed_set(text: str) -> SentenceSet:
    """Sentences typed one a line."""
    if text is not None and not isinstance(text, str):
        raise ValueError(f"Typed sentences must be text, one a line, not a {type(text).__name__}.")
    return _checked([(line, "") for line in (text or "").splitlines()], 1, "the typed text", "Line")


def read_sentence_file(path: str | Path) -> SentenceSet:
    """Sentences from a UTF-8 .txt (one a line) or .csv/.tsv (under a header naming a column sentence, text,
    предложение or текст, and optionally one label, topic, метка or тема)."""
    if not isinstance(path, (str, Path)):
        raise ValueError(f"The sentences file must be given as an uploaded file, not a {type(path).__name__}.")
    path = Path(path)
    name = path.name
    if path.suffix.lower() not in FILE_TYPES:
        raise ValueError(f"{name} is not a .txt, .csv or .tsv file; upload one sentence a line (.txt) or a table with "
                         "a 'sentence' column (.csv, .tsv).")
    data = path.read_bytes()
    text = decode_utf8(data, name)
    if not visible_text(text).strip():
        raise ValueError(f"{name} is empty; put one sentence on each line.")
    if path.suffix.lower() == ".txt":
        return _checked([(line, "") for line in text.splitlines()], 1, name, "Line")
    return _checked(*_table_rows(text, name), name, "Row")


def _table_rows(text: str, name: str) -> tuple[list[tuple[str, str]], int]:
    """(sentence, label) of each row of a CSV/TSV under its header (its first row that is not blank), and the number
    of the first of them; the delimiter is the commonest of tab, ';' and ',' in the header."""
    header_line = next((line for line in text.splitlines() if line.strip()), "")
    counts = {d: header_line.count(d) for d in ("\t", ";", ",")}
    delimiter = max(counts, key=counts.get) if max(counts.values()) else "\t"
    try:
        rows = list(csv.reader(io.StringIO(text), delimiter=delimiter))
    except csv.Error as error:
        if "field larger than field limit" in str(error):
            raise ValueError(f"{name} has a cell of more than {count(csv.field_size_limit(), 'character')}; a "
                             f"sentence may have at most {shown(MAX_SENTENCE_CHARS)}: split it into "
                             "sentences.") from None
        raise ValueError(f"{name} could not be read as a table ({error}); check its quotes or save it again.") from None
    top = next(i for i, row in enumerate(rows) if any(visible_text(c).strip() for c in row))  # the file is not blank
    header, rows = rows[top], rows[top + 1:]
    columns = [visible_text(c).strip().lower() for c in header]
    sentence = next((columns.index(c) for c in SENTENCE_COLUMNS if c in columns), None)
    label = next((columns.index(c) for c in LABEL_COLUMNS if c in columns), None)
    if sentence is None:
        quoted = ", ".join(f"'{c if len(c) <= 30 else c[:30] + '…'}'" for c in header[:6])
        raise ValueError(f"{name} has no 'sentence' or 'text' column: its header (the first row) is {quoted}"
                         f"{', …' if len(header) > 6 else ''}; put a header row above the sentences with 'sentence' "
                         "over their column (and 'label' over the labels, if any), or save the sentences one a line "
                         "as a .txt file.")
    for number, row in enumerate(rows, start=top + 2):
        # more cells than the header names: the separator is inside a sentence, and part of it would be its label
        if any(cell.strip() for cell in row[len(header):]):
            mark = {"\t": "tabs", ";": "semicolons", ",": "commas"}[delimiter]
            raise ValueError(f"Row {shown(number)} of {name} has {count(len(row), 'cell')} but its header names "
                             f"{shown(len(header))}: the columns are split by {mark}, and a sentence holds some too. "
                             "Put each sentence in double quotes, or save the table with another separator.")
    return [(_cell(row, sentence), _cell(row, label)) for row in rows], top + 2


def _cell(row: list[str], column: int | None) -> str:
    """The row's value in that column; "" when the table has no such column or the row is short."""
    return row[column] if column is not None and column < len(row) else ""


def _checked(rows: list[tuple[str, str]], first: int, source: str, unit: str) -> SentenceSet:
    """Blank rows dropped, white space tidied, limits enforced with a message that names the offending row."""
    # checked first, and fast: a paste of 100,000 lines is refused in moments, not after each line is tidied. Only a
    # line longer than a sentence may be can be tidied into one too long, and the first such is named before the count.
    for number, (sentence, _) in enumerate(rows, start=first):
        if len(sentence) > MAX_SENTENCE_CHARS:
            _check_length(" ".join(visible_text(sentence).split()), number, source, unit)
    given = sum(1 for sentence, _ in rows if has_shown_text(sentence))
    if given > MAX_SENTENCES:
        raise ValueError(too_many(given, source))
    sentences, labels = [], []
    for sentence, label in rows:
        sentence = " ".join(visible_text(sentence).split())  # invisible controls reorder drawn text
        if not sentence:
            continue
        sentences.append(sentence)
        labels.append(" ".join(visible_text(label).split()))
    if not sentences:
        where = "a line of its own" if unit == "Line" else "a row of its own, under the header 'sentence'"
        raise ValueError(f"There are no sentences in {source}; put each sentence on {where}.")
    return SentenceSet(tuple(sentences), tuple(labels), source)


def _check_length(sentence: str, number: int, source: str, unit: str) -> None:
    """ValueError naming the row when the tidied `sentence` is longer than MAX_SENTENCE_CHARS."""
    if len(sentence) > MAX_SENTENCE_CHARS:
        raise ValueError(f"{unit} {shown(number)} of {source} has {count(len(sentence), 'character')}; a "
                         f"sentence may have at most {shown(MAX_SENTENCE_CHARS)}: split it into sentences.")


def too_many(given: int, source: str) -> str:
    """The sentence refusing `given` sentences (more than MAX_SENTENCES) from `source`."""
    return (f"There are {count(given, 'sentence')} in {source}, more than the {shown(MAX_SENTENCES)} a map can "
            "take; keep fewer of them.")


# ---------------------------------------------------------------------------------------------------------------------
# Is it Russian? The models here learnt Russian: their guesses in a sentence of other words say little.


@dataclass(frozen=True)
class WordScripts:
    """The words of a sentence by their letters; [MASK] and what has no letters (digits, emoji) are not counted."""
    cyrillic: int  # words written mostly in Cyrillic letters
    other: int  # words written mostly in other letters: Latin, Greek, Chinese, ...

    @property
    def russian(self) -> bool:
        """At least half the words are Cyrillic: a Russian sentence with a brand name or two in Latin still is one."""
        return self.cyrillic > 0 and self.cyrillic >= self.other


def word_scripts(text: str) -> WordScripts:
    """How many words of `text` are Cyrillic and how many are not, its [MASK]s (in any case) left out."""
    words = _LETTER_RUNS.findall(re.sub(re.escape(MASK), " ", text, flags=re.IGNORECASE))
    cyrillic = sum(_is_cyrillic(word) for word in words)
    return WordScripts(cyrillic, len(words) - cyrillic)


def mixed_script_words(text: str) -> list[str]:
    """The words of `text` that mix Cyrillic and Latin letters ("двoе" typed with a Latin o), in order, once each:
    a tokenizer reads such a word as rare pieces, not as the Russian word it looks like."""
    words = _LETTER_RUNS.findall(re.sub(re.escape(MASK), " ", text, flags=re.IGNORECASE))
    mixed = [w for w in words if any("CYRILLIC" in unicodedata.name(c, "") for c in w)
             and any("LATIN" in unicodedata.name(c, "") for c in w)]
    return list(dict.fromkeys(mixed))


def _is_cyrillic(word: str) -> bool:
    # most letters, not all: a Latin look-alike typed into a Russian word ("мoлоко" with a Latin o) leaves it Russian
    return 2 * sum("CYRILLIC" in unicodedata.name(letter, "") for letter in word) > len(word)
