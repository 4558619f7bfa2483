"""Tokenizers the lab makes or loads: a cased WordPiece learnt from a corpus (the `tokenizers` library does the work),
one over a given vocabulary, and the checks every loaded tokenizer passes.

Every tokenizer here composes Unicode first (NFC): text copied on macOS often spells й as и + U+0306 and ё as
е + U+0308 (NFD), and a cased Russian vocabulary holds only the composed letters, so NFD text would become [UNK].
"""
from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable

from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
from transformers import BertTokenizerFast, PreTrainedTokenizerBase

BERT_SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
# Every Russian and Latin letter, digit and common sign gets an entry even when rare in the corpus, so an unseen word
# is split into pieces instead of becoming [UNK].
ALPHABET = sorted(set("абвгдеёжзийклмнопрстуфхцчшщъыьэюяАБВГДЕЁЖЗИЙКЛМНОПРСТУФХЦЧШЩЪЫЬЭЮЯ"
                      "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
                      ".,!?;:()\"'«»—–-…%№@#$&*+=/<>[]{}_~^|\\"))
# Every vocabulary train_wordpiece learns holds BERT's specials and the whole alphabet, whatever size is asked for.
MIN_VOCAB_SIZE = len(BERT_SPECIALS) + len(ALPHABET)
# Letters that a lowercasing or accent-stripping normalizer changes; a cased Russian vocabulary needs them intact.
CASE_PROBE = "ЁЙ ёй Ab"
_BRACKETED = re.compile(r"^\[[^\]]*\]$")  # [PAD], [unused12]: upper case there says nothing about the vocabulary


def nfc(text: str) -> str:
    """Text with its letters composed (NFC): и + U+0306 becomes й, е + U+0308 becomes ё."""
    return unicodedata.normalize("NFC", text)


def compose_unicode(tokenizer: PreTrainedTokenizerBase) -> PreTrainedTokenizerBase:
    """Prepend NFC to a fast tokenizer's normalizer, in place, so NFD and NFC text give the same tokens.

    Offsets still point into the text as given. A tokenizer that already composes is left as it is; so is a slow
    tokenizer (it has no backend normalizer), which this lab never loads.
    """
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is None:
        return tokenizer
    _compose_backend(backend)
    return tokenizer


def _compose_backend(backend: Tokenizer) -> None:
    current = backend.normalizer
    decomposed = unicodedata.normalize("NFD", "йё")
    if current is not None and current.normalize_str(decomposed) == current.normalize_str("йё"):
        return  # already composes (or folds both spellings alike)
    backend.normalizer = normalizers.NFC() if current is None else normalizers.Sequence([normalizers.NFC(), current])


def is_cased_vocabulary(tokens: Iterable[str]) -> bool:
    """Whether a vocabulary holds upper-case letters or й/ё (which an accent-stripping tokenizer cannot produce).

    Bracketed entries such as [PAD] or [unused3] are left out.
    """
    for token in tokens:
        if _BRACKETED.match(token):
            continue
        if any(ch.isupper() or ch in "йёЙЁ" for ch in token):
            return True
    return False


def folds_case_or_accents(tokenizer: PreTrainedTokenizerBase) -> bool:
    """Whether the tokenizer's normalizer lowercases text or strips accents (й -> и, ё -> е)."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is None:
        return bool(getattr(tokenizer, "do_lower_case", False))
    if backend.normalizer is None:
        return False
    return backend.normalizer.normalize_str(CASE_PROBE) != CASE_PROBE


def _bert_backend(model: models.Model) -> Tokenizer:
    """A BERT-style pipeline: NFC, cased BertNormalizer, BERT's pre-tokenizer, WordPiece decoding."""
    backend = Tokenizer(model)
    backend.normalizer = normalizers.Sequence([
        normalizers.NFC(),
        normalizers.BertNormalizer(clean_text=True, handle_chinese_chars=True, strip_accents=False, lowercase=False)])
    backend.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    backend.decoder = decoders.WordPiece(prefix="##")
    return backend


def _bert_tokenizer(backend: Tokenizer) -> BertTokenizerFast:
    tokenizer = BertTokenizerFast(tokenizer_object=backend, unk_token="[UNK]", pad_token="[PAD]", cls_token="[CLS]",
                                  sep_token="[SEP]", mask_token="[MASK]", do_lower_case=False, strip_accents=False,
                                  model_max_length=512)
    return compose_unicode(tokenizer)  # the constructor may rebuild the normalizer from its arguments


def train_wordpiece(lines: list[str], vocab_size: int, special_tokens: list[str] | None = None,
                    min_frequency: int = 2) -> BertTokenizerFast:
    """A cased WordPiece tokenizer of at most vocab_size entries, learnt from `lines`, ready for BERT models.

    Casing and accents are kept (like DeepPavlov's cased RuBERT vocabularies) and the lines are composed (NFC) before
    counting, so an NFD corpus learns the same entries as its NFC spelling. Special tokens come first, in the given
    order, so ids 0..4 are [PAD] [UNK] [CLS] [SEP] [MASK] by default.
    """
    specials = list(special_tokens or BERT_SPECIALS)
    backend = _bert_backend(models.WordPiece(unk_token="[UNK]", max_input_chars_per_word=100))
    trainer = trainers.WordPieceTrainer(vocab_size=vocab_size, min_frequency=min_frequency, special_tokens=specials,
                                        initial_alphabet=ALPHABET,
                                        continuing_subword_prefix="##", show_progress=False)
    backend.train_from_iterator(lines, trainer=trainer)
    cls_id, sep_id = backend.token_to_id("[CLS]"), backend.token_to_id("[SEP]")
    backend.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", cls_id), ("[SEP]", sep_id)])
    return _bert_tokenizer(backend)


def wordpiece_from_vocab(tokens: list[str]) -> BertTokenizerFast:
    """A cased BERT tokenizer over a given vocabulary (ids in list order); the first five tokens must be BERT's
    specials."""
    backend = _bert_backend(models.WordPiece({token: i for i, token in enumerate(tokens)}, unk_token="[UNK]"))
    backend.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", special_tokens=[("[CLS]", tokens.index("[CLS]")), ("[SEP]", tokens.index("[SEP]"))])
    return _bert_tokenizer(backend)
