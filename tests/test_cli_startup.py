"""The command lines read their flags before torch and transformers load, so --help and a mistyped flag answer at
once; and Ctrl-C before the work starts ends with one line and exit code 130, never a traceback."""
from __future__ import annotations

import ast
import importlib
import inspect
import os
import re
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from tests.support.models import REPO

pytestmark = pytest.mark.cli

HEAVY = ("torch", "transformers")
# each command with a flag argparse refuses
COMMANDS = {
    "train.distill": ["--max-steps", "abc"],
    "train.pretrain_teacher": ["--output-dir", "out", "--steps", "abc"],
    "train.publish": ["RUN", "--repo-id", "someone/tiny", "--no-such-flag"],
    "train.export": ["MODEL", "--output", "out", "--format", "tflite"],
    "scripts.export_student": ["RUN"],
    "core.bench": ["--seq-len", "abc"],
}


def imported_modules(stderr: str) -> set[str]:
    """The modules a process imported, from the lines `python -X importtime` writes to stderr."""
    return {line.rsplit("|", 1)[1].strip() for line in stderr.splitlines() if line.startswith("import time:")}


def run_module(module: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-X", "importtime", "-m", module, *args], cwd=REPO, capture_output=True,
                          text=True, timeout=300, env={**os.environ, "HF_HUB_OFFLINE": "1"})


def heavy_in(modules: set[str]) -> list[str]:
    return sorted(m for m in modules if m.split(".")[0] in HEAVY)


@pytest.mark.parametrize("module", COMMANDS)
def test_help_and_a_bad_flag_answer_without_loading_torch(module):
    shown = run_module(module, "--help")
    assert shown.returncode == 0 and shown.stdout.startswith(f"usage: python -m {module}"), shown.stderr[-2000:]
    assert heavy_in(imported_modules(shown.stderr)) == []
    refused = run_module(module, *COMMANDS[module])
    said = [line for line in refused.stderr.splitlines() if not line.startswith("import time:")]
    assert refused.returncode == 2 and len(said) == 1 and said[0].startswith("error: "), said
    assert heavy_in(imported_modules(refused.stderr)) == []


def test_every_other_command_line_refuses_a_bad_flag_in_one_line():
    """The commands above are checked one by one; each other command's parser is core.formatting.OneLineParser too:
    one stderr line and exit code 2."""
    modules = ("core.models.hub", "scripts.gpu_check", "scripts.teacher_levers", "scripts.bench_distill_step",
               "scripts.build_bundled_pair")
    started = {module: subprocess.Popen([sys.executable, "-m", module, "--no-such-flag"], cwd=REPO, text=True,
                                        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                        env={**os.environ, "HF_HUB_OFFLINE": "1"})
               for module in modules}  # started together: most of each one's time is its imports
    for module, process in started.items():
        out, err = process.communicate(timeout=300)
        assert process.returncode == 2 and err.count("\n") == 1, (module, err)
        # commands with a required argument name it first; the others the flag
        assert err.startswith(("error: unrecognized arguments: --no-such-flag",
                               "error: the following arguments are required")), (module, err)


# each command's entry: the function its `python -m` and its console script run (train.cli's, core.bench's own)
ENTRIES = {"train.distill": "train.cli:distill_command", "train.pretrain_teacher": "train.cli:pretrain_teacher_command",
           "train.publish": "train.cli:publish_command", "train.export": "train.cli:export_command",
           "scripts.export_student": "train.cli:export_student_command", "core.bench": "core.bench.flags:command"}


def source_of(module: str) -> Path:
    return REPO / (module.replace(".", "/") + ("/__main__.py" if module == "core.bench" else ".py"))


def run_command_pair(function) -> tuple[list[str], list[str]]:
    """The (parser, work) names, each [module, function], of the one run_command call in `function`'s body."""
    tree = ast.parse(textwrap.dedent(inspect.getsource(function)))
    calls = [node for node in ast.walk(tree)
             if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "run_command"]
    assert len(calls) == 1
    parser, work = (arg.value.split(":") for arg in calls[0].args)
    return parser, work


@pytest.mark.parametrize("module", COMMANDS)
def test_each_entry_names_a_parser_and_the_work_it_runs(module):
    """The names each command's entry gives run_command resolve: the parser's builds the command's parser, the work's
    is the module's run()."""
    entry_module, entry = ENTRIES[module].split(":")
    parser, work = run_command_pair(getattr(importlib.import_module(entry_module), entry))
    assert getattr(importlib.import_module(parser[0]), parser[1])().prog == f"python -m {module}"
    assert work == ["core.bench.cli" if module == "core.bench" else module, "run"]
    assert callable(importlib.import_module(work[0]).run)


@pytest.mark.parametrize("module", COMMANDS)
def test_python_m_runs_the_entry_the_console_script_would(module):
    """`python -m MODULE` calls its entry function, so the parser and work pair is written in one place only."""
    tree = ast.parse(source_of(module).read_text(encoding="utf-8"))
    if source_of(module).name == "__main__.py":  # a package's __main__ is all entry
        block = tree
    else:
        main_blocks = [node for node in tree.body if isinstance(node, ast.If) and "__main__" in ast.unparse(node.test)]
        assert len(main_blocks) == 1
        block = main_blocks[0]
    entry_module, entry = ENTRIES[module].split(":")
    imported = [(node.module, alias.name) for node in ast.walk(block) if isinstance(node, ast.ImportFrom)
                for alias in node.names]
    called = [ast.unparse(node.func) for node in ast.walk(block) if isinstance(node, ast.Call)]
    assert imported == [(entry_module, entry)] and called == [entry]


def test_the_console_scripts_point_at_the_entries():
    scripts = console_scripts()
    assert scripts["rudistil-distill"] == ENTRIES["train.distill"]
    assert scripts["rudistil-publish"] == ENTRIES["train.publish"]
    assert scripts["rudistil-bench"] == ENTRIES["core.bench"]


def test_the_importtime_reading_sees_torch_when_it_is_loaded():
    """The check above would pass on a process that imported nothing it can see."""
    done = subprocess.run([sys.executable, "-X", "importtime", "-c", "import torch"], capture_output=True, text=True,
                          timeout=300)
    assert "torch" in heavy_in(imported_modules(done.stderr))


def test_the_distill_help_states_the_configs_defaults():
    """train.cli writes DistillConfig's defaults into the help without importing it (it loads torch)."""
    from train import cli
    from train.config import DistillConfig

    defaults = DistillConfig().to_dict()
    stated = {}
    for action in cli.distill_parser()._actions:
        found = re.search(r"\(default ([^):]+)\)", action.help or "")
        if found and defaults.get(action.dest) is not None:  # None's default is told in words: runs/<date-time-id>
            stated[action.dest] = found.group(1)
    assert len(stated) >= 20  # every option with a plain default says it
    for name, text in stated.items():
        value = defaults[name]
        assert (float(text) == value) if isinstance(value, (int, float)) else (text == value), (name, text, value)


def test_the_align_choices_are_the_one_list_of_alignments():
    """--align and --reduce-op offer core.models.alignments' lists themselves, those the config's check holds runs
    to, read without torch (the --help test above)."""
    from core.models import alignments, vocab
    from train import cli, config

    choices = {action.dest: action.choices for action in cli.distill_parser()._actions}
    assert choices["align"] is alignments.ALIGNMENTS and config.ALIGNMENTS is alignments.ALIGNMENTS
    assert choices["reduce_op"] is alignments.REDUCE_OPS and config.REDUCE_OPS is alignments.REDUCE_OPS
    assert tuple(vocab.ALIGNMENTS) == alignments.ALIGNMENTS  # the alignments core.models.vocab implements


def wait_until_torch_loads(process: subprocess.Popen) -> None:
    """Until the process has begun loading torch's library: past the flags, inside the imports."""
    maps = Path(f"/proc/{process.pid}/maps")
    deadline = time.monotonic() + 120
    while True:
        assert process.poll() is None and time.monotonic() < deadline, "torch never loaded"
        if "libtorch" in maps.read_text(errors="replace"):  # an ended process's (a zombie's until reaped) is empty
            return
        time.sleep(0.01)


@pytest.mark.skipif(not Path("/proc/self/maps").is_file(), reason="reads /proc/PID/maps")
@pytest.mark.parametrize("module", ["train.distill", "train.publish"])
def test_ctrl_c_during_the_imports_is_one_line_and_exit_130(module, tmp_path, tiny_teacher_dir, tiny_corpus):
    out = tmp_path / "out"
    args = {"train.distill": ["--teacher", str(tiny_teacher_dir), "--corpus", str(tiny_corpus), "--max-steps", "2",
                              "--output-dir", str(out)],
            "train.publish": [str(tmp_path), "--repo-id", "someone/tiny", "--dry-run", str(out)]}[module]
    process = subprocess.Popen([sys.executable, "-m", module, *args], cwd=REPO, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    try:
        wait_until_torch_loads(process)
        process.send_signal(signal.SIGINT)
        stdout, stderr = process.communicate(timeout=120)
    finally:
        process.kill()
    assert (process.returncode, stderr, stdout) == (130, "Stopped.\n", "")
    assert not out.exists()


def console_scripts() -> dict[str, str]:
    import tomllib

    return tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]["scripts"]


@pytest.mark.parametrize("script", ["rudistil-distill", "rudistil-bench", "rudistil-publish"])
def test_the_console_scripts_start_as_lightly_as_python_m(script):
    """rudistil-distill and the others run their command's flags first as `python -m` does: --help without torch."""
    module, function = console_scripts()[script].split(":")
    call = f"import sys; sys.argv = ['{script}', '--help']; from {module} import {function}; {function}()"
    shown = subprocess.run([sys.executable, "-X", "importtime", "-c", call], cwd=REPO, capture_output=True, text=True,
                           timeout=300, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    assert shown.returncode == 0 and shown.stdout.startswith("usage: python -m "), shown.stderr[-2000:]
    assert heavy_in(imported_modules(shown.stderr)) == []


def test_every_console_script_names_a_function_that_exists():
    for script, target in console_scripts().items():
        module, function = target.split(":")
        assert callable(getattr(importlib.import_module(module), function)), script
