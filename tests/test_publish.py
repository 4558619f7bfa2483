"""python -m train.publish on a real short run, offline: the folder a dry run writes (card, safetensors weights,
tokenizer), pushes without a token or a reachable Hub, a push with the Hub's calls stood in for, and bad input."""
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import httpx2
import pytest
import torch
from huggingface_hub import HfApi, ModelCard, constants
from huggingface_hub.errors import HfHubHTTPError, OfflineModeIsEnabled
from transformers import AutoModelForMaskedLM, AutoTokenizer

from core.runs.store import read_metrics
from tests.support.cli import SHORT, run_cli
from tests.support.models import REPO
from train import publish
from train.publish import main

pytestmark = pytest.mark.cli

LOSSES = {"temperature": 3.0, "alpha_kl": 4.0, "alpha_mlm": 1.5, "alpha_cos": 0.5}  # not the defaults
SENTENCES = ["Привет, как [MASK]?", "Я не [MASK], что сказать.", "Пойдём завтра в [MASK]."]


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory, tiny_teacher_dir, tiny_corpus):
    """A run of the lab's own engine, 4 steps on the tiny teacher, with loss settings other than the defaults."""
    out = tmp_path_factory.mktemp("publish") / "run"
    losses = [str(x) for name, value in LOSSES.items() for x in (f"--{name.replace('_', '-')}", value)]
    result = run_cli("--teacher", tiny_teacher_dir, "--corpus", tiny_corpus, "--max-steps", 4, "--output-dir", out,
                     *SHORT, *losses)
    assert result.returncode == 0, result.stderr
    return out


@pytest.fixture(scope="module")
def dry_run_folder(finished_run, tmp_path_factory):
    folder = tmp_path_factory.mktemp("published") / "student"
    assert main([str(finished_run), "--repo-id", "someone/tiny-student", "--dry-run", str(folder)]) == 0
    return folder


@pytest.fixture
def no_saved_token(monkeypatch, tmp_path):
    """No token anywhere huggingface_hub looks: neither the environment nor a saved login."""
    for name in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "HF_OIDC_RESOURCE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(constants, "HF_TOKEN_PATH", str(tmp_path / "no-token"))


@pytest.fixture
def hub_calls(monkeypatch):
    """HfApi.create_repo and upload_folder stood in for; `calls` records them, `fail` makes one raise."""
    calls, fail = [], {}

    def create_repo(self, repo_id, **kwargs):
        calls.append(("create_repo", repo_id, kwargs))
        if "create_repo" in fail:
            raise fail["create_repo"]
        return f"https://huggingface.co/{repo_id}"

    def upload_folder(self, *, repo_id, folder_path, **kwargs):
        files = sorted(p.name for p in Path(folder_path).iterdir())
        calls.append(("upload_folder", repo_id, {"folder_path": folder_path, "files": files, **kwargs}))
        if "upload_folder" in fail:
            raise fail["upload_folder"]

    monkeypatch.setattr(HfApi, "create_repo", create_repo)
    monkeypatch.setattr(HfApi, "upload_folder", upload_folder)
    return calls, fail


def one_error_line(capsys) -> str:
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), captured.err
    assert "Traceback" not in captured.err + captured.out
    return lines[0]


def test_dry_run_writes_a_card_the_hub_reads_with_the_metadata(dry_run_folder, tiny_teacher_dir, capsys):
    card = ModelCard.load(dry_run_folder / "README.md")
    assert card.data.language == "ru"
    assert card.data.license == "apache-2.0"
    assert card.data.library_name == "transformers"
    assert card.data.pipeline_tag == "fill-mask"
    assert card.data.base_model is None  # the Hub reads base_model as a model id; a local teacher has none
    assert f"`{tiny_teacher_dir.name}`" in card.text  # named in the text instead, never by this machine's path
    assert "knowledge-distillation" in card.data.tags and "bert" in card.data.tags
    assert str(tiny_teacher_dir.parent) not in card.content


def test_the_card_states_the_runs_recipe_data_and_last_evaluation(dry_run_folder, finished_run):
    text = ModelCard.load(dry_run_folder / "README.md").text
    config = json.loads((finished_run / "config.json").read_text())
    assert f"Temperature T = {config['temperature']:g}" in text
    for name in ("alpha_kl", "alpha_mlm", "alpha_cos"):
        assert f"`{name}` = {config[name]:g}" in text
    assert "Total loss = 4 · KL + 1.5 · MLM + 0.5 · cos." in text
    assert "Student layers: 2 of the teacher's 4" in text
    assert "4 optimizer steps, batch size 8 lines per process; lines cut at 32 tokens" in text
    assert "corpus.txt`, 400 non-blank lines" in text
    last = [r for r in read_metrics(finished_run) if "eval_agreement" in r][-1]
    assert last["step"] == 4
    student_row = next(line for line in text.splitlines() if line.startswith("| Student (someone/tiny-student)"))
    assert f"| {last['eval_agreement']:.1%} | {last['eval_mlm_acc']:.1%} |" in student_row
    teacher_row = next(line for line in text.splitlines() if line.startswith("| Teacher ("))
    assert teacher_row.endswith(f"| — | {last['eval_teacher_mlm_acc']:.1%} |")
    assert "CPU latency was not measured" in text
    assert "had not finished" not in text  # the run finished: its final student is published


def test_the_folder_loads_and_fills_a_mask_as_the_runs_final_model(dry_run_folder, finished_run):
    assert (dry_run_folder / "model.safetensors").is_file()
    assert not list(dry_run_folder.glob("*.bin"))
    published = AutoModelForMaskedLM.from_pretrained(dry_run_folder).eval()
    final = AutoModelForMaskedLM.from_pretrained(finished_run / "final").eval()
    tokenizer, final_tokenizer = AutoTokenizer.from_pretrained(dry_run_folder), \
        AutoTokenizer.from_pretrained(finished_run / "final")
    params = sum(p.numel() for p in published.parameters())
    card = (dry_run_folder / "README.md").read_text(encoding="utf-8")
    assert f"| {params / 1e6:.2f}M |" in card
    for sentence in SENTENCES:
        text = sentence.replace("[MASK]", tokenizer.mask_token)
        inputs, final_inputs = tokenizer(text, return_tensors="pt"), final_tokenizer(text, return_tensors="pt")
        assert torch.equal(inputs["input_ids"], final_inputs["input_ids"])
        where = inputs["input_ids"][0] == tokenizer.mask_token_id
        with torch.no_grad():
            ours, theirs = published(**inputs).logits[0, where], final(**final_inputs).logits[0, where]
        assert torch.equal(ours.argmax(-1), theirs.argmax(-1))  # the same top-1 word
        assert torch.allclose(ours, theirs)


FILE_LINE = re.compile(r"  (\S+) +([\d.]+) (B|kB|MB|GB)")  # a file the dry run lists, with its size
UNITS = {"B": 1, "kB": 1e3, "MB": 1e6, "GB": 1e9}


def test_a_dry_run_lists_the_folder_it_wrote_and_the_cards_figures(finished_run, tmp_path, capsys):
    out = tmp_path / "out"
    assert main([str(finished_run), "--repo-id", " someone/tiny ", "--dry-run", str(out)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == f"Wrote {out}, the folder a push to someone/tiny uploads:"
    listed = {m[1]: float(m[2]) * UNITS[m[3]] for line in lines if (m := FILE_LINE.fullmatch(line))}
    on_disk = {p.name: p.stat().st_size for p in out.iterdir()}
    assert set(listed) == set(on_disk) and {"README.md", "model.safetensors", "config.json"} <= set(listed)
    for name, size in listed.items():  # shown to one decimal of its unit
        assert abs(size - on_disk[name]) <= 0.05 * max(1e3, on_disk[name]), name
    assert lines[len(listed) + 1].startswith(f"  {len(on_disk)} files, ")
    row = next(line for line in (out / "README.md").read_text(encoding="utf-8").splitlines()
               if line.startswith("| Student (someone/tiny)"))
    size, params, _, agreement, accuracy = [cell.strip() for cell in row.split("|")[2:7]]
    last = [r for r in read_metrics(finished_run) if "eval_agreement" in r][-1]
    assert lines[-2] == (f"Card: 4 optimizer steps of 4; last evaluation at step {last['step']}: top-1 agreement "
                         f"with the teacher {agreement}, masked-token accuracy {accuracy}; size {size} MB (fp32, as "
                         f"the card's table counts it), {params} parameters.")
    assert agreement == f"{last['eval_agreement']:.1%}"
    assert lines[-1] == f"To push this folder as it is: hf upload someone/tiny {out}"


def test_measure_speed_puts_latencies_in_the_table(finished_run, tmp_path):
    folder = tmp_path / "timed"
    assert main([str(finished_run), "--repo-id", "someone/tiny", "--dry-run", str(folder), "--measure-speed"]) == 0
    rows = [line for line in (folder / "README.md").read_text(encoding="utf-8").splitlines()
            if line.startswith(("| Student", "| Teacher"))]
    assert len(rows) == 2
    for row in rows:
        latency = row.split("|")[4].strip()
        assert float(latency) > 0, row


def test_the_deeppavlov_teacher_is_the_base_model_by_its_hub_id():
    assert publish.base_model_of("rubert-base-cased-conversational") == "DeepPavlov/rubert-base-cased-conversational"
    assert publish.base_model_of("DeepPavlov/rubert-base-cased-conversational") == \
        "DeepPavlov/rubert-base-cased-conversational"
    assert publish.base_model_of("someone/their-teacher") == "someone/their-teacher"  # named by Hub id
    assert publish.base_model_of("bundled-teacher") is None  # no Hub id: the card leaves base_model out
    assert publish.base_model_of("run:20250101-120000-abcd") is None


def test_a_local_teacher_folder_is_no_base_model_and_a_given_one_is_kept(finished_run, tmp_path):
    folder = tmp_path / "owner" / "teacher"
    folder.mkdir(parents=True)
    assert publish.base_model_of(str(folder)) is None
    assert main([str(finished_run), "--repo-id", "someone/tiny", "--base-model", "someone/base", "--dry-run",
                 str(tmp_path / "out")]) == 0
    assert ModelCard.load(tmp_path / "out" / "README.md").data.base_model == "someone/base"


def test_a_push_uploads_the_folder_and_says_where(finished_run, hub_calls, capsys):
    calls, _ = hub_calls
    assert main([str(finished_run), "--repo-id", "someone/tiny", "--token", "hf_x", "--private"]) == 0
    assert capsys.readouterr().out.strip() == "published https://huggingface.co/someone/tiny"
    (create, repo_id, options), (upload, _, uploaded) = calls
    assert (create, repo_id, options["exist_ok"], options["private"]) == ("create_repo", "someone/tiny", True, True)
    assert upload == "upload_folder"
    assert {"README.md", "config.json", "model.safetensors", "tokenizer.json"} <= set(uploaded["files"])
    assert not Path(uploaded["folder_path"]).exists()  # the temporary folder is removed


def test_a_push_without_a_token_is_one_line_and_asks_nothing_of_the_hub(finished_run, hub_calls, no_saved_token,
                                                                         capsys):
    calls, _ = hub_calls
    assert main([str(finished_run), "--repo-id", "someone/tiny"]) == 2
    line = one_error_line(capsys)
    assert "No Hugging Face token" in line and "--token" in line and "HF_TOKEN" in line
    assert calls == []


@pytest.mark.parametrize("stage", ["create_repo", "upload_folder"])
@pytest.mark.parametrize("error, says", [
    (httpx2.ConnectError("[Errno -3] Temporary failure in name resolution"), "cannot be reached"),
    (OfflineModeIsEnabled("Cannot reach https://huggingface.co/api/repos/create: offline mode is enabled."),
     "HF_HUB_OFFLINE is set"),
    (HfHubHTTPError("401 Client Error: Unauthorized", response=httpx2.Response(
        401, request=httpx2.Request("POST", "https://huggingface.co/api/repos/create"))), "refused the token"),
])
def test_a_push_the_hub_does_not_take_is_one_line_and_exit_2(finished_run, hub_calls, stage, error, says, capsys):
    calls, fail = hub_calls
    fail[stage] = error
    assert main([str(finished_run), "--repo-id", "someone/tiny", "--token", "hf_x"]) == 2
    line = one_error_line(capsys)
    assert says in line and line.endswith(".")
    assert calls[-1][0] == stage
    if stage == "create_repo":
        assert len(calls) == 1  # nothing is written before the Hub has answered
    else:
        assert not Path(calls[-1][2]["folder_path"]).exists()


def test_with_hf_hub_offline_the_real_hub_client_gives_the_offline_line(finished_run, monkeypatch, capsys):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)  # read once, when huggingface_hub is imported
    assert main([str(finished_run), "--repo-id", "someone/tiny", "--token", "hf_x"]) == 2
    assert "HF_HUB_OFFLINE is set" in one_error_line(capsys)


def unfinished_copy(finished_run, tmp_path):
    run = tmp_path / "unfinished"
    shutil.copytree(finished_run, run)
    shutil.rmtree(run / "final")
    (run / "status.json").write_text(json.dumps({"state": "stopped", "step": 4}))
    return run


@pytest.mark.parametrize("case, says", [
    ("not-a-run", "is not a distillation run"),
    ("no-such-id", "There is no run 'no-such-id'"),
    ("no-owner", "is not of the form owner/name"),
    ("empty-license", "The license '' is not a license identifier such as apache-2.0"),
    ("spaced-license", "The license 'Apache 2' is not a license identifier"),
    ("not-empty", "already holds other files; give a new or empty folder."),
    ("unreadable", "has no checkpoint that can be read: step-000004.pt"),
    ("no-repo-id", "--repo-id"),
    ("cannot-make", "cannot be made: the folder '/proc' does not take new files"),
    ("too-long", "The folder '/tmp/xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx…' (305 characters) cannot be made (File name "
                 "too long); give a shorter path."),
])
def test_bad_input_is_one_line_and_exit_2(case, says, finished_run, tmp_path, runs_dir, capsys):
    out = tmp_path / "out"
    run, repo_id = str(finished_run), "someone/tiny"
    if case == "not-a-run":
        run = str(tmp_path)
    elif case == "no-such-id":
        run = "no-such-id"
    elif case == "no-owner":
        repo_id = "tiny"
    elif case.endswith("-license"):
        argv_license = ["--license", "" if case == "empty-license" else "Apache 2"]
    elif case == "not-empty":
        out.mkdir()
        (out / "notes.txt").write_text("mine")
    elif case == "unreadable":
        run = unfinished_copy(finished_run, tmp_path)
        (run / "checkpoints" / "step-000004.pt").write_bytes(b"not a checkpoint")
        run = str(run)
    elif case == "cannot-make":
        out = Path("/proc/x")
    elif case == "too-long":
        out = Path("/tmp/" + "x" * 300)
    argv = [run, "--dry-run", str(out)] + ([] if case == "no-repo-id" else ["--repo-id", repo_id])
    argv += argv_license if case.endswith("-license") else []
    try:
        code = main(argv)
    except SystemExit as exit_info:  # argparse's own refusal of a missing flag
        code = exit_info.code
    assert code == 2
    assert says in one_error_line(capsys)
    if case == "not-empty":
        assert [p.name for p in out.iterdir()] == ["notes.txt"]
    elif case != "too-long":  # the system refuses even to look at a path that long
        assert not out.exists()


def test_an_unfinished_run_publishes_its_newest_readable_checkpoint(finished_run, tmp_path, capsys):
    run = unfinished_copy(finished_run, tmp_path)
    newest = run / "checkpoints" / "step-000006.pt"
    newest.write_bytes((run / "checkpoints" / "step-000004.pt").read_bytes()[:1000])  # cut short by a crash
    out = tmp_path / "out"
    assert main([str(run), "--repo-id", "someone/tiny", "--dry-run", str(out)]) == 0
    captured = capsys.readouterr()
    assert captured.out.splitlines()[0] == f"Wrote {out}, the folder a push to someone/tiny uploads:"
    assert "Card: 4 optimizer steps of 4; " in captured.out
    note = captured.err.strip()
    assert note.startswith("note: Run 'unfinished' has not finished (it is stopped): its student at step 4 "
                           "(step-000004.pt), the newest checkpoint that can be read, is published.")
    assert "step-000006.pt" in note and "\n" not in note
    published = AutoModelForMaskedLM.from_pretrained(out).state_dict()
    trained = AutoModelForMaskedLM.from_pretrained(finished_run / "final").state_dict()
    assert all(torch.equal(published[k], trained[k]) for k in trained)  # step 4's weights, as the run ended them
    card = (out / "README.md").read_text(encoding="utf-8")
    assert "The run had not finished: this is its student at step 4 of 4" in card
    assert "before the published" not in card  # evaluated at the step it publishes


def test_an_unfinished_run_evaluated_before_its_checkpoint_names_the_checkpoints_step(finished_run, tmp_path):
    """A run stopped at step 6 after evaluating at step 4 published a card saying "step 4 of 16"."""
    run = unfinished_copy(finished_run, tmp_path)
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text(encoding="utf-8").splitlines()]
    kept = [r for r in rows if not ("eval_agreement" in r and r["step"] == 4)]
    assert len(kept) < len(rows)
    (run / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in kept), encoding="utf-8")
    assert main([str(run), "--repo-id", "someone/tiny", "--dry-run", str(tmp_path / "out")]) == 0
    card = (tmp_path / "out" / "README.md").read_text(encoding="utf-8")
    evaluated = max(r["step"] for r in kept if "eval_agreement" in r)
    assert "this is its student at step 4 of 4" in card
    assert f"last evaluation (step {evaluated})" in card and evaluated < 4
    assert f"They describe the student at step {evaluated}, before the published step-4 weights" in card


def test_a_run_id_under_the_runs_folder_is_found(finished_run, runs_dir, tmp_path, capsys):
    shutil.copytree(finished_run, runs_dir / "20250101-120000-abcd")
    out = tmp_path / "out"
    assert main(["20250101-120000-abcd", "--repo-id", "someone/tiny", "--dry-run", str(out)]) == 0
    assert capsys.readouterr().out.splitlines()[0] == f"Wrote {out}, the folder a push to someone/tiny uploads:"
    assert (out / "README.md").is_file()


def test_the_command_line_process_refuses_in_one_line(tmp_path):
    result = subprocess.run([sys.executable, "-m", "train.publish", str(tmp_path), "--repo-id", "someone/tiny",
                             "--dry-run", str(tmp_path / "out")], cwd=REPO, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [f"error: '{tmp_path}' is not a distillation run's folder (it has no "
                                                  "config.json); give a run's folder (runs/<id>) or a run id."]
