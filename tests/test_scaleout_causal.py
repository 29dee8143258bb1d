"""Scale-out of the decoder-only family (issue 16): ``recipes/pretrain.py --family llama`` on two CPU ranks (gloo),
each run against one process with the same global batch of 16.

* data parallel: ``ACCELERATE_USE_CPU=1 torchrun --nproc_per_node 2`` (README's CPU line; on GPUs
  ``recipes/accelerate/multi_gpu.yaml``), the paper's Adafactor;
* FSDP2: ``recipes/accelerate/fsdp2_causal.yaml`` as ``accelerate launch`` reads it (its FSDP variables,
  mixed precision off), AdamW (``--optimizer trainer``). Accelerate keeps CPU ranks out of FSDP, so the
  ranks start through ``synpre_testkit.fsdp_cpu`` (see there); torch's ``fully_shard`` does the rest.

The streams split each global batch across the ranks, so both runs see the same 16 examples per step.
"""

import subprocess
import sys

import pytest
import torch
from safetensors.torch import load_file
from synpre_testkit.fsdp_cpu import fsdp_launch_env
from synpre_testkit.recipes import load_recipe, recipe_path
from test_pretrain_causal import CAUSAL, write
from test_pretrain_recipe import REPO, _env, _free_port, _losses

recipe = load_recipe("pretrain")
RECIPE = recipe_path("pretrain")
FSDP_YAML = REPO / "recipes" / "accelerate" / "fsdp2_causal.yaml"
LAUNCHER = REPO / "tests" / "synpre_testkit" / "fsdp_cpu.py"
CONFIG = {**CAUSAL, "max_steps": 4, "eval_steps": 4, "save_steps": 4, "num_validation": 32}
ADAMW = ["--optimizer", "trainer", "--optim", "adamw_torch", "--lr_scheduler_type", "constant", "--learning_rate", "0.003"]


def _two_ranks(script_args, out, env):
    proc = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", str(_free_port()),
         *script_args, "--output_dir", str(out)],
        cwd=REPO, env={**_env(), "ACCELERATE_USE_CPU": "1", **env}, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert proc.stdout.count("Selected checkpoint:") == 1  # the main process reports, once
    return proc.stdout + proc.stderr


def _same_run(single, double):
    """Same losses at every step, same selected weights (the selected checkpoint loads as a normal HF model)."""
    from transformers import AutoModelForCausalLM

    one, two = _losses(single, "checkpoint-4"), _losses(double, "checkpoint-4")
    assert one.keys() == two.keys() == {1, 2, 3, 4}
    for step in one:
        assert two[step] == pytest.approx(one[step], rel=1e-4), step
    model = AutoModelForCausalLM.from_pretrained(double / "selected")
    assert type(model).__name__ == "LlamaForCausalLM" and model.config.hidden_size == 32
    a, b = load_file(single / "selected" / "model.safetensors"), load_file(double / "selected" / "model.safetensors")
    assert a.keys() == b.keys()
    for name in a:  # float32 round-off of a 2-way gradient reduction, over 4 steps
        torch.testing.assert_close(b[name], a[name], rtol=1e-4, atol=1e-5, msg=name)


def test_data_parallel_llama_on_two_cpu_ranks_equals_one_process(tmp_path):
    config = write(tmp_path / "c.yaml", CONFIG)
    single = tmp_path / "single"
    recipe.main(["--config", str(config), "--output_dir", str(single), "--per_device_train_batch_size", "16"])
    log = _two_ranks([str(RECIPE), "--config", str(config)], tmp_path / "ddp", {})
    assert "global batch 16 (2 processes), " in log and "llama (decoder-only)" in log
    _same_run(single, tmp_path / "ddp")


def test_fsdp2_config_shards_llama_on_two_cpu_ranks_and_equals_one_process(tmp_path):
    env = fsdp_launch_env(FSDP_YAML)
    assert env["FSDP_VERSION"] == "2" and env["FSDP_STATE_DICT_TYPE"] == "FULL_STATE_DICT"
    assert env["FSDP_AUTO_WRAP_POLICY"] == "TRANSFORMER_BASED_WRAP" and "FSDP_TRANSFORMER_CLS_TO_WRAP" not in env
    config = write(tmp_path / "c.yaml", CONFIG)
    single = tmp_path / "single"
    recipe.main(["--config", str(config), "--output_dir", str(single), "--per_device_train_batch_size", "16", *ADAMW])
    out = tmp_path / "fsdp"
    log = _two_ranks([str(LAUNCHER), str(RECIPE), "--config", str(config), *ADAMW], out, env)
    assert "global batch 16 (2 processes, FSDP2)" in log and "FSDP was asked for" not in log
    _same_run(single, out)
    # FULL_STATE_DICT: the Trainer's checkpoint is a normal HF model too (its FSDP files beside it)
    from transformers import AutoModelForCausalLM

    assert (out / "checkpoint-4" / "pytorch_model_fsdp.bin").is_file()
    AutoModelForCausalLM.from_pretrained(out / "checkpoint-4")


def test_the_papers_adafactor_is_refused_under_fsdp(tmp_path, monkeypatch):
    monkeypatch.setenv("ACCELERATE_USE_FSDP", "true")
    config = write(tmp_path / "c.yaml", CONFIG)
    with pytest.raises(ValueError, match="--optimizer adafactor_rsqrt cannot run under FSDP.*--optimizer trainer"):
        recipe.main(["--config", str(config), "--output_dir", str(tmp_path / "out")])


def test_fsdp_asked_for_where_accelerate_does_not_shard_is_said(tmp_path, monkeypatch, caplog):
    """One CPU process (as CPU ranks under Accelerate 1.15/1.16): FSDP stays off, and the log says so."""
    monkeypatch.setenv("ACCELERATE_USE_FSDP", "true")
    config = write(tmp_path / "c.yaml", {**CONFIG, "max_steps": 1, "eval_steps": 1, "save_steps": 1})
    with caplog.at_level("WARNING", logger="pretrain"):
        recipe.main(["--config", str(config), "--output_dir", str(tmp_path / "out"), *ADAMW])
    assert "FSDP was asked for but Accelerate runs DistributedType.NO, unsharded" in caplog.text
