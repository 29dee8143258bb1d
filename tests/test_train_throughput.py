"""benchmarks/train_throughput.py's decoder-only part, a few steps: the recipe's Trainer and the hand loop see the
same batches and end with the same weights, and the JSON keeps what the run did not measure."""

import importlib.util
import json
import sys

from conftest import REPO


def _benchmark():
    name = "benchmark_train_throughput"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, REPO / "benchmarks" / "train_throughput.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


def test_causal_throughput_same_batches_and_merged_json(tmp_path):
    import torch

    threads = torch.get_num_threads()
    out = tmp_path / "train_throughput.json"
    t5 = {"data": "committed T5 run", "sizes": {"cpu_default": {"recipe_over_hand_loop": 0.998}}}
    out.write_text(json.dumps(t5))
    try:
        result = _benchmark().main([
            "--families", "llama", "--sizes", "tiny", "--steps", "3", "--warmup", "1", "--repeats", "1",
            "--min_length", "10", "--max_length", "40", "--max_source_length", "64", "--max_target_length", "64",
            "--out", str(out)])
    finally:
        torch.set_num_threads(threads)
    written = json.loads(out.read_text())
    assert written == result
    assert {k: written[k] for k in t5} == t5  # the T5 entries survive a decoder-only run
    llama = written["causal"]["llama"]
    tiny = llama["sizes"]["tiny"]
    assert tiny["same_batches"] is True
    assert tiny["max_abs_param_diff"] == 0.0  # same batches, same init, same step: the same weights
    for key in ("hand_loop_steps_per_s", "recipe_steps_per_s", "hand_loop_tokens_per_s", "recipe_tokens_per_s",
                "recipe_over_hand_loop"):
        assert tiny[key] > 0
    padding = llama["padding_efficiency"]
    assert padding["flatten"] == 1.0
    assert padding["none"] < padding["block_mask"] <= 1.0
    assert set(padding) == {"none", "flatten", "block_mask", "none_grouped_by_length"}
    assert llama["steps_timed"] == 2 and "load_average_1_5_15" in llama
