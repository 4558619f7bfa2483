"""The measurement scripts: each says what it is doing on stderr as it goes, keeps its figures on stdout, and
refuses bad flags with one line and exit code 2."""
from __future__ import annotations

import pytest

from scripts import bench_embed, bench_predict, plot_bundled_curves, split_corpus

pytestmark = pytest.mark.slow


def stage_lines(err: str) -> list[str]:
    return [line for line in err.splitlines() if line.startswith("[") and " s] " in line]


def test_bench_predict_shows_each_stage_before_its_figures(monkeypatch, capsys):
    monkeypatch.setattr(bench_predict, "ARCH_PAIRS", [])  # the bundled pair only: the real sizes take minutes
    assert bench_predict.main(["--runs", "1", "--threads", "1"]) == 0
    printed = capsys.readouterr()
    stages = stage_lines(printed.err)
    assert any(line.endswith("timing bundled pair at 1 thread(s): 4 figures of 1 run each ...") for line in stages)
    assert "loading" in stages[0] or "stand-in" in stages[0]
    assert "fill-mask x2" in printed.out and "timing" not in printed.out


@pytest.mark.parametrize("argv, start", [(["--runs", "0"], "error: --runs must be at least 1, not 0."),
                                         (["--threads", "0"], "error: --threads takes thread counts")])
def test_bench_predict_refuses_bad_flags_in_one_line(argv, start, capsys):
    assert bench_predict.main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith(start) and err.count("\n") == 1


def test_bench_embed_shows_each_stage(monkeypatch, capsys):
    monkeypatch.setattr(bench_embed.embed, "warm_up_umap", lambda: None)  # numba's compile alone takes ~10 s
    monkeypatch.setattr(bench_embed, "measure_pair", lambda *args: {"embed both": (0.5, 0.9)})
    assert bench_embed.main(["--no-real-size", "--sentences", "20", "--runs", "1"]) == 0
    printed = capsys.readouterr()
    stages = stage_lines(printed.err)
    assert stages[0].endswith("warming up UMAP (import and numba compile) ...")
    assert any("WordPiece tokenizer on the bundled corpus" in line for line in stages)
    assert "embed both" in printed.out and "   0.50    0.90" in printed.out


def test_bench_embed_refuses_bad_flags_in_one_line(capsys):
    assert bench_embed.main(["--runs", "0"]) == 2
    assert capsys.readouterr().err == "error: --runs must be at least 1, not 0.\n"


def test_split_corpus_refuses_an_empty_folder_without_touching_the_corpus(tmp_path, capsys):
    train = split_corpus.ASSETS / "corpus" / "train.txt"
    before = train.stat().st_mtime_ns
    assert split_corpus.main([str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "holds no topic files" in err and err.count("\n") == 1
    assert train.stat().st_mtime_ns == before


def test_plot_bundled_curves_shows_its_stages(tmp_path, capsys):
    out = tmp_path / "curves.png"
    assert plot_bundled_curves.main(["--out", str(out)]) == 0
    printed = capsys.readouterr()
    assert [line.split("] ", 1)[1].split(" ")[0] for line in stage_lines(printed.err)] == ["reading", "drawing"]
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and printed.out == f"wrote {out}\n"


def test_bench_distill_step_prints_tokens_mfu_and_memory(capsys):
    from scripts import bench_distill_step
    assert bench_distill_step.main(["--pair", "arch-tiny", "--device", "cpu", "--steps", "2"]) == 0
    out = capsys.readouterr().out
    assert "tokens/s" in out and "MFU" in out and "peak memory" in out


def test_distill_step_flops_count_the_teacher_once_and_the_student_three_times():
    from core.bench.plan import ModelShape, distill_step_flops
    teacher = ModelShape("t", "arch", layers=12, hidden=768, heads=12, ffn=3072, max_seq_len=512, params=0,
                         vocab=119547)
    student = ModelShape("s", "arch", layers=6, hidden=768, heads=12, ffn=3072, max_seq_len=512, params=0,
                         vocab=119547)
    flops = distill_step_flops(teacher, student, 32, 256)
    per_layer = 2 * 256 * (4 * 768**2 + 2 * 768 * 3072) + 4 * 256**2 * 768
    head = 2 * 256 * (768**2 + 768 * 119547)
    assert flops["teacher_forward"] == 32 * (12 * per_layer + head)
    assert flops["student_forward_backward"] == 3 * 32 * (6 * per_layer + head)
    assert flops["total"] == flops["teacher_forward"] + flops["student_forward_backward"]
    decoder = 2 * 256 * 768 * 119547
    read = distill_step_flops(teacher, student, 32, 256, head_share=0.15)  # logits at 15% of the positions
    assert read["teacher_forward"] == pytest.approx(flops["teacher_forward"] - 0.85 * 32 * decoder)
    left_out = 0.85 * 32 * decoder
    assert read["student_forward_backward"] == pytest.approx(flops["student_forward_backward"] - 3 * left_out)
