"""train.pretrain_teacher: its MLM loss runs the vocabulary head at masked positions only and equals the library's;
its nearby-lines contrastive loss; resume; refused options."""
from __future__ import annotations

import json

import pytest
import torch
from transformers import AutoTokenizer

from core.saving import RUNTIME_KEYS
from tests.support.models import tiny_bert
from train.pretrain_teacher import pretraining_losses


def test_masked_only_head_gives_the_library_loss_and_gradients():
    model, reference = tiny_bert(vocab_size=300), tiny_bert(vocab_size=300)
    ids = torch.randint(5, 300, (3, 12))
    labels = torch.full((3, 12), -100)
    labels[0, 2], labels[1, 7], labels[2, 0], labels[2, 11] = 17, 250, 5, 99
    batch = {"input_ids": ids, "attention_mask": torch.ones_like(ids), "labels": labels}
    ours, theirs = pretraining_losses(model, batch)["mlm"], reference(**batch).loss
    assert ours.item() == pytest.approx(theirs.item(), rel=1e-6)
    ours.backward()
    theirs.backward()
    for (name, a), (_, b) in zip(model.named_parameters(), reference.named_parameters()):
        assert torch.allclose(a.grad, b.grad, atol=1e-6), name


@pytest.mark.parametrize("extra", [[], ["--contrastive-weight", "0.5", "--contrastive-window", "3"]],
                         ids=["mlm", "mlm+contrast"])
@pytest.mark.slow
def test_a_run_stopped_after_a_checkpoint_resumes_to_the_same_weights(tmp_path, monkeypatch, capsys, extra):
    from safetensors.torch import load_file

    from tests.support.models import corpus_lines
    from train import pretrain_teacher

    lines = corpus_lines()
    (tmp_path / "train.txt").write_text("\n".join(lines[:300]), encoding="utf-8")
    (tmp_path / "valid.txt").write_text("\n".join(lines[300:340]), encoding="utf-8")
    common = ["--corpus", str(tmp_path / "train.txt"), "--valid-corpus", str(tmp_path / "valid.txt"), "--layers", "1",
              "--hidden", "32", "--heads", "2", "--ffn", "64", "--vocab-size", "300", "--steps", "4",
              "--eval-every", "2", "--batch-size", "8", "--save-dtype", "float32", "--precision", "fp32",
              "--device", "cpu", *extra]
    assert pretrain_teacher.main([*common, "--output-dir", str(tmp_path / "whole")]) == 0
    common += ["--tokenizer", str(tmp_path / "whole")]  # the trainer breaks ties differently in each process
    assert pretrain_teacher.main([*common, "--output-dir", str(tmp_path / "whole")]) == 0

    real_figures, calls = pretrain_teacher.mlm_figures, []

    def crash_at_second_evaluation(model, batches):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt  # as if killed after the checkpoint of step 2
        return real_figures(model, batches)

    monkeypatch.setattr(pretrain_teacher, "mlm_figures", crash_at_second_evaluation)
    capsys.readouterr()
    assert pretrain_teacher.main([*common, "--output-dir", str(tmp_path / "parts")]) == 130  # as a shell's Ctrl-C
    said = capsys.readouterr().err.strip().splitlines()[-1]
    assert said == (f"Stopped at step 4: the checkpoint of step 2 is in {tmp_path / 'parts'}; run the same command "
                    "with --resume to go on from it.")
    monkeypatch.setattr(pretrain_teacher, "mlm_figures", real_figures)
    (tmp_path / "parts").rename(tmp_path / "moved")  # a run folder moved elsewhere still resumes
    assert pretrain_teacher.main([*common, "--output-dir", str(tmp_path / "moved"), "--resume"]) == 0
    whole = load_file(tmp_path / "whole" / "model.safetensors")
    parts = load_file(tmp_path / "moved" / "model.safetensors")
    assert whole.keys() == parts.keys() and all(torch.equal(whole[k], parts[k]) for k in whole)
    log = json.loads((tmp_path / "moved" / "pretraining.json").read_text(encoding="utf-8"))["log"]
    assert [r["step"] for r in log] == [2, 4] and all(0 <= r["topic_purity"] <= 1 for r in log)
    assert all(("contrast_loss" in r) == bool(extra) for r in log)
    saved = json.loads((tmp_path / "moved" / "tokenizer_config.json").read_text(encoding="utf-8"))
    assert not set(RUNTIME_KEYS) & set(saved)  # evaluation's calls truncate to 256; the saved teacher does not


@pytest.mark.parametrize("prepare, message", [
    (lambda out: out.write_text("notes", encoding="utf-8"),
     "is a file; give a new or empty folder, or a teacher's folder to resume it."),
    (lambda out: (out.mkdir(), (out / "passwd").write_text("root:x:0:0", encoding="utf-8")),
     "already holds other files and is not a teacher's folder"),
])
def test_an_output_folder_that_is_not_a_teachers_is_refused_untouched(tmp_path, capsys, prepare, message):
    from train import pretrain_teacher

    out = tmp_path / "teacher"
    prepare(out)
    before = sorted(p.name for p in tmp_path.rglob("*"))
    assert pretrain_teacher.main(["--output-dir", str(out), "--steps", "1"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: --output-dir") and message in err and err.count("\n") == 1
    assert sorted(p.name for p in tmp_path.rglob("*")) == before


def test_an_output_folder_that_cannot_be_made_is_refused_before_any_work(capsys):
    from train import pretrain_teacher

    assert pretrain_teacher.main(["--output-dir", "/proc/x/teacher", "--steps", "1"]) == 2
    err = capsys.readouterr().err
    assert err == "error: --output-dir '/proc/x/teacher' cannot be made: the folder '/proc' does not take new files " \
                  "or folders.\n", err


def test_a_missing_held_out_corpus_is_named_by_its_option(tmp_path, capsys):
    from train import pretrain_teacher

    missing = tmp_path / "valid.txt"
    assert pretrain_teacher.main(["--output-dir", str(tmp_path / "t"), "--valid-corpus", str(missing)]) == 2
    assert capsys.readouterr().err == f"error: --valid-corpus: The corpus file '{missing}' does not exist.\n"
    assert not (tmp_path / "t").exists()


@pytest.mark.parametrize("option, value, message", [
    ("--contrastive-weight", "-1", "--contrastive-weight must be 0 or a positive number"),
    ("--contrastive-weight", "nan", "--contrastive-weight must be 0 or a positive number"),
    ("--contrastive-window", "0", "--contrastive-window must be 1 or more lines"),
    ("--steps", "-1", "--steps must be 1 or more; got -1."),
    ("--vocab-size", "0", "--vocab-size must be 1 or more; got 0."),
    ("--vocab-size", "169", "--vocab-size must be at least 170 (BERT's 5 special tokens and the 165 letters, digits "
                            "and signs every vocabulary holds); got 169."),
    ("--heads", "4 --hidden 30", "--hidden must be a multiple of --heads"),
    ("--dropout", "2", "--dropout is a probability, from 0 to below 1; got 2."),
    ("--lr", "nan", "--lr must be a positive number"),
    ("--warmup", "1.5", "--warmup is a share of the steps"),
    ("--max-length", "600", "--max-positions (512) must be at least --max-length (600)."),
])
def test_a_bad_contrastive_option_is_refused_in_one_line(tmp_path, capsys, option, value, message):
    from train import pretrain_teacher

    assert pretrain_teacher.main(["--output-dir", str(tmp_path / "t"), option, *value.split()]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err and err.count("\n") == 1
    assert not (tmp_path / "t").exists()


def test_the_contrast_term_is_info_nce_of_the_pairs_mean_pooled_last_states():
    from train import neighbour_contrast

    model = tiny_bert(vocab_size=300)
    ids = torch.randint(5, 300, (4, 9))
    mask = torch.ones_like(ids)
    mask[1, 6:] = mask[3, 4:] = 0
    labels = torch.full((4, 9), -100)
    labels[:, 1] = ids[:, 1]
    losses = pretraining_losses(model, {"input_ids": ids, "attention_mask": mask, "labels": labels}, pairs=2)
    hidden = model.bert(input_ids=ids, attention_mask=mask).last_hidden_state
    pooled = torch.stack([hidden[i, :int(mask[i].sum())].mean(0) for i in range(4)])
    assert losses["contrast"].item() == pytest.approx(neighbour_contrast.info_nce(pooled[:2], pooled[2:]).item(),
                                                      rel=1e-5)


def test_a_vocabulary_smaller_than_the_corpus_alphabet_is_refused_with_the_size_that_works(tmp_path, capsys):
    from core.distill.data import read_corpus
    from core.models.tokenizer import train_wordpiece
    from tests.support.models import corpus_lines
    from train import pretrain_teacher

    lines = corpus_lines(120)
    (tmp_path / "train.txt").write_text("\n".join(lines[:100]), encoding="utf-8")
    (tmp_path / "valid.txt").write_text("\n".join(lines[100:]), encoding="utf-8")
    # the smallest vocabulary this corpus gives: every letter and sign, alone and as a continuation
    needed = len(train_wordpiece(read_corpus(str(tmp_path / "train.txt")), 1, min_frequency=1))
    args = ["--corpus", str(tmp_path / "train.txt"), "--valid-corpus", str(tmp_path / "valid.txt"), "--layers", "1",
            "--hidden", "32", "--heads", "2", "--ffn", "64", "--min-frequency", "1", "--steps", "1",
            "--eval-every", "1", "--batch-size", "4", "--device", "cpu", "--output-dir", str(tmp_path / "t")]
    assert needed > 170
    assert pretrain_teacher.main([*args, "--vocab-size", str(needed - 1)]) == 2
    assert capsys.readouterr().err.splitlines()[-1] == (
        f"error: --vocab-size {needed - 1} is below what this corpus's alphabet alone needs (every letter and sign, "
        f"alone and as a word's continuation): give {needed} or more.")
    assert not (tmp_path / "t").exists()
    assert pretrain_teacher.main([*args, "--vocab-size", str(needed)]) == 0
    assert len(AutoTokenizer.from_pretrained(tmp_path / "t")) == needed
