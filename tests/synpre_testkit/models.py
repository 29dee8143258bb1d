"""Tiny T5 models over the shipped vocabulary, for tests that need a model but not a trained one.

    TINY_ARCH                          -- d_model 32, one layer each side: milliseconds per step
    tiny_t5(vocab_size=4100, seed=0)   -- a t5x-initialised T5 with the default tokenizer's special ids
    save_checkpoint(path, seed=0)      -- that model and the tokenizer saved, as recipes/pretrain.py's selected/
"""

from __future__ import annotations

from pathlib import Path

from transformers import T5Config

from hf_synpre.modeling import build_t5
from hf_synpre.tokenizer import default_tokenizer

TINY_ARCH = dict(d_model=32, d_kv=8, d_ff=64, num_layers=1, num_decoder_layers=1, num_heads=4)


def tiny_t5(vocab_size: int = 4100, seed: int = 0):
    tok = default_tokenizer()
    config = T5Config(vocab_size=vocab_size, pad_token_id=tok.pad_token_id, eos_token_id=tok.eos_token_id,
                      decoder_start_token_id=tok.pad_token_id, dropout_rate=0.0, **TINY_ARCH)
    return build_t5(config, init="t5x", seed=seed)


def save_checkpoint(path: Path, seed: int = 0) -> Path:
    tiny_t5(seed=seed).save_pretrained(path)
    default_tokenizer().save_pretrained(path)
    return path
