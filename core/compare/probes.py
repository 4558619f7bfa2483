"""The bundled probe sets: topic-labelled sentences (embedding maps), fill-in-the-blank sentences (predictions), and
everyday fill-in sentences written apart from the corpus, each with every answer a fluent speaker would accept."""
from __future__ import annotations

import csv
from dataclasses import dataclass
from functools import lru_cache

from core.models.tokenizer import nfc
from core.paths import ASSETS

PROBES = ASSETS / "probes"


@dataclass(frozen=True)
class FillMaskProbe:
    sentence: str  # holds exactly one [MASK]
    expected: str
    topic: str


@dataclass(frozen=True)
class EverydayProbe:
    sentence: str  # holds exactly one [MASK], standing for one word
    answers: tuple[str, ...]  # every acceptable word, lower-case, in the form the slot needs
    topic: str


def _rows(name: str) -> list[dict]:
    """The rows of a probe file, every field composed (NFC) as the models read it."""
    with open(PROBES / name, encoding="utf-8", newline="") as handle:
        return [{key: nfc(value) if isinstance(value, str) else value for key, value in row.items()}
                for row in csv.DictReader(handle, delimiter="\t", quoting=csv.QUOTE_NONE)]


@lru_cache(maxsize=1)
def topic_sentences() -> tuple[tuple[str, str], ...]:
    """(topic, sentence) pairs, at least 40 sentences for each of at least 12 topics."""
    return tuple((row["topic"], row["sentence"]) for row in _rows("topics.tsv"))


@lru_cache(maxsize=1)
def fill_mask_probes() -> tuple[FillMaskProbe, ...]:
    return tuple(FillMaskProbe(row["sentence"], row["expected"], row["topic"]) for row in _rows("fill_mask.tsv"))


@lru_cache(maxsize=1)
def everyday_probes() -> tuple[EverydayProbe, ...]:
    """assets/probes/everyday.tsv: things anyone says about home, school, health, town, shopping, weather, feelings,
    food, family, work and transport, written without looking at the corpus (so a teacher tuned to the corpus's own
    phrasing shows it here)."""
    return tuple(EverydayProbe(row["sentence"], tuple(row["answers"].split("|")), row["topic"])
                 for row in _rows("everyday.tsv"))
