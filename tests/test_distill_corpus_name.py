"""A corpus uploaded in the Distill tab keeps the name its owner gave it: in the run's configuration (request.json, then
config.json, which the distillation command reads and writes) and in the settings the tab says the run started with."""
import json

from core.runs.store import RunPaths
from tests.support.models import corpus_lines
from train.cli import distill_parser
from train.config import from_flags
from ui import distill_settings, distill_start
from ui.components import Upload

GIVEN = "отзывы клиентов.txt"  # the name on the person's disk; Gradio stores the upload under a name of its own


def uploaded(tmp_path) -> Upload:
    stored = tmp_path / "upload_7f3a.txt"
    stored.write_text("\n".join(corpus_lines(40)) + "\n", encoding="utf-8")
    return Upload(str(stored), GIVEN)


def test_an_uploaded_corpus_is_recorded_and_shown_by_the_name_its_owner_gave_it(ctx, monkeypatch, tmp_path):
    said = []
    monkeypatch.setattr(distill_start.gr, "Info", said.append)
    form = dict(teacher="bundled-teacher", steps=10, batch_size=4, corpus_source=distill_settings.UPLOAD,
                corpus_file=uploaded(tmp_path))
    _, dropdown, _ = distill_start.start_run_from_form(ctx, None, **form)
    paths = RunPaths(ctx.launcher.root / dropdown.value)
    request = json.loads(paths.request.read_text(encoding="utf-8"))
    assert request["corpus_name"] == GIVEN and request["corpus"] == str(paths.corpus)  # the run reads its own copy
    # the run's process starts from request.json and writes its configuration, the name included, to config.json
    flags = distill_parser().parse_args(["--config", str(paths.request), "--output-dir", str(paths.root)])
    assert from_flags(flags)[0].corpus_name == GIVEN
    shown = f"on the uploaded corpus '{GIVEN}'"
    assert shown in said[0]  # Start's notice
    assert shown in distill_start.start_line(ctx, dropdown.value, **form)  # and the line kept under Start


def test_a_run_on_the_bundled_corpus_names_no_upload(ctx, monkeypatch):
    said = []
    monkeypatch.setattr(distill_start.gr, "Info", said.append)
    _, dropdown, _ = distill_start.start_run_from_form(ctx, None, teacher="bundled-teacher", steps=10)
    request = json.loads(RunPaths(ctx.launcher.root / dropdown.value).request.read_text(encoding="utf-8"))
    assert request["corpus"] == "bundled" and request["corpus_name"] is None
    assert "uploaded" not in said[0]
