"""train/accelerate_fsdp.yaml: read by Accelerate as an FSDP2 config whose wrap policy finds the student's layers,
and accepted by `accelerate launch` for a two-process CPU run (which Accelerate runs as DDP). The sharding itself
(train.distill --fsdp, train.sharding) runs here on two CPU processes over gloo: tests/test_fsdp_runs.py."""
import json
import os
import subprocess
import sys

import pytest
from accelerate.commands.config.config_args import load_config_from_file
from accelerate.utils import DistributedType, FullyShardedDataParallelPlugin

from core.models.student import StudentSpec, make_student
from tests.support.cli import SHORT
from tests.support.models import REPO, tiny_bert

CONFIG = REPO / "train" / "accelerate_fsdp.yaml"


def test_the_config_reads_as_fsdp2_with_whole_state_dicts():
    config = load_config_from_file(str(CONFIG))
    assert config.distributed_type == DistributedType.FSDP and not config.use_cpu
    fsdp = config.fsdp_config
    assert fsdp["fsdp_version"] == 2 and fsdp["fsdp_auto_wrap_policy"] == "TRANSFORMER_BASED_WRAP"
    assert fsdp["fsdp_state_dict_type"] == "FULL_STATE_DICT" and fsdp["fsdp_reshard_after_forward"] is True


def test_its_wrap_policy_shards_a_bert_student_layer_by_layer():
    fsdp = load_config_from_file(str(CONFIG)).fsdp_config
    plugin = FullyShardedDataParallelPlugin(fsdp_version=fsdp["fsdp_version"],
                                            auto_wrap_policy=fsdp["fsdp_auto_wrap_policy"].lower(),
                                            state_dict_type=fsdp["fsdp_state_dict_type"],
                                            reshard_after_forward=fsdp["fsdp_reshard_after_forward"])
    student = make_student(tiny_bert(100), StudentSpec(num_layers=2))
    plugin.set_auto_wrap_policy(student)
    wrapped = {cls.__name__ for cls in plugin.auto_wrap_policy.keywords["transformer_layer_cls"]}
    assert wrapped == {"BertLayer", "BertEmbeddings"}


@pytest.mark.cli
def test_accelerate_launch_takes_the_config_and_runs_it_as_ddp_on_cpu(tmp_path, tiny_teacher_dir, tiny_corpus):
    out = tmp_path / "run"
    command = [sys.executable, "-m", "accelerate.commands.launch", "--config_file", str(CONFIG), "--num_processes",
               "2", "--mixed_precision", "no", "-m", "train.distill", "--device", "cpu", "--teacher",
               str(tiny_teacher_dir), "--corpus", str(tiny_corpus), "--max-steps", "2", "--output-dir", str(out),
               "--trace", *SHORT]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "CUDA_VISIBLE_DEVICES": "", "OMP_NUM_THREADS": "1"}
    result = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    ranks = [json.loads((out / "trace" / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert ranks[0]["weights_sha256"] == ranks[1]["weights_sha256"]
