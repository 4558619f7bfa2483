"""Where a corpus comes from: a local file, a folder or glob of files, or a Hub dataset, opened with `datasets`.

Text files are one sample a line; .jsonl/.json, .csv and .parquet files hold samples in a text column. Every
refusal is a ValueError with one sentence naming the corpus as its owner wrote it.
"""
from __future__ import annotations

import codecs
import glob
import re
from dataclasses import dataclass
from pathlib import Path

from core.textfiles import not_text, not_utf8

BUILDERS = {".txt": "text", ".jsonl": "json", ".json": "json", ".csv": "csv", ".parquet": "parquet"}
KINDS = ".txt, .jsonl, .csv or .parquet"
MAX_LINE_CHARS = 100_000  # a sample is cut to a few hundred tokens anyway; a longer "line" means missing line breaks
CHUNK_BYTES = 16 << 20  # text files are checked in pieces of this size, never read whole
HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[\w.-]+)?$")


@dataclass(frozen=True)
class CorpusSource:
    """A corpus as the command line gives it.

    spec: a file, a folder, a glob ('data/*.parquet') or a Hub dataset id; text_column: the column of samples in
    .jsonl/.csv/.parquet files and Hub datasets (text files have one sample a line); config, split: of a Hub
    dataset; streaming: read it as it is used instead of converting it to Arrow on disk first."""
    spec: str
    text_column: str = "text"
    config: str | None = None
    split: str = "train"
    streaming: bool = False
    name: str | None = None  # how messages call it; default spec
    flag: str | None = None  # the option that named it, when not --corpus: its refusals begin with it

    @property
    def label(self) -> str:
        return self.name or self.spec

    def refusal(self, error: ValueError) -> ValueError:
        """`error` as this corpus's refusal: prefixed with its option ("--valid-corpus: ...") when it has one."""
        return ValueError(f"{self.flag}: {error}") if self.flag else error


def local_files(source: CorpusSource) -> tuple[str, list[str]] | None:
    """(datasets builder, files) of a local corpus, or None when spec names no local path and may be a Hub id.

    Raises ValueError for a missing file, a folder or glob with no corpus files, files of mixed kinds, or a name
    that cannot be a path here."""
    spec, name = source.spec, source.label
    path = Path(spec).expanduser()
    if any(c in spec for c in "*?["):
        files = sorted(f for f in glob.glob(str(path), recursive=True) if Path(f).is_file())
        if not files:
            raise ValueError(f"The corpus pattern '{name}' matches no file; give a file, a folder or a pattern "
                             f"of {KINDS} files.")
        return builder_of(files, name), files
    try:
        is_dir, is_file, exists = path.is_dir(), path.is_file(), path.exists()
    except OSError as error:  # a name the system refuses as a path (too long): say so, not a traceback
        shown = name if len(name) <= 40 else name[:40] + "…"
        raise ValueError(f"The corpus '{shown}' ({len(name):,} characters) is not a file or folder this machine can "
                         f"open ({error.strerror or error}); give a shorter path.") from None
    if is_dir:
        files = folder_files(path, name)
        return builder_of(files, name), files
    if is_file:
        return BUILDERS.get(path.suffix.lower(), "text"), [str(path)]
    if exists:  # a device, a pipe or a socket: nothing to read lines from twice
        raise ValueError(f"The corpus '{name}' is not a file or a folder of {KINDS} files.")
    if Path(spec).suffix.lower() in BUILDERS or not HUB_ID.match(spec):
        raise ValueError(f"The corpus file '{name}' does not exist.")
    return None


def folder_files(path: Path, name: str) -> list[str]:
    """The corpus files directly inside a folder; README and .md files are passed over, anything else refused."""
    files, others = [], []
    for item in sorted(path.iterdir()):
        if item.name.startswith(".") or not item.is_file() or item.suffix.lower() == ".md" \
                or item.name.upper().startswith("README"):
            continue
        (files if item.suffix.lower() in BUILDERS else others).append(item)
    if others or not files:
        held = f"it also holds '{others[0].name}'" if others else "it holds none"
        raise ValueError(f"The corpus '{name}' is a folder; give a text file, one sample a line. A folder works when "
                         f"it holds only {KINDS} files ({held}); a pattern such as '{path}/*.txt' picks some.")
    return [str(f) for f in files]


def builder_of(files: list[str], name: str) -> str:
    kinds = sorted({BUILDERS.get(Path(f).suffix.lower(), "text") for f in files})
    if len(kinds) > 1:
        raise ValueError(f"The corpus '{name}' mixes files of kinds {', '.join(kinds)}; give one kind "
                         "(a pattern such as 'folder/*.parquet' picks them).")
    return kinds[0]


def check_text_file(path: str | Path, name: str, samples_are_lines: bool = True) -> None:
    """Refuse a text corpus that is not UTF-8 (naming UTF-16/UTF-32 or binary, or the line of the first bad byte),
    and, when its samples are its lines (a .txt corpus), one with a line over MAX_LINE_CHARS or no text. Reads the
    file in CHUNK_BYTES pieces: memory stays flat."""
    decoder = codecs.getincrementaldecoder("utf-8-sig")()
    lines_before, tail, has_text = 0, "", False
    with open(path, "rb") as handle:
        head = handle.read(1 << 20)
        refusal = not_text(head, name)
        if refusal:
            raise refusal
        chunk = head
        while True:
            final = not chunk
            try:
                text = decoder.decode(chunk, final=final)
            except UnicodeDecodeError as error:
                line = lines_before + chunk[:max(0, error.start)].count(b"\n") + 1
                raise not_utf8(chunk, name, line) from None
            parts = (tail + text).split("\n")
            tail = parts.pop() if not final else ""
            for offset, part in enumerate(parts if samples_are_lines else ()):
                if len(part) > MAX_LINE_CHARS and len(part.strip()) > MAX_LINE_CHARS:
                    raise ValueError(f"The corpus '{name}' has a line of {len(part.strip()):,} characters (line "
                                     f"{lines_before + offset + 1:,}); put one sample on each line, at most "
                                     f"{MAX_LINE_CHARS:,} characters.")
            has_text = has_text or any(p.strip() for p in parts)
            lines_before += len(parts)
            if final:
                break
            chunk = handle.read(CHUNK_BYTES)
            if samples_are_lines and len(tail) > MAX_LINE_CHARS * 4:  # a line growing past any allowed length
                raise ValueError(f"The corpus '{name}' has a line of more than {MAX_LINE_CHARS:,} characters (line "
                                 f"{lines_before + 1:,}); put one sample on each line.")
    if samples_are_lines and not has_text:
        raise ValueError(f"The corpus '{name}' has no text: it needs at least one non-blank line.")


def open_corpus(source: CorpusSource):
    """The corpus as a `datasets.Dataset` (or `IterableDataset` when streaming) whose column text_column(source)
    holds the samples. Raises ValueError when it cannot be found or read."""
    import datasets

    found = local_files(source)
    if found is not None and found[0] in ("text", "json", "csv"):  # datasets' own decoding error names no file
        for file in found[1]:
            check_text_file(file, source.label, samples_are_lines=found[0] == "text")
    try:
        if found is None:
            dataset = datasets.load_dataset(source.spec, source.config, split=source.split,
                                            streaming=source.streaming)
        else:
            dataset = datasets.load_dataset(found[0], data_files=found[1], split="train", streaming=source.streaming)
    except Exception as error:  # datasets' parser, generation and network errors: one sentence each
        if found is not None:
            raise ValueError(f"The corpus '{source.label}' could not be read: {first_line(error)}.") from None
        from core.models.zoo import hub_reachable
        if not hub_reachable():  # datasets' own sentence then says "... not cached in None"
            raise ValueError(f"The corpus '{source.label}' is not a local file or folder, and the Hub cannot be "
                             "reached to load a dataset of that name that is not in this machine's datasets cache; "
                             "give a local file (.txt, .jsonl, .csv, .parquet) or load the dataset once where "
                             "there is internet.") from None
        raise ValueError(f"The corpus '{source.label}' is not a local file or folder, and the Hub dataset of that "
                         f"name (config {source.config or 'default'}, split {source.split}) could not be loaded: "
                         f"{first_line(error)}.") from None
    check_column(dataset, source, found is not None and found[0] == "text")
    return dataset


def first_line(error: BaseException) -> str:
    """The innermost cause's message, cut to its first line."""
    while error.__cause__ is not None or error.__context__ is not None:
        inner = error.__cause__ or error.__context__
        if not str(inner).strip():
            break
        error = inner
    text = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    return text.rstrip(". ")[:300]


def check_column(dataset, source: CorpusSource, is_text_file: bool) -> None:
    column = "text" if is_text_file else source.text_column
    features = dataset.features
    if features is None:  # a stream whose columns are known only once read
        return
    if column not in features:
        names = ", ".join(sorted(features)) or "none"
        raise ValueError(f"The corpus '{source.label}' has no column '{column}' (its columns: {names}); choose one "
                         "with --text-column.")
    dtype = getattr(features[column], "dtype", None)
    if dtype not in ("string", "large_string"):
        empty = " (a column with no text at all reads as numbers)" if str(dtype).startswith("float") else ""
        raise ValueError(f"The column '{column}' of the corpus '{source.label}' holds {dtype or 'nested values'}, "
                         f"not text{empty}; choose a text column with --text-column.")


def text_column(source: CorpusSource) -> str:
    """The column that holds the samples of `source` once opened."""
    found = local_files(source)
    return "text" if found is not None and found[0] == "text" else source.text_column
