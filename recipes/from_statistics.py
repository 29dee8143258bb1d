#!/usr/bin/env python
"""Initialise a fresh model from a pre-trained model's parameter statistics and save (or push) it.

"Insights into Pre-training via Simpler Synthetic Tasks" (Wu, Li, Liang, NeurIPS 2022), Tables 2 and 3:
a fresh T5 whose tensors are drawn from the per-tensor mean and std of a pre-trained T5 ("Per Param
Mean/SD") keeps about 39 % of the benefit of natural pre-training. This script takes a source (a local
checkpoint, a statistics file, or a Hub id), a scheme and a seed, and writes a ready-to-fine-tune model
directory: ``model.safetensors``, ``config.json``, the source's tokenizer if it has one, the source's
statistics (``source_parameter_statistics.json``) and a model card (``README.md``).

The model is of the source's family: a T5 source gives a ``T5ForConditionalGeneration`` (t5x "Random
Init" for the tensors the scheme leaves); a decoder-only source (``model_type`` llama, qwen2, mistral or
gpt2, e.g. a ``recipes/pretrain.py --family llama`` run) gives that family's ``*ForCausalLM``
(``AutoModelForCausalLM``, transformers' own init for the tensors the scheme leaves). ``--config_name``
may name a config of either kind.

Run it (after ``pip install -e .`` in the repository root):

    python recipes/from_statistics.py \
        --source ./runs/set/checkpoint-10000 \
        --scheme "Per Param Mean/SD" \
        --seed 0 \
        --output_dir ./models/t5-small-set-per-param-mean-sd-seed0

    # Table 3: pre-attention layer norms set to 0.4, no pre-training at all
    python recipes/from_statistics.py --scheme "Pre-attn LN Constant" --value 0.4 \
        --config_name google-t5/t5-small --output_dir ./models/t5-small-preattnln-0.4

    # the same arguments from a file (flags given too override it), then push to the Hub (needs HF_TOKEN
    # or `hf auth login`; HF_ENDPOINT selects another Hub server)
    python recipes/from_statistics.py --config my_from_statistics_args.yaml --seed 1
    python recipes/from_statistics.py my_from_statistics_args.yaml
    python recipes/from_statistics.py --source google-t5/t5-small --output_dir ./out \
        --push_to_hub --hub_model_id me/t5-small-per-param-mean-sd

Schemes (paper name, or the original t5x init_id): Per Param Mean/SD, Per Param Scale, Whole Model
Scale, Pre-attn LN Per Param Scale, Across Layers Scale, Per Layer Scale, Pre-MLP LN Per Param Scale,
Attention Per Param Scale, MLP Per Param Scale, Pre-attn LN Constant. See ``hf_synpre.statistics``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

from hf_synpre import cards
from hf_synpre.config import parse_args_with_config, run_recipe
from hf_synpre.io import atomic_dir
from hf_synpre.training.checks import check_push
from hf_synpre.statistics import (
    ParameterStatistics,
    Scheme,
    from_statistics,
    get_scheme,
    load_statistics,
    statistics_table,
    to_markdown,
)

logger = logging.getLogger("from_statistics")

#: The source statistics travel with the model under this name. Not ``parameter_statistics.json``:
#: that name would make ``load_statistics(output_dir)`` return the *source's* statistics.
SOURCE_STATISTICS_FILENAME = "source_parameter_statistics.json"



@dataclass
class InitArguments:
    """What to initialise from, and how."""

    source: str | None = field(
        default=None,
        metadata={
            "help": "Where the statistics come from: a checkpoint directory, a model.safetensors file, a "
            "parameter_statistics.json file, or a Hub model id. A directory or Hub repo holding "
            "parameter_statistics.json is read without its weights. Optional for 'Pre-attn LN Constant'."
        },
    )
    scheme: str = field(
        default="Per Param Mean/SD",
        metadata={
            "help": "The paper's scheme name (e.g. 'Per Param Mean/SD', 'Whole Model Scale') or its t5x init_id."
        },
    )
    seed: int = field(default=0, metadata={"help": "Seed of the fresh init (t5x for T5, transformers' for a "
                                                     "decoder-only family) and of the draws."})
    value: float | None = field(
        default=None,
        metadata={"help": "The constant for 'Pre-attn LN Constant' (Table 3; default 0.4). Other schemes reject it."},
    )
    config_name: str | None = field(
        default=None,
        metadata={
            "help": "Target config (name, path or Hub id; T5 or a decoder-only family: llama, qwen2, mistral, "
            "gpt2) if it should differ from the source's, e.g. a wider model. Required when there is no source "
            "or the source carries no config."
        },
    )
    revision: str | None = field(default=None, metadata={"help": "Hub revision of --source."})


@dataclass
class OutputArguments:
    """Where the model goes."""

    output_dir: str = field(metadata={"help": "Directory to write the model, tokenizer, statistics and card to."})
    overwrite_output_dir: bool = field(
        default=False, metadata={"help": "Replace output_dir if it exists and is not empty."}
    )
    push_to_hub: bool = field(default=False, metadata={"help": "Upload output_dir to the Hub when done."})
    hub_model_id: str | None = field(
        default=None,
        metadata={"help": "Hub repo to push to ('user/name' or 'name'); defaults to output_dir's name."},
    )
    hub_private_repo: bool | None = field(
        default=None, metadata={"help": "Create the Hub repo as private (default: the Hub's default)."}
    )


def parse_args(argv: list[str] | None = None) -> tuple[InitArguments, OutputArguments]:
    """Flags, optionally on top of ``--config file.yaml|json`` (or a lone ``file.yaml``/``file.json`` argument)."""
    return parse_args_with_config((InitArguments, OutputArguments), argv, "recipes/from_statistics.py")


def validate(init_args: InitArguments, out_args: OutputArguments) -> Scheme:
    """Every check that needs no work done, so a bad run fails in a second and writes nothing."""
    scheme = get_scheme(init_args.scheme, init_args.value)
    if scheme.needs_source and not init_args.source:
        raise ValueError(f"--source is required for {scheme.name!r}; only 'Pre-attn LN Constant' works without one.")
    if not init_args.source and not init_args.config_name:
        raise ValueError("Without --source, pass --config_name (e.g. google-t5/t5-small) for the target architecture.")
    out = Path(out_args.output_dir)
    if out.exists() and (not out.is_dir() or any(out.iterdir())) and not out_args.overwrite_output_dir:
        raise ValueError(f"Output directory {out} exists and is not empty. Use --overwrite_output_dir to replace it.")
    if out_args.push_to_hub:
        check_push(out_args)
    elif out_args.hub_model_id:
        logger.warning("--hub_model_id is ignored without --push_to_hub.")
    return scheme


def main(argv: list[str] | None = None) -> Path:
    init_args, out_args = parse_args(argv)
    logging.basicConfig(
        format="%(asctime)s - %(levelname)s - %(name)s - %(message)s", datefmt="%m/%d/%Y %H:%M:%S", level=logging.INFO
    )
    scheme = validate(init_args, out_args)
    logger.info("Scheme %r, source %r, seed %d", scheme.name, init_args.source, init_args.seed)

    # Statistics once: they feed the model, the card and the copy saved next to the model.
    statistics = load_statistics(init_args.source, revision=init_args.revision) if init_args.source else None
    model = from_statistics(statistics, scheme=scheme, config=init_args.config_name, seed=init_args.seed)
    tokenizer = _source_tokenizer(init_args.source, init_args.revision)

    out = Path(out_args.output_dir)
    _write_atomically(
        out,
        out_args.overwrite_output_dir,
        lambda tmp: _save(tmp, model, tokenizer, statistics, scheme, init_args, out_args),
    )
    logger.info("Saved %s", out)

    if out_args.push_to_hub:
        _push(out, out_args, scheme, init_args)
    return out


def _source_tokenizer(source: str | None, revision: str | None):
    """The source's tokenizer, if it has one: a statistics-initialised model reads the same ids."""
    if not source or source.endswith((".json", ".safetensors")):
        return None
    path = Path(source)
    tokenizer_files = ("tokenizer.json", "tokenizer_config.json", "spiece.model")
    if path.is_dir() and not any((path / f).is_file() for f in tokenizer_files):
        return None
    from transformers import AutoTokenizer

    try:
        return AutoTokenizer.from_pretrained(source, revision=revision)
    except (OSError, ValueError) as err:  # a Hub repo with statistics only, or offline
        logger.info("No tokenizer saved: the source has none we can load (%s).", type(err).__name__)
        return None


def _write_atomically(out: Path, overwrite: bool, write) -> None:
    """Write into a sibling temp dir, then rename it into place: a crash leaves no half-written model."""
    try:
        with atomic_dir(out, overwrite=overwrite) as tmp:
            write(tmp)
    except FileExistsError:
        raise ValueError(f"Output directory {out} appeared during the run; not replacing it.") from None


def _save(tmp: Path, model, tokenizer, statistics, scheme, init_args, out_args) -> None:
    model.save_pretrained(tmp, safe_serialization=True)
    if tokenizer is not None:
        tokenizer.save_pretrained(tmp)
    if statistics is not None:
        statistics.save(tmp / SOURCE_STATISTICS_FILENAME)
    model_card(model, statistics, scheme, init_args, out_args).save(tmp / "README.md")


def model_card(model, statistics: ParameterStatistics | None, scheme: Scheme, init_args, out_args):
    """The README.md: provenance, how to reproduce, the statistics table, the citation."""
    source = (statistics.source if statistics else None) or init_args.source
    read_from = init_args.source if init_args.source and init_args.source != source else None
    rows = statistics_table(model, statistics, scheme)
    c = model.config
    causal = c.model_type != "t5"
    if causal:
        from hf_synpre.modeling_causal import describe_causal, family_of

        family = family_of(model)
        architecture = describe_causal(model)
        fresh_init = ("transformers' own initialisation (`_init_weights`, as "
                      "`hf_synpre.modeling_causal.build_causal_lm`)")
    else:
        variant = "v1.1 (gated MLP)" if c.is_gated_act else "v1.0"
        architecture = (f"T5 ({variant}; d_model {c.d_model}, {c.num_layers}+{c.num_decoder_layers} layers, "
                        f"d_ff {c.d_ff}, {c.num_heads} heads)")
        fresh_init = "the t5x default (\"Random Init\") initialisation"
    scheme_line = scheme.name + (f" (`{scheme.init_id}`)" if scheme.init_id else f", value {scheme.value:g}")
    flags = [f"--scheme {scheme.name!r}", f"--seed {init_args.seed}", f"--output_dir {out_args.output_dir}"]
    if init_args.source:
        flags.insert(0, f"--source {init_args.source}")
    if scheme.sampling == "constant":
        flags.insert(1, f"--value {scheme.value:g}")
    if init_args.config_name:
        flags.append(f"--config_name {init_args.config_name}")
    name = out_args.hub_model_id or Path(out_args.output_dir).name
    call = [repr(init_args.source), f"scheme={scheme.name!r}"]
    if scheme.sampling == "constant":
        call.append(f"value={scheme.value:g}")
    if init_args.config_name:
        call.append(f"config={init_args.config_name!r}")
    call.append(f"seed={init_args.seed}")
    details = [("source model", source or "none (no statistics used)")]
    if read_from:
        details.append(("statistics read from", read_from))
    details += [
        ("source revision", (statistics.revision if statistics else None) or "-"),
        ("scheme", scheme_line),
        ("what the scheme does", scheme.description),
        ("seed", init_args.seed),
    ]
    kept = (f"Every tensor outside the scheme's groups, the token embedding included, has {fresh_init}."
            + (f" The source statistics are in `{SOURCE_STATISTICS_FILENAME}`." if statistics else ""))
    return cards.model_card(
        name,
        summary=f"A **freshly initialised, untrained** {architecture}, made by `hf_synpre` "
        f"following {cards.paper_link()}, Tables 2 and 3. Start fine-tuning from it the way you would from a "
        "pre-trained checkpoint.",
        details=details,
        sections=[
            ("Initialisation", kept),
            ("Python", cards.code_block(
                f"from hf_synpre.statistics import from_statistics\nmodel = from_statistics({', '.join(call)})",
                "python")),
            ("Statistics", "Pooled over each group of the scheme: the source's statistics and those of this "
             "model.\n\n" + to_markdown(rows)),
        ],
        reproduce="python recipes/from_statistics.py " + " ".join(flags),
        base_model=cards.hub_model_id(source),
        tags=["parameter-statistics-init"],
        **(dict(model_type=family, pipeline_tag="text-generation") if causal else {}),
    )


def _push(out: Path, out_args: OutputArguments, scheme: Scheme, init_args: InitArguments) -> None:
    from hf_synpre.hub import PublishError, publish_model

    # publish_model reads HF_ENDPOINT and HF_TOKEN (or the stored login) itself, retries transient errors
    # and keeps the card written by _save, completing its metadata; the token is never handled here.
    try:
        published = publish_model(
            out,
            out_args.hub_model_id,
            statistics_scheme=scheme.name,
            private=out_args.hub_private_repo,
            commit_message=f"from_statistics: {scheme.name}, source {init_args.source}, seed {init_args.seed}",
        )
    except PublishError as err:
        raise ValueError(f"--push_to_hub failed; the model is saved in {out}. {err}") from None
    logger.info("Pushed to %s (%s)", published.url, published.commit_url)


if __name__ == "__main__":
    run_recipe(main)
