"""Write a model as a normal HF model directory, atomically.

Public API:
    export_model(model, tokenizer, output_dir, card, extra_files=None) -> Path
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Dict, Optional

from ..io import atomic_dir

__all__ = ["export_model"]


def export_model(model, tokenizer, output_dir: os.PathLike, card: str, extra_files: Optional[Dict[str, str]] = None) -> Path:
    """Save a normal HF model dir (safetensors, config, tokenizer, README.md) atomically.

    Written into a temporary sibling and renamed over ``output_dir``: a reader (or a crash) never sees
    half a model, and the previous selection stays in place until the new one is complete.
    """
    out = Path(output_dir)
    with atomic_dir(out) as tmp:
        model.save_pretrained(tmp, safe_serialization=True)
        if tokenizer is not None:
            tokenizer.save_pretrained(tmp)
        (tmp / "README.md").write_text(card)
        for name, text in (extra_files or {}).items():
            (tmp / name).write_text(text)
    return out
