"""The rows of the paper's tables: what each fine-tuned model starts from.

Public API:
    Condition                 -- one row: name, the paper's label, its table, what it pre-trains, its --model
    CONDITIONS                -- name -> Condition, in the tables' order
    CORE_CONDITIONS, BASELINES -- the default set; the two rows every benefit % is measured between
    PRETRAIN_TASKS            -- what the conditions pre-train on ("natural" or a synthetic task)
    parse_conditions(spec) -> names  -- ``--conditions``: names, ``core`` or ``all``, comma-separated
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, List, Optional


@dataclass(frozen=True)
class Condition:
    """One row of the paper's tables: what the fine-tuned model starts from."""

    name: str
    label: str  # the paper's row name
    table: int  # 1: pre-training data, 2: statistics of a pre-trained model, 3: no pre-training, a constant
    pretrain: Optional[str] = None  # synthetic task, or "natural"; None: nothing to pre-train
    model: str = "{pretrained}"  # recipes/finetune.py --model; {pretrained} = the selected checkpoint
    source: Optional[str] = None  # the condition whose pre-trained checkpoint this one reads

    @property
    def pretrained_by(self) -> str:
        """The condition whose pre-training this row uses: its source, else itself."""
        return self.source or self.name


CONDITIONS: Dict[str, Condition] = {c.name: c for c in [
    Condition("random", "Random Init", 1, model="from_scratch"),
    Condition("natural", "Natural pre-training", 1, pretrain="natural"),
    Condition("set", "Set", 1, pretrain="set"),
    Condition("identity", "Identity", 1, pretrain="identity"),
    Condition("lime", "LIME", 1, pretrain="lime"),
    Condition("nonsense", "Nonsense summary", 1, pretrain="nonsense_summary"),
    Condition("nesting", "Nesting language", 1, pretrain="nesting_language"),
    Condition("stats_set", "Per Param Mean/SD (Set)", 2, model="from_statistics:{pretrained}:Per Param Mean/SD", source="set"),
    Condition("stats_lime", "Per Param Mean/SD (LIME)", 2, model="from_statistics:{pretrained}:Per Param Mean/SD",
              source="lime"),
    Condition("preattn_ln", "Pre-attn LN Constant 0.4", 3, model="from_statistics::Pre-attn LN Constant"),
]}
CORE_CONDITIONS = ("random", "natural", "set", "identity", "lime", "stats_set")
BASELINES = ("random", "natural")
# a scale's per-task pre-training flags are keyed by these; any other key is a typo that would do nothing
PRETRAIN_TASKS = tuple(dict.fromkeys(c.pretrain for c in CONDITIONS.values() if c.pretrain))


def parse_conditions(spec: str) -> List[str]:
    """The condition names of ``--conditions`` (groups expanded, duplicates dropped), baselines required."""
    names: List[str] = []
    for part in (p.strip() for p in spec.split(",")):
        if not part:
            continue
        group = {"core": CORE_CONDITIONS, "all": tuple(CONDITIONS)}.get(part, (part,))
        for name in group:
            if name not in CONDITIONS:
                raise ValueError(f"unknown condition {name!r}; valid: core, all, {', '.join(CONDITIONS)}")
            if name not in names:
                names.append(name)
    missing = [b for b in BASELINES if b not in names]
    if missing:
        raise ValueError(
            f"--conditions must include {' and '.join(missing)}: benefit % is measured between Random Init and "
            "natural pre-training"
        )
    return names
