"""The rows of the paper's tables: what each fine-tuned model starts from.

Public API:
    Condition                 -- one row: name, the paper's label, its table, what it pre-trains, its --model
    CONDITIONS                -- name -> Condition, in the tables' order
    CORE_CONDITIONS, BASELINES -- the default set; the two rows every benefit % is measured between
    GROUPS                    -- name -> conditions: core, table2 (ten schemes from Set and LIME), table3 (the
                                 LN constant 0.05..1.0), ranking (the 18 simple tasks: set, identity, task_<name>)
    TABLE2_SCHEMES, TABLE3_VALUES
    PRETRAIN_TASKS            -- what the conditions pre-train on ("natural" or a synthetic task)
    parse_conditions(spec, measured=()) -> names  -- ``--conditions``: names or groups (``core``, ``table2``, ``table3``,
                                        ``all``), comma-separated
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence


@dataclass(frozen=True)
class Condition:
    """One row of the paper's tables: what the fine-tuned model starts from."""

    name: str
    label: str  # the paper's row name
    table: int  # 1: pre-training data, 2: statistics of a pre-trained model, 3: no pre-training, a constant,
    # 4: the ranking of the 18 simple tasks (Set and Identity sit in Table 1 and are ranked with them)
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
]}

# Table 2 whole: the other eight statistics schemes, from the Set and from the LIME checkpoints
# (Per Param Mean/SD is stats_set / stats_lime above; Pre-attn LN Constant is Table 3)
TABLE2_SCHEMES = ("Per Param Scale", "Whole Model Scale", "Pre-attn LN Per Param Scale", "Across Layers Scale",
                  "Per Layer Scale", "Pre-MLP LN Per Param Scale", "Attention Per Param Scale", "MLP Per Param Scale")
for _source, _label in (("set", "Set"), ("lime", "LIME")):
    for _scheme in TABLE2_SCHEMES:
        _name = f"stats_{_source}_" + _scheme.lower().replace("-", "").replace(" ", "_")
        CONDITIONS[_name] = Condition(_name, f"{_scheme} ({_label})", 2, model=f"from_statistics:{{pretrained}}:{_scheme}",
                                      source=_source)

# Table 3: the authors' sweep of the constant, in t5x's custom-value form
TABLE3_VALUES = ("0.05", "0.1", "0.2", "0.4", "0.6", "0.8", "1.0")
for _value in TABLE3_VALUES:
    if _value == "0.4":  # the paper's headline value, the scheme's default (and its name before the sweep)
        CONDITIONS["preattn_ln"] = Condition("preattn_ln", "Pre-attn LN Constant 0.4", 3,
                                             model="from_statistics::Pre-attn LN Constant")
    else:
        CONDITIONS[f"ln_{_value}"] = Condition(
            f"ln_{_value}", f"Pre-attn LN Constant {_value}", 3,
            model=f"from_statistics::pre_self_attn_ln-{_value}---pre_cross_attn_ln-{_value}")

# The ranking of the 18 simple tasks (Table 4 here; the paper gives only Set's 65 %): each pre-trained with the
# same budget and selection rule. Set and Identity are Table 1's rows; the other sixteen are named task_<name>.
from hf_synpre.tasks import SIMPLE_TASKS  # noqa: E402  (the paper's 18, in its order)

RANKING = []
for _task in SIMPLE_TASKS:
    if _task in CONDITIONS:
        RANKING.append(_task)
        continue
    CONDITIONS[f"task_{_task}"] = Condition(f"task_{_task}", _task.replace("_", " ").capitalize(), 4, pretrain=_task)
    RANKING.append(f"task_{_task}")

CORE_CONDITIONS = ("random", "natural", "set", "identity", "lime", "stats_set")
GROUPS = {
    "core": CORE_CONDITIONS,
    "table2": ("stats_set", *(n for n in CONDITIONS if n.startswith("stats_set_")),
               "stats_lime", *(n for n in CONDITIONS if n.startswith("stats_lime_"))),
    "table3": tuple("preattn_ln" if v == "0.4" else f"ln_{v}" for v in TABLE3_VALUES),
    "ranking": tuple(RANKING),
}
BASELINES = ("random", "natural")
# a scale's per-task pre-training flags are keyed by these; any other key is a typo that would do nothing
PRETRAIN_TASKS = tuple(dict.fromkeys(c.pretrain for c in CONDITIONS.values() if c.pretrain))


def parse_conditions(spec: str, measured: Sequence[str] = ()) -> List[str]:
    """The condition names of ``--conditions`` (groups expanded, duplicates dropped), baselines required
    unless ``measured`` (the rows the output folder's table already has) holds them: a later invocation may
    add rows to a table without re-running its baselines."""
    names: List[str] = []
    for part in (p.strip() for p in spec.split(",")):
        if not part:
            continue
        group = {**GROUPS, "all": tuple(CONDITIONS)}.get(part, (part,))
        for name in group:
            if name not in CONDITIONS:
                close = difflib.get_close_matches(name, list(CONDITIONS), n=1)
                raise ValueError(f"unknown condition {name!r}" + (f" (closest: {close[0]!r})" if close else "")
                                 + f"; valid: {', '.join(GROUPS)}, all, {', '.join(CONDITIONS)}")
            if name not in names:
                names.append(name)
    missing = [b for b in BASELINES if b not in names and b not in measured]
    if missing:
        raise ValueError(
            f"--conditions must include {' and '.join(missing)}: benefit % is measured between Random Init and "
            "natural pre-training (or name an --output_dir whose table has them)"
        )
    return names
