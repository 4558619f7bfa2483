"""The sentences the Embeddings tab maps: the bundled topic probes, typed lines or an uploaded .txt/.csv, checked.

In a notebook:
    from core.compare.sentences import probe_set, read_sentence_file, typed_set
    probe_set()                   # the topic probe sentences, labelled by topic
    typed_set(text)               # one sentence a line
    read_sentence_file("my.csv")  # a .txt, one sentence a line, or a table with a 'sentence' or 'text' column
    word_scripts("The cat sat on the [MASK].")  # WordScripts(cyrillic=0, other=5): not a Russian sentence

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
from core.models.masked_lm import MASK
from core.textfiles import decode_utf8, without_bidi_controls

MAX_SENTENCES = 5000
MAX_SENTENCE_CHARS = 1000  # longer lines are refused: they are paragraphs or pasted data, not sentences
FILE_TYPES = (".txt", ".csv", ".tsv")
SENTENCE_COLUMNS = ("sentence", "text")
LABEL_COLUMNS = ("label", "topic")
_LETTER_RUNS = re.compile(r"[^\W\d_]+")  # a word's letters: digits, underscores, marks and emoji split or drop out


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
    return _checked([(line, "") for line in (text or "").splitlines()], "the typed text", "Line", 1)


def read_sentence_file(path: str | Path) -> SentenceSet:
    """Sentences from a UTF-8 .txt (one a line) or .csv/.tsv (a sentence/text column, optional label/topic column)."""
    if not isinstance(path, (str, Path)):
        raise ValueError(f"The sentences file must be given as an uploaded file, not a {type(path).__name__}.")
    path = Path(path)
    name = path.name
    if path.suffix.lower() not in FILE_TYPES:
        raise ValueError(f"{name} is not a .txt, .csv or .tsv file; upload one sentence a line (.txt) or a table with "
                         "a 'sentence' column (.csv, .tsv).")
    data = path.read_bytes()
    if not data.strip():
        raise ValueError(f"{name} is empty; put one sentence on each line.")
    text = decode_utf8(data, name)
    if path.suffix.lower() == ".txt":
        return _checked([(line, "") for line in text.splitlines()], name, "Line", 1)
    return _checked(_table_rows(text, name), name, "Row", 2)


def _table_rows(text: str, name: str) -> list[tuple[str, str]]:
    """(sentence, label) of each row of a CSV/TSV whose delimiter is the commonest of tab, ';' and ',' in its header."""
    header_line = text.splitlines()[0] if text else ""
    counts = {d: header_line.count(d) for d in ("\t", ";", ",")}
    delimiter = max(counts, key=counts.get) if max(counts.values()) else "\t"
    try:
        rows = list(csv.reader(io.StringIO(text), delimiter=delimiter))
    except csv.Error as error:
        if "field larger than field limit" in str(error):
            raise ValueError(f"{name} has a cell of more than {csv.field_size_limit()} characters; a sentence may "
                             f"have at most {MAX_SENTENCE_CHARS}: split it into sentences.") from None
        raise ValueError(f"{name} could not be read as a table ({error}); check its quotes or save it again.") from None
    columns = [c.strip().lower() for c in rows[0]]
    sentence = next((columns.index(c) for c in SENTENCE_COLUMNS if c in columns), None)
    label = next((columns.index(c) for c in LABEL_COLUMNS if c in columns), None)
    if sentence is None:
        raise ValueError(f"{name} has no 'sentence' or 'text' column (its columns: {', '.join(rows[0][:10])}); "
                         "name the column of sentences 'sentence'.")
    return [(_cell(row, sentence), _cell(row, label)) for row in rows[1:]]


def _cell(row: list[str], column: int | None) -> str:
    """The row's value in that column; "" when the table has no such column or the row is short."""
    return row[column] if column is not None and column < len(row) else ""


def _checked(rows: list[tuple[str, str]], source: str, unit: str, first: int) -> SentenceSet:
    """Blank rows dropped, white space tidied, limits enforced with a message that names the offending row."""
    sentences, labels = [], []
    for number, (sentence, label) in enumerate(rows, start=first):
        sentence = " ".join(without_bidi_controls(sentence).split())  # invisible controls reorder drawn text
        if not sentence:
            continue
        if len(sentence) > MAX_SENTENCE_CHARS:
            raise ValueError(f"{unit} {number} of {source} has {len(sentence)} characters; a sentence may have at "
                             f"most {MAX_SENTENCE_CHARS}: split it into sentences.")
        sentences.append(sentence)
        labels.append(" ".join(label.split()))
    if not sentences:
        raise ValueError(f"There are no sentences in {source}; put one sentence on each line.")
    if len(sentences) > MAX_SENTENCES:
        raise ValueError(f"There are {len(sentences)} sentences in {source}, more than the {MAX_SENTENCES} a map "
                         "can take; keep fewer of them.")
    return SentenceSet(tuple(sentences), tuple(labels), source)


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


def _is_cyrillic(word: str) -> bool:
    # most letters, not all: a Latin look-alike typed into a Russian word ("мoлоко" with a Latin o) leaves it Russian
    return 2 * sum("CYRILLIC" in unicodedata.name(letter, "") for letter in word) > len(word)
