"""Training a cased WordPiece tokenizer with BERT's special tokens (the `tokenizers` library does the work)."""
from __future__ import annotations

from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
from transformers import BertTokenizerFast

BERT_SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
# Every Russian and Latin letter, digit and common sign gets an entry even when rare in the corpus, so an unseen word
# is split into pieces instead of becoming [UNK].
ALPHABET = sorted(set("абвгдеёжзийклмнопрстуфхцчшщъыьэюяАБВГДЕЁЖЗИЙКЛМНОПРСТУФХЦЧШЩЪЫЬЭЮЯ"
                      "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
                      ".,!?;:()\"'«»—–-…%№@#$&*+=/<>[]{}_~^|\\"))


def train_wordpiece(lines: list[str], vocab_size: int, special_tokens: list[str] | None = None,
                    min_frequency: int = 2) -> BertTokenizerFast:
    """A cased WordPiece tokenizer of at most vocab_size entries, learnt from `lines`, ready for BERT models.

    Casing and accents are kept (like DeepPavlov's cased RuBERT vocabularies); special tokens come first, in the
    given order, so ids 0..4 are [PAD] [UNK] [CLS] [SEP] [MASK] by default.
    """
    specials = list(special_tokens or BERT_SPECIALS)
    backend = Tokenizer(models.WordPiece(unk_token="[UNK]", max_input_chars_per_word=100))
    backend.normalizer = normalizers.BertNormalizer(clean_text=True, handle_chinese_chars=True, strip_accents=False,
                                                    lowercase=False)
    backend.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    backend.decoder = decoders.WordPiece(prefix="##")
    trainer = trainers.WordPieceTrainer(vocab_size=vocab_size, min_frequency=min_frequency, special_tokens=specials,
                                        initial_alphabet=ALPHABET,
                                        continuing_subword_prefix="##", show_progress=False)
    backend.train_from_iterator(lines, trainer=trainer)
    cls_id, sep_id = backend.token_to_id("[CLS]"), backend.token_to_id("[SEP]")
    backend.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", cls_id), ("[SEP]", sep_id)])
    return BertTokenizerFast(tokenizer_object=backend, unk_token="[UNK]", pad_token="[PAD]", cls_token="[CLS]",
                             sep_token="[SEP]", mask_token="[MASK]", do_lower_case=False, model_max_length=512)


def wordpiece_from_vocab(tokens: list[str]) -> BertTokenizerFast:
    """A BERT tokenizer over a given vocabulary (ids in list order); the first five tokens must be BERT's specials."""
    backend = Tokenizer(models.WordPiece({token: i for i, token in enumerate(tokens)}, unk_token="[UNK]"))
    backend.normalizer = normalizers.BertNormalizer(strip_accents=False, lowercase=False)
    backend.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    backend.decoder = decoders.WordPiece(prefix="##")
    backend.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", special_tokens=[("[CLS]", tokens.index("[CLS]")), ("[SEP]", tokens.index("[SEP]"))])
    return BertTokenizerFast(tokenizer_object=backend, unk_token="[UNK]", pad_token="[PAD]", cls_token="[CLS]",
                             sep_token="[SEP]", mask_token="[MASK]", do_lower_case=False, model_max_length=512)
