"""The recipes' Trainer without the per-step tax, and the attention / length-bucket flags."""

from types import SimpleNamespace

import pytest
import torch
from synpre_testkit.models import tiny_t5
from synpre_testkit.recipes import load_recipe
from transformers import Seq2SeqTrainingArguments

from hf_synpre.modeling import ATTENTION_IMPLEMENTATIONS, check_attention, set_attention
from hf_synpre.training import CheckpointSelectionCallback, SynpreCollator, build_trainer, prepare_run
from hf_synpre.training.runner import COMPILE_LENGTH_BUCKET, SynpreTrainer

IDS = SimpleNamespace(pad_token_id=0, eos_token_id=1)


def _batches(n=4, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [{"inputs": torch.randint(3, 100, (int(torch.randint(3, 12, (1,), generator=g)),), generator=g).tolist(),
             "targets": torch.randint(3, 100, (5,), generator=g).tolist()} for _ in range(n)]


def _trainer(tmp_path, **overrides):
    args = Seq2SeqTrainingArguments(
        output_dir=str(tmp_path), max_steps=3, per_device_train_batch_size=4, logging_steps=1, save_strategy="no",
        eval_strategy="no", report_to="none", disable_tqdm=True, use_cpu=True, **{"max_grad_norm": 0.0, **overrides})
    prepare_run(args)
    return build_trainer(tiny_t5(), IDS, args, _batches(12), None, selection=CheckpointSelectionCallback("best"),
                         max_source_length=None, max_target_length=None)


def test_prepare_run_switches_off_the_per_step_nan_check(tmp_path):
    args = Seq2SeqTrainingArguments(output_dir=str(tmp_path), report_to="none", use_cpu=True)
    assert args.logging_nan_inf_filter  # transformers' default: a host read of the loss every step
    prepare_run(args)
    assert not args.logging_nan_inf_filter and not args.remove_unused_columns


def test_no_gradient_norm_is_computed_without_clipping_and_one_is_with_it(tmp_path, monkeypatch):
    trainer = _trainer(tmp_path / "a")
    assert isinstance(trainer, SynpreTrainer)
    calls = []
    original = trainer.accelerator.clip_grad_norm_
    monkeypatch.setattr(trainer.accelerator, "clip_grad_norm_", lambda *a, **k: calls.append(1) or original(*a, **k))
    trainer.train()
    assert calls == [] and not any("grad_norm" in h for h in trainer.state.log_history)

    clipped = _trainer(tmp_path / "b", max_grad_norm=1.0)
    clipped.train()
    norms = [h["grad_norm"] for h in clipped.state.log_history if "grad_norm" in h]
    assert len(norms) == 3 and all(n > 0 for n in norms)


def test_flop_count_is_the_stock_trainers(tmp_path):
    trainer = _trainer(tmp_path)
    batch = SynpreCollator()(_batches(4))
    stock = 6 * batch["input_ids"].numel() * trainer.model.num_parameters(exclude_embeddings=True)
    assert trainer.floating_point_ops(batch) == stock
    assert trainer.floating_point_ops(batch) == stock  # the cached count gives the same


def test_length_buckets_default_under_torch_compile(tmp_path):
    plain = _trainer(tmp_path / "a")
    assert plain.data_collator.pad_to_multiple_of is None
    compiled = _trainer(tmp_path / "b", torch_compile=True)
    assert compiled.data_collator.pad_to_multiple_of == COMPILE_LENGTH_BUCKET
    widths = {compiled.data_collator(_batches(4, seed=s))["input_ids"].shape[1] for s in range(6)}
    assert widths == {COMPILE_LENGTH_BUCKET}


def test_sdpa_and_eager_attention_give_the_same_loss_and_gradients():
    batch = SynpreCollator()(_batches(6))
    results = {}
    for impl in ATTENTION_IMPLEMENTATIONS:
        model = set_attention(tiny_t5(seed=3), impl)
        assert model.config._attn_implementation == impl
        loss = model(**batch).loss
        loss.backward()
        results[impl] = (loss.detach(), [p.grad.clone() for p in model.parameters()])
    (l1, g1), (l2, g2) = results.values()
    torch.testing.assert_close(l1, l2, rtol=1e-5, atol=1e-6)
    for a, b in zip(g1, g2):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6)


def test_unknown_attention_is_a_one_line_error_with_the_closest():
    with pytest.raises(ValueError, match=r"'spda' is not one of \('sdpa', 'eager'\) \(did you mean 'sdpa'\?\)"):
        check_attention("spda")
    check_attention(None)


@pytest.mark.parametrize("recipe, argv", [
    ("pretrain", ["--output_dir", "{tmp}", "--max_steps", "5", "--eval_strategy", "steps",
                  "--save_strategy", "steps"]),
    ("finetune", ["--task", "code_translation", "--output_dir", "{tmp}", "--max_steps", "5"]),
])
def test_recipes_refuse_an_unknown_attention_before_any_work(tmp_path, recipe, argv):
    module = load_recipe(recipe)
    argv = [a.replace("{tmp}", str(tmp_path / "out")) for a in argv] + ["--attn_implementation", "flash"]
    with pytest.raises(ValueError, match="--attn_implementation 'flash' is not one of"):
        module.main(argv)
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())
