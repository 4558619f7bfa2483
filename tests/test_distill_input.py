"""Bad input to the Distill tab and the distillation command line, each with the right answer: a corpus the teacher's
tokenizer cannot read (emoji, symbols) is refused with its share of unknown tokens, on a sample of a large corpus; a
run still training is refused by Delete at once, before any confirmation; a run deleted or an id no run can have is
named (cut short) with what to do; a run that never started is not told to resume."""
import json
import os

import pytest

from core.distill.sources import CorpusSource
from core.distill.training_data import UNKNOWN_SAMPLE, check_readable, load_training_data, unknown_share
from core.runs.export import no_metrics_message
from core.runs.store import RunPaths, run_dir_of, write_status
from tests.support.runs import run_entries
from train.launcher import RunLauncher
from ui import distill_actions, distill_form, distill_settings, distill_start, distill_tab
from ui.context import AppContext
from ui.page_text import markdown_text

EMOJI = ["😀", "🎉", "★", "→", "∑", "🔥", "👍", "✨"]


def emoji_lines(count: int) -> list[str]:
    """Lines of emoji and symbols only, none of them in a Russian WordPiece vocabulary."""
    return [" ".join(EMOJI[(i + k) % len(EMOJI)] * (1 + k % 3) for k in range(2 + i % 5)) for i in range(count)]


def mixed_lines(count: int) -> list[str]:
    """Lines of the bundled corpus, every other one ending in an emoji: some unknown tokens, most known."""
    from tests.support.models import corpus_lines
    return [line + (" 🎉" if i % 2 else "") for i, line in enumerate(corpus_lines(count))]


def share_by_hand(lines: list[str], tokenizer) -> float:
    """The share of [UNK] among the word pieces of `lines`, counted with the tokenizer's own tokenize()."""
    pieces = [piece for line in lines for piece in tokenizer.tokenize(line)]
    return pieces.count(tokenizer.unk_token) / len(pieces)


def written(folder, name: str, lines: list[str]):
    path = folder / name
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


# -- the check in core, used by the command line and the tab

def test_a_corpus_of_emoji_is_refused_with_its_share_and_what_to_do(tiny_tokenizer):
    lines = emoji_lines(50)
    share = share_by_hand(lines, tiny_tokenizer)
    assert share == 1.0
    with pytest.raises(ValueError) as refused:
        check_readable(lines, tiny_tokenizer, "emoji.txt")
    assert str(refused.value) == (
        "100% of the tokens of the corpus 'emoji.txt' are unknown to the teacher's tokenizer ([UNK]): it cannot read "
        "this text (emoji, symbols or an alphabet it lacks), so the student would learn nothing from it. Give text "
        "the teacher reads, at least half of its tokens known, or another teacher whose vocabulary covers it.")


def test_a_corpus_with_some_unknown_tokens_passes(tiny_tokenizer):
    lines = mixed_lines(200)
    share = share_by_hand(lines, tiny_tokenizer)
    assert 0.01 < share < 0.5
    assert unknown_share(lines, tiny_tokenizer) == pytest.approx(share)
    check_readable(lines, tiny_tokenizer, "mixed.txt")


def test_half_unknown_passes_and_just_over_half_is_refused(tiny_tokenizer):
    assert tiny_tokenizer.tokenize("и 😀") == ["и", tiny_tokenizer.unk_token]
    half = ["и 😀"] * 500
    assert unknown_share(half, tiny_tokenizer) == 0.5
    check_readable(half, tiny_tokenizer, "half.txt")
    over = half[:-1] + ["😀"]  # 500 unknown pieces of 999
    with pytest.raises(ValueError, match=r"^just over 50% of the tokens of the corpus 'over.txt' are unknown"):
        check_readable(over, tiny_tokenizer, "over.txt")


class CountingTokenizer:
    """A tokenizer that counts the texts it is asked to tokenise."""

    def __init__(self, tokenizer):
        self.tokenizer, self.texts = tokenizer, 0

    def __getattr__(self, name):
        return getattr(self.tokenizer, name)

    def __call__(self, texts, **kwargs):
        self.texts += len(texts)
        return self.tokenizer(texts, **kwargs)


def test_only_a_sample_of_a_large_corpus_is_tokenised(tiny_tokenizer):
    lines = mixed_lines(1000) * 2 + emoji_lines(198_000)  # 200,000 samples, 99 in 100 unreadable
    counting = CountingTokenizer(tiny_tokenizer)
    with pytest.raises(ValueError) as refused:
        check_readable(lines, counting, "big.txt")
    assert counting.texts == UNKNOWN_SAMPLE
    expected = share_by_hand([lines[i * 200] for i in range(UNKNOWN_SAMPLE)], tiny_tokenizer)
    assert str(refused.value).startswith(f"{expected:.0%} of the tokens of the corpus 'big.txt' (counted on 1,000 of "
                                         "its 200,000 samples) are unknown")


@pytest.mark.parametrize("streaming", [False, True])
def test_the_runs_data_refuses_an_unreadable_corpus_and_takes_a_mixed_one(tiny_tokenizer, tmp_path, streaming):
    emoji = written(tmp_path, "emoji.txt", emoji_lines(600))
    with pytest.raises(ValueError, match=r"^100% of the tokens of the corpus '.*emoji.txt' are unknown"):
        load_training_data(CorpusSource(str(emoji), streaming=streaming), None, tiny_tokenizer, 32, seed=0)
    mixed = written(tmp_path, "mixed.txt", mixed_lines(600))
    data = load_training_data(CorpusSource(str(mixed), streaming=streaming), None, tiny_tokenizer, 32, seed=0)
    assert data.train.count_rows(1) >= 1 and data.valid_lines


@pytest.mark.cli
def test_the_command_line_refuses_an_unreadable_corpus_in_one_line(tmp_path, tiny_teacher_dir, capsys):
    from train.distill import main

    out = tmp_path / "run"
    corpus = written(tmp_path, "emoji.txt", emoji_lines(200))
    code = main(["--teacher", str(tiny_teacher_dir), "--corpus", str(corpus), "--output-dir", str(out),
                 "--max-steps", "2"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and not out.exists()
    assert err[0].startswith(f"error: 100% of the tokens of the corpus '{corpus}' are unknown to the teacher's "
                             "tokenizer ([UNK])")


# -- the Distill tab

def test_the_tab_refuses_an_unreadable_upload_and_queues_a_mixed_one(ctx, tmp_path):
    emoji = written(tmp_path, "emoji.txt", emoji_lines(40))
    share = share_by_hand(emoji_lines(40), distill_settings.teacher_tokenizer(ctx, "bundled-teacher"))
    assert share > 0.9  # the bundled teacher knows a symbol or two
    said = distill_form.corpus_note_line(ctx, str(emoji), "bundled-teacher")  # under the box, as it arrives
    assert said.startswith(markdown_text(f"{share:.0%} of the tokens of the corpus 'emoji.txt' are unknown"))
    with pytest.raises(ValueError) as refused:
        distill_start.start_run_from_form(ctx, None, teacher="bundled-teacher", corpus_source=distill_settings.UPLOAD,
                                        corpus_file=str(emoji), steps=10)
    assert str(refused.value).startswith(f"{share:.0%} of the tokens of the corpus 'emoji.txt' are unknown")
    assert said == markdown_text(str(refused.value)) and run_entries(ctx.launcher.root) == []
    mixed = written(tmp_path, "mixed.txt", mixed_lines(40))
    assert distill_form.corpus_note_line(ctx, str(mixed), "bundled-teacher") == "'mixed.txt': 40 samples, one a line."
    _, dropdown, _ = distill_start.start_run_from_form(ctx, None, teacher="bundled-teacher", steps=10,
                                                     corpus_source=distill_settings.UPLOAD, corpus_file=str(mixed))
    assert (ctx.launcher.root / dropdown.value / "status.json").is_file()


def test_the_line_under_the_corpus_box_is_said_again_when_the_teacher_changes(ctx):
    import gradio as gr
    with gr.Blocks() as demo:
        parts = distill_tab.build(ctx)
    by_id = {getattr(b, "elem_id", None): b for b in demo.blocks.values()}
    box, note, teacher = by_id["distill-corpus-file"], by_id["distill-corpus-note"], parts["teacher"]
    for source in (box, teacher):
        told = [d for d in demo.fns.values() if (source._id, "change") in d.targets and d.outputs == [note]]
        assert len(told) == 1 and told[0].inputs == [box, teacher]


def test_an_uploaded_corpus_is_named_as_its_owner_gave_it_not_as_gradio_stored_it(ctx, tmp_path):
    """Gradio stores 'nul.txt' (a name Windows reserves) as '_nul.txt': the line under the corpus box and Start's
    refusals named the stored copy, a file its owner never made."""
    import gradio as gr
    from gradio.data_classes import FileData
    stored = tmp_path / "_nul.txt"
    stored.write_text("Привет, как дела?\n", encoding="utf-8")
    with gr.Blocks() as demo:
        distill_tab.build(ctx)
    box = next(b for b in demo.blocks.values() if getattr(b, "elem_id", None) == "distill-corpus-file")
    upload = box.preprocess(FileData(path=str(stored), orig_name="nul.txt"))  # what the page hands the tab
    assert upload == str(stored)
    [told] = [d.fn for d in demo.fns.values() if (box._id, "change") in d.targets]
    assert told(upload, "bundled-teacher") == "'nul.txt': 1 sample, one a line."
    with pytest.raises(ValueError) as refused:
        distill_start.start_run_from_form(ctx, None, teacher="bundled-teacher", corpus_source=distill_settings.UPLOAD,
                                        corpus_file=upload, batch_size=16)
    assert str(refused.value).startswith("The corpus 'nul.txt' has 1 line of text; a run with a batch size of 16")
    stored.write_bytes(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<< /Type /Catalog >>\nendobj\n" + bytes(range(256)) * 8)
    assert told(upload, "bundled-teacher").startswith("'nul.txt' is a PDF document, not plain text")
    with pytest.raises(ValueError, match="^'nul.txt' is a PDF document, not plain text"):
        distill_start.start_run_from_form(ctx, None, teacher="bundled-teacher", corpus_source=distill_settings.UPLOAD,
                                        corpus_file=upload)
    assert run_entries(ctx.launcher.root) == []


def run_in_state(root, state: str, run_id: str = "20250101-120000-abcd", **status) -> str:
    """A run folder in `state`, started (config.json); a running one's process is this one."""
    paths = RunPaths(root / run_id)
    paths.root.mkdir()
    write_status(paths.root, state=state, step=3, max_steps=10, pid=os.getpid(), **status)
    paths.config.write_text(json.dumps({"teacher": "bundled-teacher", "max_steps": 10}))
    return run_id


@pytest.mark.parametrize("state, extra, said", [
    ("running", {}, "Run 20250101-120000-abcd is running: press Stop first (it saves a checkpoint and ends), then "
                    "Delete."),
    ("queued", {}, "Run 20250101-120000-abcd is waiting in line: press Stop to take it out of the line, then Delete."),
])
def test_delete_of_a_run_in_training_says_at_once_to_stop_it_first(ctx, state, extra, said):
    import gradio as gr
    run_id = run_in_state(ctx.launcher.root, state, **extra)
    with pytest.raises(gr.Error) as asked:  # the first press: no confirmation is offered
        distill_tab.handler(distill_actions.ask_to_delete, ctx)(run_id, None)
    assert asked.value.message == said
    with pytest.raises(ValueError) as confirmed:  # /delete_run, the confirming press: the same sentence
        distill_actions.delete_run(ctx, run_id, None)
    assert str(confirmed.value) == said and (ctx.launcher.root / run_id).is_dir()


@pytest.mark.parametrize("state, extra", [("stopped", {}), ("failed", {}), ("running", {"stop_requested": True})])
def test_delete_asks_to_confirm_a_run_that_has_ended_or_is_stopping(ctx, state, extra):
    run_id = run_in_state(ctx.launcher.root, state, **extra)
    hidden, confirm, keep = distill_actions.ask_to_delete(ctx, run_id, None)
    assert (hidden.visible, confirm.value, confirm.visible, keep.visible) == \
        (False, f"Delete {run_id} for good", True, True)


def test_delete_of_another_persons_shared_run_is_refused_before_confirming(runs_dir):
    space = AppContext("bundled-teacher", "bundled-student", on_space=True, launcher=RunLauncher(runs_dir, shared=True))
    run_id = run_in_state(runs_dir, "stopped", owner="bob", public=True)
    with pytest.raises(ValueError, match="^This run belongs to another session: only the person who started it can "
                                         "delete it.$"):
        distill_actions.ask_to_delete(space, run_id, "alice")
    assert distill_actions.ask_to_delete(space, run_id, "bob")[1].visible


def test_the_delete_button_is_answered_through_the_queue(ctx):
    """The page shows no error of an event sent outside the queue: the refusal would never be seen."""
    import gradio as gr
    with gr.Blocks() as demo:
        distill_tab.build(ctx)
    button = next(b for b in demo.blocks.values() if getattr(b, "elem_id", None) == "distill-delete")
    pressed = [d for d in demo.fns.values() if (button._id, "click") in d.targets]
    assert len(pressed) == 1 and pressed[0].queue is True


NO_SUCH = "There is no run '{}' among the runs you can see; choose one in the 'Run shown below' list."


@pytest.mark.parametrize("action", ["stop", "resume", "delete", "ask", "share"])
@pytest.mark.parametrize("run_id, quoted", [
    ("20250101-120000-gone", "20250101-120000-gone"),  # deleted by another page
    ("a/b", "a/b"),
    ("x" * 300, "x" * 40 + "…"),
])
def test_a_run_deleted_or_an_impossible_id_is_named_with_what_to_do(ctx, action, run_id, quoted):
    calls = {"stop": lambda: distill_actions.stop_run(ctx, run_id, None),
             "resume": lambda: distill_actions.resume_run(ctx, run_id, None),
             "delete": lambda: distill_actions.delete_run(ctx, run_id, None),
             "ask": lambda: distill_actions.ask_to_delete(ctx, run_id, None),
             "share": lambda: distill_actions.share_run(ctx, run_id, None, True)}
    with pytest.raises(ValueError) as refused:
        calls[action]()
    assert str(refused.value) == NO_SUCH.format(quoted)


def test_an_impossible_run_id_is_quoted_short():
    with pytest.raises(ValueError) as refused:
        run_dir_of("y" * 300)
    assert str(refused.value) == ("'" + "y" * 40 + "…' is not a valid run id (letters, digits, '.', '_' and '-' "
                                  "only, at most 128 characters).")


@pytest.mark.parametrize("started, said", [
    (True, "Run '{}' was stopped before its first evaluation, so it has no metrics; resume it or start a new run."),
    (False, "Run '{}' was stopped before it started, so it has no metrics; start a new run."),
])
def test_a_run_without_metrics_is_told_to_resume_only_when_it_can_be(runs_dir, started, said):
    """Resume needs the config.json a run writes as it starts: a run taken out of the queue can only start again."""
    paths = RunPaths(runs_dir / "20250101-120000-none")
    paths.root.mkdir()
    write_status(paths.root, state="stopped", step=0, max_steps=10)
    if started:
        paths.config.write_text(json.dumps({"teacher": "bundled-teacher", "max_steps": 10}))
    assert no_metrics_message(paths.root) == said.format(paths.root.name)


LONG = "x" * 300  # a name no file system takes as a path


@pytest.mark.cli
@pytest.mark.parametrize("flag, said", [
    ("--resume", f"--resume: '{'x' * 40}…' does not exist; give a run's folder (runs/<id>) or a run id."),
    ("--output-dir", "--output-dir '{cut}' (305 characters) cannot be made (File name too long); give a shorter "
                     "path."),
    ("--corpus", "The corpus '{cut}' (305 characters) is not a file or folder this machine can open (File name too "
                 "long); give a shorter path."),
    ("--valid-corpus", "--valid-corpus: The corpus '{cut}' (305 characters) is not a file or folder this machine can "
                       "open (File name too long); give a shorter path."),
    ("--config", "The config file '{cut}' (305 characters) cannot be opened (File name too long); give a shorter "
                 "path."),
])
def test_a_name_too_long_for_a_path_is_one_line_and_exit_2(tmp_path, monkeypatch, capsys, flag, said):
    from train.distill import main

    monkeypatch.chdir(tmp_path)
    value = LONG if flag == "--resume" else f"/tmp/{LONG}"
    argv = [flag, value] + ([] if flag == "--output-dir" else ["--output-dir", str(tmp_path / "run")])
    assert main([*argv, "--max-steps", "1"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["error: " + said.format(cut=f"/tmp/{'x' * 35}…")]
    assert list(tmp_path.iterdir()) == []
