"""Faults a fresh user found in review, each a test with the right value."""
from __future__ import annotations

import socket

import numpy as np
import pytest


def test_bidi_controls_are_removed_from_sentences_before_use():
    from core.compare import predict
    from core.compare.sentences import typed_set

    controls = "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f"
    assert predict.check_text(f"\u202eМой [MASK]{controls} разрядился.") == "Мой [MASK] разрядился."
    assert typed_set("один\u202e два\nтри\u2066").sentences == ("один два", "три")


def test_knn_overlap_is_na_when_the_vectors_do_not_vary():
    from core.compare import similarity

    same = np.tile(np.arange(8.0), (30, 1))  # 30 copies of one sentence
    varied = np.random.default_rng(0).normal(size=(30, 8))
    assert np.isnan(similarity.knn_overlap(same, same)) and np.isnan(similarity.knn_overlap(varied, same))
    assert similarity.knn_overlap(varied, varied) == 1.0


def test_a_figure_that_rounds_to_zero_reads_0_000():
    from ui.embed_tables import number

    assert number(-0.0002) == "0.000" and number(-0.002) == "-0.002" and number(float("nan")) == "n/a"


def test_a_stopped_benchmark_says_what_it_measured_under_a_bar_that_is_not_full():
    from ui import bench_run

    line = bench_run.progress_text(0.4, bench_run.stopped_line(3, 8, "12 s", False), 0.0, 30.0, final=True)
    assert line.startswith("`" + "█" * 8 + "░" * 12 + "` 40%") and "stopped after 3 of 8 measurements" in line
    assert "left" not in line
    assert "previous benchmark" in bench_run.stopped_line(0, 8, "1 s", True)
    # the bar is the share measured, whatever share of the time the unfinished measurement had taken
    assert [bench_run.stopped_fraction(m, 4) for m in (0, 1, 4)] == [0.0, 0.25, 0.99]


def test_the_speed_up_of_fast_over_reference_is_not_in_the_fast_column():
    from ui import bench_tables

    rows = bench_tables.ratio_rows([{"model": "arch:x", "batch_size": 1, "fast_speedup": 2.5},
                                    {"model": "arch:x", "batch_size": 1, "mode": "onnxruntime",
                                     "runtime_speedup": 1.5}])
    assert [r.get("between modes (here)") for r in rows] == [2.5, 1.5]
    assert all("fast (here)" not in r for r in rows)


def test_shared_words_never_get_the_unshared_grey():
    from ui import predict_figures

    assert "#7f7f7f" not in [c.lower() for c in predict_figures.SHARED_PALETTE]


def run_app(argv, capsys):
    import app

    with pytest.raises(SystemExit) as exit_:
        app.main(argv)
    err = capsys.readouterr().err
    return exit_.value.code, err


def test_app_refuses_a_bad_port_or_host_in_one_line_with_exit_2(capsys):
    code, err = run_app(["--port", "99999"], capsys)
    assert code == 2 and err == "error: --port must be a whole number from 1 to 65535, not 99999.\n"
    code, err = run_app(["--host", "999.1.1.1", "--port", "7861"], capsys)
    assert code == 2 and err.startswith("error: --host 999.1.1.1 is not") and err.count("\n") == 1, err
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        code, err = run_app(["--host", "127.0.0.1", "--port", str(port)], capsys)
    assert code == 2 and err == (f"error: port {port} on 127.0.0.1 is already in use (another program, or another "
                                 "copy of the app); choose another with --port.\n")


def test_app_refuses_an_unknown_flag_in_one_line_with_exit_2(capsys):
    code, err = run_app(["--bogus"], capsys)
    assert code == 2 and err == "error: unrecognized arguments: --bogus (see --help)\n"


def test_app_refuses_an_unknown_teacher_with_exit_2(capsys, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with socket.socket() as free:
        free.bind(("127.0.0.1", 0))
        port = free.getsockname()[1]
    code, err = run_app(["--host", "127.0.0.1", "--port", str(port), "--teacher", "nope-model"], capsys)
    assert code == 2 and err.startswith("error: ") and err.count("\n") == 1, err


@pytest.mark.parametrize("host, owned", [("127.0.0.1", False), ("localhost", False), ("::1", False),
                                         ("0.0.0.0", True), ("::", True)])
def test_runs_belong_to_their_sessions_when_the_app_is_served_beyond_this_machine(host, owned, capsys, monkeypatch):
    from ui.context import AppContext

    asked = {}

    def create(teacher=None, student=None, owned_runs=None):
        asked["owned_runs"] = owned_runs
        raise ValueError("stopped before serving")

    monkeypatch.setattr(AppContext, "create", staticmethod(create))
    monkeypatch.setattr("app.check_address", lambda host, port: 7860)  # "::" may not be bindable here
    code, err = run_app(["--host", host], capsys)
    assert code == 2 and err == "error: stopped before serving\n"
    assert asked["owned_runs"] is owned


def test_an_app_with_owned_runs_keeps_each_sessions_runs_its_own(runs_dir, monkeypatch):
    from ui.context import AppContext

    monkeypatch.delenv("SPACE_ID", raising=False)
    owned = AppContext.create("bundled-teacher", "bundled-student", owned_runs=True)
    private = AppContext.create("bundled-teacher", "bundled-student")
    assert owned.launcher.shared and not owned.on_space  # local paths still allowed; runs owned
    assert not private.launcher.shared


def test_mask_each_word_refuses_a_lower_case_mask_as_predict_reads_it():
    from core.compare import predict

    for mark in ("[MASK]", "[mask]", "[Mask]"):
        with pytest.raises(ValueError, match="takes a sentence without"):
            predict.check_text(f"Мама готовит {mark} на ужин.", with_masks=False)
    with pytest.raises(ValueError, match=r"write \[MASK\] \(in capitals\)"):
        predict.check_text("Мама готовит [mask] на ужин.")
    assert predict.check_text("Мама готовит маску.", with_masks=False) == "Мама готовит маску."
