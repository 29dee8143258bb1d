"""hf_synpre.training.Adafactor: t5x's Adafactor, sync-free and multi-tensor (hf_synpre/training/optim.py).

Exactness is checked against transformers' Adafactor (with ``min_dim_size_to_factor=1`` both factor the
same tensors) and against a per-tensor transcription of t5x's formulas (the default factoring); "no host
reads" with a dispatch mode that fails on ``aten._local_scalar_dense`` (what ``.item()``, ``bool(t)``,
``float(t)`` and Python ``max``/``min`` on a tensor run), shown to catch transformers' Adafactor.
Both update paths are checked on CPU: the loop (one CPU thread, as these tests run) and, forced with
``_stack_on_cpu``, the stacked multi-tensor path that GPUs (and several CPU threads) take.
CPU only, ~15 s.
"""

from __future__ import annotations

import io
import math

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

from hf_synpre.modeling import build_t5
from hf_synpre.training import Adafactor, paper_optimizer, t5x_optimizer


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny tensors: one thread is faster, and immune to OpenMP stalls on a loaded machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


# the loop (one CPU thread's path) and the stacked path (GPUs', forced on CPU)
both_paths = pytest.mark.parametrize("stacked", [False, True], ids=["loop", "stacked"])


def tiny_t5(seed=0):
    from transformers import T5Config

    config = T5Config(vocab_size=200, d_model=64, d_kv=16, d_ff=128, num_layers=1, num_decoder_layers=1,
                      num_heads=4, relative_attention_num_buckets=32, dropout_rate=0.0, feed_forward_proj="relu",
                      decoder_start_token_id=0)
    return build_t5(config, init="t5x", seed=seed)


def fixed_batches(n=4, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [{"input_ids": torch.randint(2, 200, (8, 12), generator=g),
             "labels": torch.randint(2, 200, (8, 8), generator=g)} for _ in range(n)]


def loss_backward(model, batch):
    loss = model(**batch).loss
    loss.backward()
    return loss


# ------------------------------------------------------------------------------------------ exactness
@both_paths
@pytest.mark.parametrize("chunk", [None, 2048])  # 2048: every 2-D tensor split, the larger ones into row blocks
def test_equals_transformers_adafactor_over_200_training_steps(chunk, stacked):
    """A tiny T5 trained 200 steps by HF's Adafactor (as ``paper_optimizer(implementation="hf")`` builds it),
    and a copy updated by ours (``min_dim_size_to_factor=1``: HF's factoring) from the same gradients, each
    under its own LambdaLR(RsqrtSchedule): every tensor agrees to ``max|diff| <= 1e-6 * max|p|``.

    Measured: worst ``max|diff| / max|p|`` over the tensors 2.7e-7 (2.3 float32 eps; stacked path, CPU,
    torch 2.13, both chunkings; 2.4e-7 on an H200, torch 2.11; the loop: 2.0e-7), worst absolute 7.2e-7
    (1.5 ulp at |p| = 4.65, the embedding) -- float32 round-off of a different operation order; the
    tolerance is ~4x that. Elementwise relative error is meaningless here (cancellation at entries near 0),
    hence the per-tensor scale.

    Both optimisers see model A's gradients ("lockstep"): two *independent* 200-step trainings are
    chaotic -- HF's Adafactor against itself with one weight moved by one ulp at init ends 0.018 apart,
    ours against HF 0.020 apart (same order), while the loss curves agree -- so they cannot test
    round-off-level equality.
    """
    hf_model, ours_model = tiny_t5(), tiny_t5()
    hf, hf_schedule = paper_optimizer(hf_model, 0.01, 100, implementation="hf")
    ours, ours_schedule = paper_optimizer(ours_model, 0.01, 100, min_dim_size_to_factor=1)
    ours.max_chunk_numel, ours._stack_on_cpu = chunk, stacked
    assert type(hf).__module__.startswith("transformers") and isinstance(ours, Adafactor)
    batches = fixed_batches()
    losses = []
    for step in range(200):
        losses.append(loss_backward(hf_model, batches[step % 4]).item())
        for p, q in zip(hf_model.parameters(), ours_model.parameters()):
            q.grad = p.grad.clone()
        for optimizer, schedule in ((hf, hf_schedule), (ours, ours_schedule)):
            optimizer.step()
            schedule.step()
            optimizer.zero_grad(set_to_none=True)
    assert losses[-1] < 0.1 * losses[0]  # it trained
    assert ours.param_groups[0]["lr"] == hf.param_groups[0]["lr"] == pytest.approx(0.01 * math.sqrt(100 / 200))
    worst = 0.0
    for (name, p), q in zip(hf_model.named_parameters(), ours_model.parameters()):
        scale = p.abs().max().item()
        diff = (p - q).abs().max().item()
        worst = max(worst, diff / scale)
        assert diff <= 1e-6 * scale, f"{name}: max|diff| {diff:.3g} > 1e-6 * max|p| {scale:.3g}"
        assert diff < 1e-3 * (p - tiny_t5().state_dict()[name]).abs().max().item()  # << what training moved
    assert worst > 0.0  # not vacuous: two implementations, round-off apart
    assert any(c.block_rows for c in ours._plan.chunks) == (chunk is not None)
    assert {c.path for c in ours._plan.chunks if c.factored} == {"stacked" if stacked else "loop"}


def t5x_reference_step(p, g, state, lr, min_dim=128, eps1=1e-30, eps2=1e-3, clip=1.0):
    """t5x's ``Adafactor.apply_param_gradient`` for one tensor, transcribed (float64 for a reference)."""
    p, g = p.double(), g.double()
    state["t"] = t = state.get("t", 0) + 1
    beta2 = 1.0 - t ** -0.8
    g2 = g * g + eps1
    if p.ndim >= 2 and min(p.shape[-2:]) >= min_dim:
        state["row"] = beta2 * state.get("row", 0.0) + (1 - beta2) * g2.mean(-1)
        state["col"] = beta2 * state.get("col", 0.0) + (1 - beta2) * g2.mean(-2)
        row_factor = (state["row"] / state["row"].mean(-1, keepdim=True)) ** -0.5
        y = g * row_factor.unsqueeze(-1) * (state["col"] ** -0.5).unsqueeze(-2)
    else:
        state["v"] = beta2 * state.get("v", 0.0) + (1 - beta2) * g2
        y = g * state["v"] ** -0.5
    y = y / max(1.0, y.pow(2).mean().sqrt().item() / clip)
    return p - lr * max(eps2, p.pow(2).mean().sqrt().item()) * y


@both_paths
def test_default_factoring_follows_t5x_formulas(stacked):
    """t5x's default (factor when both of the last two dims are >= 128), incl. unfactored 2-D tensors,
    a batch-of-matrices tensor, a scalar, tiny parameters (eps2 scale) and clipped and unclipped steps."""
    gen = torch.Generator().manual_seed(0)
    shapes = [(32, 4), (128, 128), (128, 128), (256, 130), (2, 128, 160), (130,), (), (64, 300)]
    params = [torch.nn.Parameter(torch.randn(s, generator=gen) * (1e-5 if s == (64, 300) else 1.0)) for s in shapes]
    reference = [p.detach().double().clone() for p in params]
    states = [{} for _ in params]
    optimizer = Adafactor(params, lr=0.05)
    optimizer._stack_on_cpu = stacked
    for step in range(6):
        grads = [torch.randn(s, generator=gen) * 10.0 ** (step % 3 - 1) for s in shapes]
        for p, g in zip(params, grads):
            p.grad = g
        optimizer.step()
        reference = [t5x_reference_step(r.float(), g, s, 0.05) for r, g, s in zip(reference, grads, states)]
    for p, r in zip(params, reference):
        torch.testing.assert_close(p.detach().double(), r, rtol=1e-5, atol=1e-6 * r.abs().max().item())


def test_transformers_adafactor_diverges_from_t5x_on_the_small_table():
    """What t5x's rule (``min_dim_size_to_factor=128``) changes: HF factors the 32 x heads bias table."""
    init = torch.randn(32, 8, generator=torch.Generator().manual_seed(1))
    p_hf, p_ours = torch.nn.Parameter(init.clone()), torch.nn.Parameter(init.clone())
    hf, _ = paper_optimizer(torch.nn.ParameterList([p_hf]), 0.01, implementation="hf")
    ours, _ = paper_optimizer(torch.nn.ParameterList([p_ours]), 0.01, min_dim_size_to_factor=128)
    g = torch.Generator().manual_seed(2)
    for _ in range(3):
        grad = torch.randn(32, 8, generator=g) * torch.logspace(-3, 0, 8)  # columns of different scales
        p_hf.grad, p_ours.grad = grad.clone(), grad.clone()
        hf.step()
        ours.step()
    assert "exp_avg_sq_row" in hf.state[p_hf] and set(ours.state[p_ours]) == {"step", "exp_avg_sq"}
    assert (p_hf - p_ours).abs().max() > 1e-4


# ------------------------------------------------------------------------------------------ no host reads
class NoHostReads(TorchDispatchMode):
    """Fails on any device->host read of a tensor value (``aten._local_scalar_dense``), and on the Python
    conversions patched below as a second net (``tolist``/``numpy`` do not go through the dispatcher)."""

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if func is torch.ops.aten._local_scalar_dense.default:
            raise AssertionError("host read of a tensor value")
        return func(*args, **(kwargs or {}))


def no_host_reads(monkeypatch):
    def refuse(*a, **k):
        raise AssertionError("host read of a tensor value")

    for name in ("item", "tolist", "numpy", "__bool__", "__float__", "__int__", "__index__"):
        monkeypatch.setattr(torch.Tensor, name, refuse)
    return NoHostReads()


def mixed_params(dtype=torch.float32):
    gen = torch.Generator().manual_seed(0)
    shapes = [(256, 128), (256, 128), (32, 4), (128, 200), (64,), (64,), ()]
    return [torch.nn.Parameter(torch.randn(s, generator=gen).to(dtype)) for s in shapes]


def set_grads(params, seed, scale=1.0):
    gen = torch.Generator().manual_seed(seed)
    for p in params:
        p.grad = (torch.randn(p.shape, generator=gen) * scale).to(p.dtype)


@both_paths
@pytest.mark.parametrize("chunk", [None, 4096])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_step_never_reads_a_device_value_on_the_host(monkeypatch, dtype, chunk, stacked):
    params = mixed_params(dtype)
    optimizer, schedule = paper_optimizer(torch.nn.ParameterList(params), 0.01, 10)
    optimizer.max_chunk_numel, optimizer._stack_on_cpu = chunk, stacked
    for step in range(3):  # the first step builds the plan; the second clips (large gradients); the third not
        set_grads(params, step, scale=100.0 if step == 1 else 1e-3)
        with monkeypatch.context() as m, no_host_reads(m):
            optimizer.step()
        schedule.step()
    assert all(torch.isfinite(p).all() for p in params)


def test_the_guard_catches_transformers_adafactor(monkeypatch):
    params = mixed_params()
    optimizer, _ = paper_optimizer(torch.nn.ParameterList(params), 0.01, 10, implementation="hf")
    set_grads(params, 0)
    with pytest.raises(AssertionError, match="host read"):
        with monkeypatch.context() as m, no_host_reads(m):
            optimizer.step()
    with pytest.raises(AssertionError, match="host read"), NoHostReads():  # the dispatch mode alone, too
        optimizer.step()


class CountOps(TorchDispatchMode):
    def __init__(self):
        super().__init__()
        self.ops = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.ops += 1
        return func(*args, **(kwargs or {}))


def ops_per_step(optimizer_factory, n_tensors, stacked=True):
    gen = torch.Generator().manual_seed(0)
    shapes = [(160, 144)] * n_tensors + [(48,)] * n_tensors
    params = [torch.nn.Parameter(torch.randn(*s, generator=gen)) for s in shapes]
    optimizer = optimizer_factory(params)
    optimizer._stack_on_cpu = stacked
    set_grads(params, 0)
    optimizer.step()  # builds the plan
    with CountOps() as count:
        optimizer.step()
    return count.ops


def test_update_is_multi_tensor():
    """The stacked path (GPUs): the number of tensor ops per step does not grow with the number of same-shaped
    tensors (HF's does). The loop (one CPU thread, where an op costs microseconds and passes over memory
    count) adds a few ops per factored tensor, for its 7 passes, and none per unfactored one."""
    ours = lambda params: Adafactor(params, lr=0.01)
    assert ops_per_step(ours, 2) == ops_per_step(ours, 20) < 120
    assert 0 < ops_per_step(ours, 20, stacked=False) - ops_per_step(ours, 2, stacked=False) <= 18 * 8
    hf = lambda params: paper_optimizer(torch.nn.ParameterList(params), 0.01, implementation="hf")[0]
    assert ops_per_step(hf, 20) > 5 * ops_per_step(hf, 2)


def test_the_loop_is_for_one_cpu_thread():
    """Several threads: every op on a large tensor is an OpenMP region, so the stacked path (fewer ops)."""
    params = mixed_params()
    optimizer = Adafactor(params, lr=0.01, min_dim_size_to_factor=1)
    set_grads(params, 0)
    optimizer.step()
    assert {c.path for c in optimizer._plan.chunks if c.factored} == {"loop"}
    torch.set_num_threads(2)  # the fixture restores it
    optimizer.step()
    assert {c.path for c in optimizer._plan.chunks if c.factored} == {"stacked"}


# ------------------------------------------------------------------------------------------ bf16, resume
@both_paths
@pytest.mark.parametrize("chunk", [None, 4096])
def test_bf16_parameters_update_in_float32(chunk, stacked):
    p32 = mixed_params()
    p16 = [torch.nn.Parameter(p.detach().to(torch.bfloat16)) for p in p32]
    ref = [torch.nn.Parameter(p.detach().float()) for p in p16]  # the same (bf16-exact) values in float32
    o16 = Adafactor(p16, lr=0.01, min_dim_size_to_factor=1, max_chunk_numel=chunk)
    oref = Adafactor(ref, lr=0.01, min_dim_size_to_factor=1)
    o16._stack_on_cpu = stacked
    set_grads(p16, 0)
    for p, r in zip(p16, ref):
        r.grad = p.grad.float()
    o16.step()
    oref.step()
    for p, r in zip(p16, ref):
        assert p.dtype == torch.bfloat16
        torch.testing.assert_close(p.detach(), r.detach().to(torch.bfloat16), rtol=2**-8, atol=0)  # <= 1 bf16 ulp
        assert (p.detach() != p.detach().new_tensor(0)).any()
    changed = sum((p.float() != r0.float()).sum().item() for p, r0 in zip(p16, mixed_params(torch.bfloat16)))
    assert changed > 0.5 * sum(p.numel() for p in p16)  # the updates survive the bf16 rounding
    assert all(v.dtype == torch.float32 for s in o16.state.values() for v in s.values() if torch.is_tensor(v))


def run(params_dtype, steps, resume_at=None, stacked=False):
    """``steps`` steps of a tiny T5 with the paper's optimiser (some tensors factored); with ``resume_at``,
    model, optimiser and scheduler are saved there as the Trainer does (torch.save, weights_only load) and
    a fresh run continues from them."""
    batches = fixed_batches()

    def fresh():
        model = tiny_t5().to(params_dtype)
        optimizer, schedule = paper_optimizer(model, 0.01, 5, min_dim_size_to_factor=32)  # 64x64 factored, 32x4 not
        optimizer._stack_on_cpu = stacked
        return model, optimizer, schedule

    model, optimizer, schedule = fresh()
    for step in range(steps):
        if step == resume_at:
            blobs = []
            for state in (model.state_dict(), optimizer.state_dict(), schedule.state_dict()):
                blobs.append(io.BytesIO())
                torch.save(state, blobs[-1])
            model, optimizer, schedule = fresh()
            loaded = [torch.load(io.BytesIO(b.getvalue()), weights_only=True) for b in blobs]
            model.load_state_dict(loaded[0])
            optimizer.load_state_dict(loaded[1])
            schedule.load_state_dict(loaded[2])
        loss_backward(model, batches[step % 4])
        optimizer.step()
        schedule.step()
        optimizer.zero_grad(set_to_none=True)
    return model, optimizer


@both_paths
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_save_load_resume_equals_an_uninterrupted_run(dtype, stacked):
    straight, _ = run(dtype, 12, stacked=stacked)
    resumed, optimizer = run(dtype, 12, resume_at=5, stacked=stacked)
    for (name, p), q in zip(straight.named_parameters(), resumed.parameters()):
        assert torch.equal(p, q), name
    kinds = {tuple(sorted(k for k in s if k != "step")) for s in optimizer.state.values()}
    assert kinds == {("exp_avg_sq",), ("exp_avg_sq_col", "exp_avg_sq_row")}
    assert {s["step"] for s in optimizer.state.values()} == {12}
    assert all(v.dtype == torch.float32 for s in optimizer.state.values() for v in s.values() if torch.is_tensor(v))
    assert not torch.equal(straight.shared.weight, tiny_t5().to(dtype).shared.weight)


@both_paths
@pytest.mark.parametrize("chunk", [None, 4096])
def test_parameters_without_gradients_keep_their_step_as_in_transformers(chunk, stacked):
    """A tensor without a gradient in some steps is skipped (state and step untouched), as HF does."""
    a, b = mixed_params(), mixed_params()
    hf, _ = paper_optimizer(torch.nn.ParameterList(a), 0.01, implementation="hf")
    ours = Adafactor(b, lr=0.01, min_dim_size_to_factor=1, max_chunk_numel=chunk)
    ours._stack_on_cpu = stacked
    for step in range(6):
        set_grads(a, step)
        for p, q in zip(a, b):
            q.grad = p.grad.clone()
        for i in ((1, 4) if step in (2, 3) else (5,) if step == 4 else ()):
            a[i].grad = b[i].grad = None
        hf.step()
        ours.step()
    for p, q in zip(a, b):
        torch.testing.assert_close(q, p, rtol=0, atol=1e-6 * p.abs().max().item())
    assert [ours.state[q]["step"] for q in b] == [hf.state[p]["step"] for p in a] == [6, 4, 6, 6, 4, 5, 6]


# ------------------------------------------------------------------------------------------ API
def test_factoring_rule_is_t5x_on_request_and_every_matrix_in_the_recipes():
    small, square, rect = (torch.nn.Parameter(torch.randn(*s)) for s in [(32, 4), (128, 128), (127, 4096)])
    recipes, _ = paper_optimizer(torch.nn.ParameterList([small, square, rect]), 0.01)
    assert recipes.param_groups[0]["min_dim_size_to_factor"] == 1  # transformers' rule: the validated runs
    assert Adafactor([small], 0.01).param_groups[0]["min_dim_size_to_factor"] == 128  # the class: t5x's
    optimizer, _ = paper_optimizer(torch.nn.ParameterList([small, square, rect]), 0.01, min_dim_size_to_factor=128)
    assert optimizer.param_groups[0]["min_dim_size_to_factor"] == 128
    for p in (small, square, rect):
        p.grad = torch.ones_like(p)
    optimizer.step()
    assert set(optimizer.state[small]) == {"step", "exp_avg_sq"}
    assert optimizer.state[small]["exp_avg_sq"].shape == (32, 4)
    assert set(optimizer.state[square]) == {"step", "exp_avg_sq_row", "exp_avg_sq_col"}
    assert optimizer.state[square]["exp_avg_sq_row"].shape == optimizer.state[square]["exp_avg_sq_col"].shape == (128,)
    assert "exp_avg_sq" in optimizer.state[rect]  # 127 < 128
    assert Adafactor.factored((32, 4), 1) and Adafactor.factored((32, 4), 0) and not Adafactor.factored((32,), 1)


def test_factories_and_their_options():
    model = torch.nn.Linear(4, 4)
    optimizer, schedule = t5x_optimizer(model, 1e-3)
    assert isinstance(optimizer, Adafactor) and optimizer.param_groups[0]["lr"] == 1e-3
    assert isinstance(schedule, torch.optim.lr_scheduler.ConstantLR)
    optimizer, _ = t5x_optimizer(model, 1e-3, implementation="hf")
    assert type(optimizer).__module__.startswith("transformers")
    with pytest.raises(ValueError, match="implementation"):
        paper_optimizer(model, implementation="optax")
    with pytest.raises(ValueError, match="factors every tensor"):
        paper_optimizer(model, implementation="hf", min_dim_size_to_factor=128)
    with pytest.raises(ValueError, match="t5x"):
        Adafactor(model.parameters(), lr=0.01, beta1=0.9)
