"""The choices of --student-type, --mixed-precision and --device are written once: the command line offers the very
lists the config checks every run against (a config file's and the Distill tab's too)."""
import pytest

from train import cli, config
from train.config import DistillConfig

OPTIONS = {"student_type": "STUDENT_TYPES", "mixed_precision": "MIXED_PRECISIONS", "device": "DEVICES"}


@pytest.mark.parametrize("dest, name", OPTIONS.items())
def test_the_command_lines_choices_are_the_configs(dest, name):
    choices = {action.dest: action.choices for action in cli.distill_parser()._actions}
    assert choices[dest] is getattr(config, name) is getattr(cli, name)


@pytest.mark.parametrize("dest, name", OPTIONS.items())
def test_the_config_takes_each_choice_and_names_them_all_when_refusing(dest, name):
    options = getattr(config, name)
    for option in options:
        DistillConfig(**{dest: option}).check()
    with pytest.raises(ValueError) as refused:
        DistillConfig(**{dest: "tpu"}).check()
    listed = ", ".join(options[:-1]) + " or " + options[-1]
    assert str(refused.value) == f"--{dest.replace('_', '-')} must be {listed}; got 'tpu'."


def test_the_sentences_list_the_choices_as_before():
    assert config.either(config.STUDENT_TYPES) == "same, bert or distilbert"
    assert config.either(config.MIXED_PRECISIONS) == "auto, no, fp16 or bf16"
    assert config.either(config.DEVICES) == "auto or cpu"


def test_a_choice_outside_the_list_is_refused_by_the_command_line(capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.distill_parser().parse_args(["--device", "cuda"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "invalid choice: 'cuda'" in err[0] and "'auto', 'cpu'" in err[0]


def test_the_distill_tab_offers_the_configs_student_types(ctx):
    import gradio as gr

    from ui import distill_tab
    with gr.Blocks() as demo:
        distill_tab.build(ctx)
    radio = next(b for b in demo.blocks.values() if getattr(b, "label", None) == "Student architecture")
    assert [choice[1] for choice in radio.choices] == list(config.STUDENT_TYPES)
