"""Run a script under Accelerate's FSDP on CPU ranks (gloo), which Accelerate itself does not do.

    torchrun --nproc_per_node 2 tests/synpre_testkit/fsdp_cpu.py recipes/pretrain.py ARGS...
    fsdp_launch_env(config_file, mixed_precision="no") -> dict   -- the ACCELERATE_*/FSDP_* variables that
        ``accelerate launch --config_file config_file`` gives each rank

Accelerate 1.15/1.16 turns ``ACCELERATE_USE_FSDP`` into ``DistributedType.FSDP`` only for GPU-like ranks
(``AcceleratorState.__init__``: MULTI_GPU/NPU/XPU/...); ranks started with ``ACCELERATE_USE_CPU=1`` stay
``MULTI_CPU`` and train as plain DDP, silently. torch's ``fully_shard`` itself runs on CPU tensors over gloo
(torch 2.13), so this launcher lets the FSDP plugin Accelerate already built take effect: the model is sharded
by ``fully_shard`` per decoder layer, checkpoints and the recipe's export gather it, as they would on GPUs.
It changes nothing but the distributed type; bf16 (the GPU config's mixed precision) is not tested by it.
"""

from __future__ import annotations

import os
import runpy
import sys


def fsdp_launch_env(config_file: os.PathLike, mixed_precision: str = "no") -> dict:
    """The environment ``accelerate launch --config_file config_file`` sets for its ranks (FSDP's part)."""
    from accelerate.commands.launch import _validate_launch_command, launch_command_parser
    from accelerate.utils.launch import prepare_multi_gpu_env

    args = launch_command_parser().parse_args(
        ["--config_file", str(config_file), "--num_processes", "2", "--mixed_precision", mixed_precision, "x.py"])
    args, _, _ = _validate_launch_command(args)
    env = prepare_multi_gpu_env(args)
    return {k: v for k, v in env.items() if k.startswith(("ACCELERATE_", "FSDP_"))}


def _allow_fsdp_on_cpu() -> None:
    import accelerate.state as state
    from accelerate.utils import DistributedType

    init = state.AcceleratorState.__init__

    def __init__(self, *args, fsdp_plugin=None, **kwargs):
        init(self, *args, fsdp_plugin=fsdp_plugin, **kwargs)
        if fsdp_plugin is not None and self.distributed_type == DistributedType.MULTI_CPU:
            self.distributed_type = DistributedType.FSDP
            self.fsdp_plugin = fsdp_plugin
            state.PartialState._shared_state["distributed_type"] = DistributedType.FSDP

    state.AcceleratorState.__init__ = __init__


if __name__ == "__main__":
    _allow_fsdp_on_cpu()
    sys.argv = sys.argv[1:]
    sys.path[0] = os.path.dirname(os.path.abspath(sys.argv[0]))
    runpy.run_path(sys.argv[0], run_name="__main__")
