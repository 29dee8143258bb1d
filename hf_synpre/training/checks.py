"""Checks a training run makes before any data or model is built.

Public API:
    check_output_dir(output_dir, resume=None, overwrite=False) -> Path  -- writable, and no stale checkpoints
    check_push(training_args) -> repo id  -- for ``--push_to_hub``: online, a valid repo id, a token
    resolve_resume(resume, output_dir) -> checkpoint path or None  ("true"/"last" = the latest one)

Every check raises ``ValueError`` whose message says what was wrong and how to fix it; the recipes turn
it into ``<script>: error: <message>`` and exit status 2 (:func:`hf_synpre.config.run_recipe`).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any, Optional

from ..io import hub_offline

__all__ = ["check_output_dir", "check_push", "resolve_resume"]


def check_output_dir(output_dir: Optional[str], resume: Any = None, overwrite: bool = False) -> Path:
    """``output_dir`` is set and writable, and holds no checkpoints of another run unless asked to."""
    from transformers.trainer_utils import get_last_checkpoint

    if not output_dir:
        raise ValueError("set --output_dir")
    out = Path(output_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(dir=out, prefix=".write-test-")
        os.close(fd)
        os.remove(probe)
    except OSError as err:
        raise ValueError(
            f"cannot write to --output_dir {out}: {err.strerror or err}. Choose a directory you can write to"
        ) from None
    if resume is None and get_last_checkpoint(str(out)) is not None and not overwrite:
        raise ValueError(
            f"--output_dir {out} already holds checkpoints. Continue that run with --resume_from_checkpoint true, "
            "start over with --overwrite_output_dir, or pick another --output_dir"
        )
    return out


def check_push(training_args) -> str:
    """For ``--push_to_hub``: online, a valid ``--hub_model_id`` (default: the output_dir's name), a token."""
    from huggingface_hub import get_token
    from huggingface_hub.errors import HFValidationError
    from huggingface_hub.utils import validate_repo_id

    if hub_offline():
        raise ValueError("--push_to_hub cannot work with HF_HUB_OFFLINE set; unset it or drop --push_to_hub")
    repo_id = training_args.hub_model_id or Path(training_args.output_dir).resolve().name
    try:
        validate_repo_id(repo_id)
    except HFValidationError as err:
        raise ValueError(f"--hub_model_id {repo_id!r} is not a valid Hub repo id: {err}") from None
    training_args.hub_model_id = repo_id
    if getattr(training_args, "hub_token", None) is None and get_token() is None:
        raise ValueError("--push_to_hub needs a Hugging Face token: set HF_TOKEN or run `hf auth login`")
    return repo_id


def resolve_resume(resume: Any, output_dir: str) -> Optional[str]:
    """``--resume_from_checkpoint``: "true"/"last" -> the latest ``checkpoint-*``; "false"/"" -> None."""
    from transformers.trainer_utils import get_last_checkpoint

    if isinstance(resume, str) and resume.lower() in ("true", "last"):
        resume = get_last_checkpoint(output_dir)
        if resume is None:
            raise ValueError(f"--resume_from_checkpoint true: no checkpoint-* in {output_dir}")
    elif isinstance(resume, str) and resume.lower() in ("false", "none", ""):
        resume = None
    if resume is not None and not Path(resume, "trainer_state.json").is_file():
        raise ValueError(f"--resume_from_checkpoint {resume} is not a Trainer checkpoint (no trainer_state.json)")
    return resume
