"""Corpus reading, length grouping and MLM masking."""
import pytest
import torch

from core.distill.data import (
    length_grouped_batches,
    mask_tokens,
    mlm_batch,
    read_corpus,
    split_lines,
    step_generator,
    tokenize_lines,
)


def test_read_corpus_accepts_bom_crlf_and_blank_lines(tmp_path):
    path = tmp_path / "c.txt"
    path.write_bytes("\ufeffПривет, как дела?\r\n\r\n   \r\nВсё хорошо!\r\n".encode("utf-8"))
    assert read_corpus(path) == ["Привет, как дела?", "Всё хорошо!"]


@pytest.mark.parametrize("content, message", [
    (b"", "no text"),
    (b"\n  \n\r\n", "no text"),
    (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "is a PNG image, not text"),
    (b"\xde\xad\x00\x00" * 8, "looks like a binary file"),
    ("Привет\nмир".encode("cp1251"), "not UTF-8 text"),
    ("Привет\n".encode() + "а".encode() * 100_001, "line of 100,001 characters"),
])
def test_read_corpus_refuses_bad_files_with_a_sentence(tmp_path, content, message):
    path = tmp_path / "c.txt"
    path.write_bytes(content)
    with pytest.raises(ValueError, match=message):
        read_corpus(path)


def test_read_corpus_names_the_line_of_a_bad_byte(tmp_path):
    path = tmp_path / "c.txt"
    path.write_bytes("первая\nвторая\n".encode() + "третья".encode("cp1251"))
    with pytest.raises(ValueError, match="line 3"):
        read_corpus(path)


@pytest.mark.parametrize("encoding, named", [("cp1251", "Windows-1251"), ("koi8-r", "KOI8-R")])
def test_read_corpus_names_a_russian_one_byte_encoding(tmp_path, encoding, named):
    path = tmp_path / "корпус.txt"
    path.write_bytes("Мама мыла раму.\nДети пошли в школу.\n".encode(encoding))
    with pytest.raises(ValueError) as caught:
        read_corpus(path, name="корпус.txt")
    assert str(caught.value) == (f"'корпус.txt' is not UTF-8 text: it reads as Russian saved as {named} (first such "
                                 "byte on line 1). Save it as UTF-8 (in Excel: Save as, 'CSV UTF-8'; in Notepad: "
                                 "Save as, Encoding UTF-8) and try again.")


def test_split_is_reproducible_and_disjoint():
    lines = [f"строка {i}" for i in range(200)]
    train, valid = split_lines(lines, 0.05, seed=3)
    assert split_lines(lines, 0.05, seed=3) == (train, valid)
    assert len(valid) == 10 and not set(train) & set(valid) and len(train) + len(valid) == 200


def test_tokenize_cuts_long_lines_and_counts_them(tiny_tokenizer):
    lines = ["Короткая строка.", " ".join(["слово"] * 100)]
    corpus = tokenize_lines(lines, tiny_tokenizer, max_length=16)
    assert corpus.truncated == 1
    assert max(corpus.lengths) == 16
    assert all(s[0] == tiny_tokenizer.cls_token_id and s[-1] == tiny_tokenizer.sep_token_id for s in corpus.sequences)


def test_length_grouped_batches_cover_everything_once_and_are_reproducible():
    lengths = [(i * 37) % 50 + 3 for i in range(1000)]
    batches = length_grouped_batches(lengths, 16, seed=1, epoch=0)
    flat = [i for b in batches for i in b]
    assert sorted(flat) == list(range(1000))
    assert batches == length_grouped_batches(lengths, 16, seed=1, epoch=0)
    assert batches != length_grouped_batches(lengths, 16, seed=1, epoch=1)
    # Grouping pays off: padding is a small share of what random batches would waste.
    def waste(bs):
        return sum(max(lengths[i] for i in b) * len(b) - sum(lengths[i] for i in b) for b in bs)
    shuffled = torch.randperm(1000, generator=torch.Generator().manual_seed(0)).tolist()
    random_batches = [shuffled[i:i + 16] for i in range(0, 1000, 16)]
    assert waste(batches) < 0.2 * waste(random_batches)


def test_masking_rates_and_special_tokens(tiny_tokenizer):
    ids = torch.randint(10, len(tiny_tokenizer), (200, 64))
    ids[:, 0], ids[:, -1] = tiny_tokenizer.cls_token_id, tiny_tokenizer.sep_token_id
    attention = torch.ones_like(ids)
    attention[:, 50:] = 0
    specials = sorted(set(tiny_tokenizer.all_special_ids))
    masked, labels = mask_tokens(ids, attention, specials, tiny_tokenizer.mask_token_id, len(tiny_tokenizer),
                                 torch.Generator().manual_seed(0))
    chosen = labels != -100
    assert not chosen[:, 0].any() and not chosen[:, 50:].any()  # never [CLS], [SEP] or padding
    assert torch.equal(labels[chosen], ids[chosen])
    candidates = 200 * 48
    assert 0.13 < chosen.sum().item() / candidates < 0.17
    as_mask = (masked == tiny_tokenizer.mask_token_id) & chosen
    unchanged = (masked == ids) & chosen
    assert 0.76 < as_mask.sum().item() / chosen.sum().item() < 0.84
    assert 0.07 < unchanged.sum().item() / chosen.sum().item() < 0.14  # 10% kept (+ a few random hits of itself)
    assert torch.equal(masked[~chosen], ids[~chosen])


def test_masking_is_reproducible_from_the_step_seed(tiny_tokenizer):
    sequences = [tokenize_lines(["Мы пошли гулять в парк."], tiny_tokenizer, 32).sequences[0]] * 4
    a = mlm_batch(sequences, tiny_tokenizer, step_generator(7, 3))
    b = mlm_batch(sequences, tiny_tokenizer, step_generator(7, 3))
    c = mlm_batch(sequences, tiny_tokenizer, step_generator(7, 4))
    assert torch.equal(a["input_ids"], b["input_ids"]) and torch.equal(a["labels"], b["labels"])
    assert not torch.equal(a["labels"], c["labels"])
    assert ((a["labels"] != -100).sum(dim=1) >= 1).all()  # every line teaches at least one token


@pytest.mark.parametrize("encoding, named", [("utf-16", "UTF-16"), ("utf-16-le", "UTF-16"), ("utf-32", "UTF-32")])
def test_a_corpus_in_a_wide_encoding_is_named_by_its_encoding_not_called_binary(tmp_path, encoding, named):
    path = tmp_path / "upload-1234.txt"
    path.write_bytes("Привет, как дела?\nВсё хорошо, спасибо.\n".encode(encoding))
    with pytest.raises(ValueError) as caught:
        read_corpus(path, name="диалоги.txt")
    message = str(caught.value)
    assert f"'диалоги.txt' is saved as {named} text" in message and "binary" not in message
    assert str(tmp_path) not in message


def test_a_folder_given_as_corpus_is_called_a_folder(tmp_path):
    with pytest.raises(ValueError, match="is a folder"):
        read_corpus(tmp_path)


def test_an_uploaded_sentence_file_in_utf16_is_named_by_its_encoding(tmp_path):
    from core.compare.sentences import read_sentence_file
    path = tmp_path / "фразы.txt"
    path.write_bytes("Мы ходили в кино.\nКошка спит.\n".encode("utf-16-le"))
    with pytest.raises(ValueError, match="'фразы.txt' is saved as UTF-16 text"):
        read_sentence_file(path)


@pytest.mark.parametrize("head, kind", [(b"%PDF-1.7\n", "a PDF document"), (b"PK\x03\x04", "a ZIP archive"),
                                        (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "an old Word or Excel document")])
def test_a_document_given_as_text_is_named_for_what_it_is(tmp_path, head, kind):
    from core.compare.sentences import read_sentence_file
    path = tmp_path / "фразы.txt"
    path.write_bytes(head + "Мы ходили в кино.\n".encode() * 20)
    for read in (lambda p: read_corpus(p, name=p.name), read_sentence_file):
        with pytest.raises(ValueError, match=f"'фразы.txt' is {kind}.*, not plain text; save or export it as plain "
                                             r"text \(\.txt, UTF-8\)"):
            read(path)


@pytest.mark.parametrize("head, kind", [
    (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "a PNG image"), (b"\xff\xd8\xff\xe0\x00\x10JFIF", "a JPEG image"),
    (b"GIF89a\x01\x00", "a GIF image"), (b"RIFF\x24\x00\x00\x00WEBPVP8 ", "a WebP image"),
    (b"RIFF\x24\x00\x00\x00WAVEfmt ", "a WAV sound file"), (b"\x7fELF\x02\x01", "a program"),
    (b"PAR1\x15\x04", "a Parquet table")])
def test_an_image_sound_or_program_given_as_text_is_named_for_what_it_is(tmp_path, head, kind):
    """Such a file was "a binary file (it contains NUL bytes)", or when it held none, "not UTF-8 text": no editor
    saves it as text, so the sentence names it and asks for a text file instead."""
    from core.compare.sentences import read_sentence_file
    path = tmp_path / "фразы.txt"
    path.write_bytes(head + bytes(range(256)) * 4)
    for read in (lambda p: read_corpus(p, name=p.name), read_sentence_file):
        with pytest.raises(ValueError, match=f"^'фразы.txt' is {kind}, not text; give plain text "
                                             r"\(\.txt, UTF-8\) instead\.$"):
            read(path)
