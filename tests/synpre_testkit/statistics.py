"""The check that a statistics-initialised model's every group was drawn from its source's statistics, shared
by the T5 (tests/test_statistics.py) and decoder-only (tests/test_statistics_causal.py) tests.

    flat(model, names) -> float64 vector of the named parameters
    check_groups_drawn(model, source, fresh, groups, *, mean_std, is_layer_norm)
"""

from __future__ import annotations

import math
from typing import Callable, Sequence

import torch


def flat(model, names) -> torch.Tensor:
    params = dict(model.named_parameters())
    return torch.cat([params[n].detach().reshape(-1).double() for n in names])


def check_groups_drawn(model, source, fresh, groups: Sequence[Sequence[str]], *, mean_std: bool,
                       is_layer_norm: Callable[[str], bool]) -> None:
    """Each group of ``model`` has its source group's mean (``mean_std``; else 0) and std within 5 standard
    errors; under a "scale" scheme a layer-norm group is exactly its pooled mean; every tensor outside the
    groups is ``fresh``'s (the same init without the draw)."""
    for group in groups:
        src = flat(source, group)
        mu, sd, n = src.mean().item(), src.std(correction=0).item(), src.numel()
        got = flat(model, group)
        if not mean_std and is_layer_norm(group[0]):
            for name in group:  # `scale`: layer norms (biases included) are the exact constant pooled mean
                p = model.get_parameter(name)
                assert torch.equal(p, torch.full_like(p, mu)), name
            continue
        want_mean = mu if mean_std else 0.0
        assert abs(got.mean().item() - want_mean) <= 5 * sd / math.sqrt(n) + 1e-7, group
        assert abs(got.std(correction=0).item() - sd) <= 5 * sd / math.sqrt(2 * n) + 1e-7, group
    drawn = {n for g in groups for n in g}
    for name, p in model.named_parameters():
        if name not in drawn:  # token embedding, lm_head and every tensor outside the groups
            assert torch.equal(p, fresh.get_parameter(name)), name
