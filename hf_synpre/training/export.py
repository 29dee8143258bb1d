"""Write a model as a normal HF model directory, atomically.

Public API:
    export_model(model, tokenizer, output_dir, card, extra_files=None, state_dict=None) -> Path
    full_state_dict(model) -> dict | None   -- a sharded (FSDP2) model's whole state dict; a collective
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Dict, Optional

from ..io import atomic_dir

__all__ = ["export_model", "full_state_dict"]


def full_state_dict(model) -> Optional[dict]:
    """The whole state dict of a model whose parameters are sharded ``DTensor``s (FSDP2's ``fully_shard``), else None.

    A collective: every rank calls it (the shards are all-gathered); rank 0 gets the full tensors on the
    CPU, the other ranks ``{}``. ``save_pretrained`` cannot gather them itself: it runs on rank 0 only,
    and safetensors cannot read a DTensor's storage ("Attempted to access the data pointer on an invalid
    python storage"). A model that is not sharded (one process, DDP), or no module at all: None.
    """
    import torch
    from torch.distributed.tensor import DTensor

    if not isinstance(model, torch.nn.Module) or not any(isinstance(p, DTensor) for p in model.parameters()):
        return None
    from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict

    return get_model_state_dict(model, options=StateDictOptions(full_state_dict=True, cpu_offload=True))


def export_model(model, tokenizer, output_dir: os.PathLike, card: str, extra_files: Optional[Dict[str, str]] = None,
                 state_dict: Optional[dict] = None) -> Path:
    """Save a normal HF model dir (safetensors, config, tokenizer, README.md) atomically.

    Written into a temporary sibling and renamed over ``output_dir``: a reader (or a crash) never sees
    half a model, and the previous selection stays in place until the new one is complete.
    ``state_dict`` replaces the model's own (a sharded model's, gathered by :func:`full_state_dict`).
    """
    out = Path(output_dir)
    with atomic_dir(out) as tmp:
        model.save_pretrained(tmp, safe_serialization=True, state_dict=state_dict)
        if tokenizer is not None:
            tokenizer.save_pretrained(tmp)
        (tmp / "README.md").write_text(card)
        for name, text in (extra_files or {}).items():
            (tmp / name).write_text(text)
    return out
