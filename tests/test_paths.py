"""core.paths: the one check every tool makes of the output folder it is given."""
from pathlib import Path

import pytest

from core.paths import check_output_folder


def check(folder: Path, **reuse) -> str | None:
    try:
        check_output_folder(folder, "--out", **reuse)
    except ValueError as error:
        return str(error)
    return None


RUN = {"kind": "a run's folder", "action": "resume it", "marks": ("config.json",)}


def test_new_empty_and_own_folders_pass_untouched(tmp_path):
    own = tmp_path / "own"
    own.mkdir()
    (own / "config.json").write_text("{}", encoding="utf-8")
    (tmp_path / "empty").mkdir()
    for folder in (tmp_path / "new" / "deeper", tmp_path / "empty", own):
        assert check(folder, **RUN) is None
    assert check(tmp_path / "empty") is None
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["config.json", "empty", "own"]


def test_a_file_or_a_folder_of_other_files_is_refused_in_one_sentence(tmp_path):
    (tmp_path / "notes.txt").write_text("mine", encoding="utf-8")
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "photo.jpg").write_bytes(b"\xff\xd8")
    assert check(tmp_path / "notes.txt", **RUN) == (
        f"--out '{tmp_path / 'notes.txt'}' is a file; give a new or empty folder, or a run's folder to resume it.")
    assert check(busy, **RUN) == (f"--out '{busy}' already holds other files and is not a run's folder; give a new "
                                  "or empty folder, or a run's folder to resume it.")
    assert check(busy) == f"--out '{busy}' already holds other files; give a new or empty folder."
    (busy / "config.json").write_text("{}", encoding="utf-8")
    assert check(busy, **RUN) is None and check(busy) is not None  # without marks nothing is taken back
    assert (busy / "photo.jpg").read_bytes() == b"\xff\xd8"


def test_a_folder_under_a_file_cannot_be_made(tmp_path):
    (tmp_path / "notes.txt").write_text("mine", encoding="utf-8")
    folder = tmp_path / "notes.txt" / "out"
    said = check(folder, **RUN)
    assert said == f"--out '{folder}' cannot be made: '{tmp_path / 'notes.txt'}' is a file, not a folder."


def test_a_path_too_long_for_the_system_is_one_sentence_with_the_path_cut(tmp_path):
    folder = tmp_path / ("x" * 300)
    said = check(folder, **RUN)
    assert said == (f"--out '{str(folder)[:40]}…' ({len(str(folder)):,} characters) cannot be made (File name too "
                    "long); give a shorter path.")


LONG = "/tmp/" + "x" * 300  # a name no file system takes as a path


@pytest.mark.cli
@pytest.mark.parametrize("module, argv, label", [
    ("train.export", ["run:none", "--format", "onnx", "--output", LONG], "--output"),
    ("train.pretrain_teacher", ["--output-dir", LONG, "--steps", "1"], "--output-dir"),
])
def test_the_tools_refuse_a_too_long_output_folder_in_one_line(module, argv, label, capsys, monkeypatch, tmp_path):
    import importlib

    monkeypatch.setenv("RUDISTIL_RUNS_DIR", str(tmp_path))
    assert importlib.import_module(module).main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"error: {label} '{LONG[:40]}…' (305 characters) cannot be made (File name too long); give a "
                   "shorter path."]
