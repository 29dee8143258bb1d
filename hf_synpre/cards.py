"""Model and dataset cards, built with ``huggingface_hub``'s ``ModelCard``/``ModelCardData`` and
``DatasetCard``/``DatasetCardData``: the one place where a README.md of this package is written.

Public API:
    model_card(name, *, summary, details=(), sections=(), reproduce=None, base_model=None, datasets=(),
               tags=(), results=(), model_type="t5", pipeline_tag="text2text-generation") -> ModelCard
        -- metadata (library, pipeline, license, base_model, datasets, tags, model-index from ``results``)
           and a body: title, summary, a details table, free sections, the command that made it, the citation
    complete_model_card(text, *, name, base_model=None, datasets=(), tags=(), results=(), metrics=None) -> ModelCard
        -- an existing card (e.g. a recipe's) with its metadata completed and a metrics section if it has none
    eval_result(metric, value, *, dataset, split="validation", dataset_name=None, task_type=...) -> EvalResult
        -- one model-index entry (``dataset`` is a Hub id or a name for data that is not on the Hub)
    dataset_card(*, pretty_name, body, tags=(), size=None, configs=None, dataset_info=None) -> DatasetCard
    hub_dataset_id(spec) / hub_model_id(spec) -> the Hub id of a reference, or None for local paths
    pretraining_card(selection, model, data_args, training_args, mixture, command, name, start=None, causal=None)
    task_parameters(mixture, data_args) -> str  -- the card's "task parameters" row (k-Dyck, shuffle-Dyck)
    finetuning_card(results, model, task, eval_steps, command, name)  -- the two training recipes' cards
    citation_block(), code_block(text, language), paper_link() -- pieces of bodies written as templates
    LICENSE, BASE_TAGS

Every card ends with the paper's BibTeX, and every one is checked before it is returned: its metadata
parses back with ``huggingface_hub`` and its code fences are balanced (a stray fence breaks the page).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path

from .io import looks_like_path, repo_id_problem
from .citation import CITATION, PAPER, PAPER_URL

__all__ = [
    "BASE_TAGS",
    "LICENSE",
    "citation_block",
    "code_block",
    "complete_model_card",
    "dataset_card",
    "eval_result",
    "hub_dataset_id",
    "hub_model_id",
    "model_card",
    "finetuning_card",
    "paper_link",
    "pretraining_card",
    "task_parameters",
]

LICENSE = "apache-2.0"
BASE_TAGS = ("hf-synpre", "synthetic-pretraining")
_FENCE = re.compile(r"^\s*```", re.M)


def eval_result(
    metric: str,
    value: float,
    *,
    dataset: str,
    split: str = "validation",
    dataset_name: str | None = None,
    task_type: str = "text2text-generation",
):
    """One ``model-index`` result: ``metric`` = ``value`` on ``dataset``'s ``split``."""
    from huggingface_hub import EvalResult

    return EvalResult(
        task_type=task_type,
        dataset_type=dataset,
        dataset_name=dataset_name or dataset,
        dataset_split=split,
        metric_type=metric,
        metric_name=metric,
        metric_value=float(value),
    )


def model_card(
    name: str,
    *,
    summary: str,
    details: Sequence[tuple[str, object]] = (),
    sections: Sequence[tuple[str, str]] = (),
    reproduce: str | None = None,
    base_model: str | None = None,
    datasets: Sequence[str] = (),
    tags: Sequence[str] = (),
    results: Sequence = (),
    model_type: str = "t5",
    pipeline_tag: str = "text2text-generation",
):
    """A model card: metadata through ``ModelCardData`` and the body of every card this package writes."""
    from huggingface_hub import ModelCard, ModelCardData

    data = ModelCardData(
        library_name="transformers",
        pipeline_tag=pipeline_tag,
        license=LICENSE,
        base_model=base_model or None,
        datasets=list(dict.fromkeys(datasets)) or None,
        tags=list(dict.fromkeys([model_type, *BASE_TAGS, *tags])),
        eval_results=list(results) or None,
        model_name=name if results else None,
    )
    parts = [f"# {name}", "", summary.strip(), ""]
    if details:
        parts += [_table(details), ""]
    for title, text in sections:
        parts += [f"## {title}", "", text.strip(), ""]
    if reproduce:
        parts += ["## Reproduce", "", code_block(reproduce, "bash"), ""]
    parts += ["## Citation", "", code_block(CITATION, "bibtex"), ""]
    return _checked(ModelCard.from_template(data, template_str="---\n{{ card_data }}\n---\n\n{{ body }}",
                                            body="\n".join(parts)))


def complete_model_card(
    text: str,
    *,
    name: str,
    base_model: str | None = None,
    datasets: Sequence[str] = (),
    tags: Sequence[str] = (),
    results: Sequence = (),
    metrics: Mapping[str, float] | None = None,
):
    """``text`` (an existing card) with its metadata completed: what it already says wins."""
    from huggingface_hub import ModelCard

    card = ModelCard(text, ignore_metadata_errors=False)
    data = card.data
    data.library_name = data.library_name or "transformers"
    data.license = data.license or LICENSE
    data.base_model = data.base_model or base_model or None
    data.datasets = list(dict.fromkeys([*_as_list(data.datasets), *datasets])) or None
    data.tags = list(dict.fromkeys([*_as_list(data.tags), *BASE_TAGS, *tags]))
    if results and not data.eval_results:
        data.eval_results, data.model_name = list(results), data.model_name or name
    if metrics and "## Metrics" not in card.text:
        table = _table([(k, f"{float(v):.6g}") for k, v in metrics.items()], header=("metric", "value"))
        card.text = card.text.rstrip("\n") + "\n\n## Metrics\n\n" + table + "\n"
    return _checked(ModelCard(str(card)))


def dataset_card(
    *,
    pretty_name: str,
    body: str,
    tags: Sequence[str] = (),
    size: int | None = None,
    configs: list | None = None,
    dataset_info=None,
    task_categories: Sequence[str] = ("text2text-generation",),
):
    """A dataset card: ``DatasetCardData`` (license, tags, size category, ``configs``, ``dataset_info`` from a
    ``datasets.DatasetInfo``) and ``body`` (which must already end with the citation: see ``citation_block``)."""
    from huggingface_hub import DatasetCard, DatasetCardData

    data = DatasetCardData(
        license=LICENSE,
        pretty_name=pretty_name,
        tags=list(dict.fromkeys(["synthetic", *BASE_TAGS, *tags])),
        task_categories=list(task_categories),
        size_categories=[_size_category(size)] if size is not None else None,
        configs=configs,
    )
    if dataset_info is not None:
        import datasets

        datasets.info.DatasetInfosDict({"default": dataset_info}).to_dataset_card_data(data)
    return _checked(DatasetCard.from_template(data, template_str="---\n{{ card_data }}\n---\n{{ body }}", body=body),
                    kind="dataset")


def citation_block() -> str:
    """The paper's BibTeX as a fenced block, for bodies written as templates."""
    return code_block(CITATION, "bibtex")


def code_block(text: str, language: str = "") -> str:
    return f"```{language}\n{text.strip()}\n```"


def paper_link() -> str:
    return f"[{PAPER}]({PAPER_URL})"


def hub_id(spec: str | None) -> str | None:
    """``spec`` if it names a Hub repo (``owner/name``), else None (a local path, or nothing)."""
    if not spec or looks_like_path(spec) or os.path.exists(os.path.expanduser(spec)) or "/" not in spec:
        return None
    return None if repo_id_problem(spec) else spec


# A card's ``datasets`` and ``base_model`` take Hub ids only; both follow the one rule above.
hub_dataset_id = hub_model_id = hub_id


# ----------------------------------------------------------------------------------------- the recipes' cards
def pretraining_card(selection: Mapping, model, data_args, training_args, mixture: Mapping[str, float], command: str,
                     name: str, start: str | None = None, causal: Mapping | None = None,
                     natural: Mapping | None = None, transfer: Mapping | None = None):
    """``recipes/pretrain.py``'s selected checkpoint: the task, the selection, the model; model-index = the
    selection metric. ``data_args``/``training_args`` are the recipe's arguments; ``start`` its
    ``--model_name_or_path``.

    ``causal`` (a decoder-only model) = ``{"separator": "<sep>", "separator_id": 4100, "added": ("<sep>",),
    "packing": "flatten"}``: the card then names the family, says ``pipeline_tag: text-generation`` and
    spells out the prompt format, which a user must reproduce to prompt the model (``added``: the tokens
    the recipe added to the tokenizer, saved with the model).

    ``natural`` (``natural`` in the mixture) = ``{"source", "objective", "tokens_per_example", "hub_dataset",
    "decay_steps"}``: where the natural text came from and how it was cut and mixed. ``transfer``:
    ``hf_synpre.transfer.apply_transfer``'s report (which part of ``start`` the model started from)."""
    from .data.text import NATURAL

    m = selection["metrics"]
    tasks = ", ".join(f"{t} ({w:g})" for t, w in mixture.items()) if len(mixture) > 1 else next(iter(mixture))
    what = "the synthetic task " if NATURAL not in mixture else ""
    datasets = [f"synpre/{t}" for t in mixture if t != NATURAL]  # where publish_dataset puts each task
    natural_rows = []
    if natural is not None:
        datasets = [d for d in [natural.get("hub_dataset")] if d] + datasets
        schedule = ("" if not natural.get("decay_steps") else
                    f"; the synthetic share decays linearly to 0 at step {natural['decay_steps']}")
        natural_rows = [("natural text", f"{natural['source']}; {natural['objective'].replace('_', ' ')}, "
                                         f"{natural['tokens_per_example']} tokens per example{schedule}")]
    if transfer is not None:
        from .transfer import transfer_card_text

        scheme = f":{transfer['scheme']}" if transfer.get("scheme") else ""
        natural_rows.append(("start", f"transfer `{transfer['policy']}{scheme}` from {transfer['source']}"))
        summary_transfer = "\n" + transfer_card_text(transfer)
    else:
        summary_transfer = ""
    if data_args.data not in ("stream", "builder"):
        what, tasks = "", f"the prepared data {Path(data_args.data).name}"  # the data decides; --task names nothing
        datasets = [d for d in [hub_dataset_id(data_args.data)] if d]
    if selection["rule"] == "first_above":
        rule = (f"first evaluation with validation token accuracy >= {selection['threshold']}"
                + ("" if selection["threshold_reached"] else " (**not reached**: the best evaluation is kept)"))
    else:
        rule = "best validation token accuracy"
    lengths = "each task's own" if data_args.min_length is None else f"{data_args.min_length}..{data_args.max_length}"
    params = task_parameters(mixture, data_args) if what else ""  # k-Dyck's k, depth, ... (not on the name at defaults)
    seed = training_args.data_seed if training_args.data_seed is not None else training_args.seed
    accuracy = m.get("eval_token_accuracy", float("nan"))
    task_type = "text2text-generation" if causal is None else "text-generation"
    results = [eval_result("token_accuracy", accuracy, dataset=d, dataset_name=f"{d} (held-out validation)",
                           task_type=task_type) for d in datasets[:1]]
    if natural is not None:  # validated on natural text only
        d = natural.get("hub_dataset") or NATURAL
        results = [eval_result("token_accuracy", accuracy, dataset=d, dataset_name=f"{natural['source']} "
                               "(held-out chunks)", task_type=task_type)]
    if causal is None:
        summary = (f"A T5 pre-trained on {what}**{tasks}** with `hf_synpre`, following {paper_link()}.\n"
                   "Fine-tune it as you would any T5 checkpoint." + summary_transfer)
        scored = "against the targets, EOS included"
        causal_rows, extra = [], {}
    else:
        family, model_class, how, causal_rows = _causal_format(model, causal)
        summary = (f"A decoder-only {model_class} (family `{family}`) pre-trained on "
                   f"{what}**{tasks}** with `hf_synpre`, following {paper_link()} (which pre-trained T5).\n{how}"
                   + summary_transfer)
        scored = "of the answer only (targets and EOS; the logits at t predict token t + 1)"
        extra = dict(model_type=family, pipeline_tag="text-generation")
    return model_card(
        name,
        summary=summary,
        details=[
            ("task", tasks),
            *([("task parameters", params)] if params else []),
            ("steps", selection["step"]),
            ("validation token accuracy", f"{accuracy:.4f}"),
            ("validation exact sequence match", f"{m.get('eval_sequence_accuracy', float('nan')):.4f}"),
            ("checkpoint selection", rule),
            ("data", f"{data_args.data}; body lengths {lengths}; content vocabulary "
                     f"{data_args.content_vocab_size or 'all'}; seed {seed}"),
            *natural_rows,
            ("model", _architecture(model)),
            *causal_rows,
            ("batch", f"{training_args.per_device_train_batch_size} per device x {training_args.world_size} processes "
                      f"x {training_args.gradient_accumulation_steps} accumulation"),
        ],
        sections=[("Evaluation", f"Accuracies are teacher-forced (argmax of the logits {scored}, no decoding), on "
                   + (f"{data_args.num_validation} held-out examples the training stream never contains" if natural is None
                      else f"the first {data_args.num_validation} chunks of the natural text, held out (training "
                           "reads the text after them)")
                   + ("." if causal is None else ", one example per row (no packing)."))],
        reproduce=command,
        base_model=hub_model_id(start),
        datasets=datasets,
        tags=list(mixture),
        results=results,
        **extra,
    )


def task_parameters(mixture: Mapping[str, float], data_args) -> str:
    """The generation parameters of the tasks that take them (``k_dyck``, ``shuffle_dyck``: k, max depth,
    P(open)) and their length range, e.g. ``shuffle_dyck: k=64, max_depth=8, p_open=0.51, lengths 64..510``;
    "" when no task of the mixture takes parameters."""
    from .tasks import get_task

    from .data.text import NATURAL

    rows = []
    for name in mixture:
        if name == NATURAL:
            continue
        task = get_task(name)
        params = getattr(task, "parameters", None)
        if params:
            lo, hi = (task.default_length_range if data_args.min_length is None
                      else (data_args.min_length, data_args.max_length))
            rows.append(f"{task.name}: " + ", ".join(f"{k}={v}" for k, v in params.items()) + f", lengths {lo}..{hi}")
    objective = getattr(data_args, "corpus_objective", "span_corruption")
    corpus = [get_task(n).name for n in mixture if n != NATURAL and getattr(get_task(n), "corpus", False)]
    if corpus:
        rows.append(f"{', '.join(corpus)} trained as {objective.replace('_', ' ')}"
                    + (" (the sequence is the target, no input)" if objective == "language_modeling" else ""))
    return "; ".join(rows)


def _causal_format(model, causal: Mapping):
    """What a decoder-only model's card says of its format: ``(family, model class, how to prompt it, detail
    rows)``. ``causal``: ``{"separator", "separator_id", "added", "packing"}`` (``pretraining_card``)."""
    from .modeling_causal import CAUSAL_FAMILIES, family_of

    family = family_of(model)
    sep = causal.get("separator")
    prompt = "inputs + targets + EOS" if sep is None else f"inputs + `{sep}` + targets + EOS"
    added = ", ".join(f"`{t}`" for t in causal.get("added") or ()) or "none"
    how = (f"Each example is one sequence, {prompt}; prompt it with the input ids"
           + ("" if sep is None else f" followed by `{sep}`") + " and let it generate the answer up to EOS.")
    rows = [
        ("family", family),
        ("format", f"{prompt}; loss and accuracy on targets + EOS only"),
        ("separator", "none" if sep is None else f"`{sep}` (id {causal.get('separator_id')})"),
        ("tokens added to the tokenizer", added),
        ("training packing", causal.get("packing", "none")),
    ]
    return family, CAUSAL_FAMILIES[family].model_class, how, rows


def finetuning_card(results: Mapping, model, task, eval_steps: int, command: str, name: str):
    """``recipes/finetune.py``'s selected model: where it started, the selection, the test metrics;
    model-index = the selection metric (validation) and the test metrics. ``results`` is the recipe's
    ``finetune_results.json`` so far (no ``test`` yet while training).

    A decoder-only model (``results["model"]["family"]``, with the prompt format in ``results["format"]``:
    ``separator``, ``separator_id``, ``added_tokens``, ``packing``) gets the family's card, as
    ``pretraining_card`` writes it: ``pipeline_tag: text-generation``, the family as a tag, the format."""
    info = results["model"]
    fmt = results.get("format") if info.get("family") else None
    task_type = "text2text-generation" if fmt is None else "text-generation"
    if info["kind"] == "from_scratch":
        start = f"Random Init (`{info['init']}` initialisation, no pre-training)"
    elif info["kind"] == "from_statistics":
        start = (f"drawn from the parameter statistics of `{info['source']}` (scheme \"{info['scheme']}\")"
                 if info.get("source") else f"scheme \"{info['scheme']}\" (no source statistics)")
    else:
        start = f"`{info['source']}`, " + (
            "all weights loaded" if info["transfer_embeddings"] else "all weights but the token embeddings loaded")
    sel = results["selection"]
    dataset = getattr(task, "hub_id", None) or task.name
    evals = [eval_result("token_accuracy", sel["validation_token_accuracy"], dataset=dataset, dataset_name=task.name,
                         task_type=task_type)]
    details = [
        ("start", start),
        ("selected step", f"{sel['step']} of {results['steps']} (best validation token accuracy)"),
        ("validation token accuracy", f"{sel['validation_token_accuracy']:.4f}"),
    ]
    test = results.get("test")
    if test:
        split = test["split"]
        details.append((f"{split} teacher-forced token accuracy", f"{test['teacher_forced']['token_accuracy']:.4f}"))
        evals.append(eval_result("teacher_forced_token_accuracy", test["teacher_forced"]["token_accuracy"],
                                 dataset=dataset, dataset_name=task.name, split=split, task_type=task_type))
        if "decoding" in test:
            details += [(f"{split} {k}", f"{v:.2f}") for k, v in test["metrics"].items()]
            evals += [eval_result(k, v, dataset=dataset, dataset_name=task.name, split=split, task_type=task_type)
                      for k, v in test["metrics"].items()]
            dec = test["decoding"]
            how = ("greedy" if dec["num_beams"] == 1
                   else f"beam search, {dec['num_beams']} beams, t5x brevity penalty alpha {dec['beam_alpha']}")
            details.append(("decoding", f"{how}, up to {dec['max_decode_length']} tokens; {test['examples']} examples "
                                        f"at {dec['examples_per_second']:.1f} examples/s"))
        else:
            details.append((f"{split} decoding", "not run (`--decode false`)"))
    else:
        details.append(("test", "(not decoded yet: training in progress)"))
    hp = results["hyperparameters"]
    loss = f"z-loss {hp['z_loss']}" if fmt is None else "loss summed over targets + EOS, no z-loss"
    details += [
        ("optimiser", f"{hp['optimizer']}, learning rate {hp['learning_rate']}, batch {hp['batch_size']}, "
                      f"dropout {hp['dropout_rate']}, {loss}"),
        ("lengths", f"inputs {hp['max_source_length']}, targets {hp['max_target_length']} tokens (EOS included; "
                    "longer ones truncated)"),
        ("model", _architecture(model)),
        ("data", f"{results['data']['train_examples']} training / {results['data']['validation_examples']} "
                 "validation examples"),
    ]
    round_trip = ("Metrics compare predictions with the targets as the tokenizer round-trips them "
                  "(`decode(encode(target))`), as T5 did. " if task.metric_on_decoded_targets else "")
    protocol = (f"following the protocol of {paper_link()}: constant-LR Adafactor, teacher-forced validation token "
                f"accuracy every {eval_steps} steps, and the task metric decoded with the model of the best "
                "validation accuracy.")
    if fmt is None:
        summary, scored, extra = f"A T5 fine-tuned on **{task.name}** ({task.description}) with `hf_synpre`'s " \
            f"`recipes/finetune.py`, {protocol}", "against the target tokens, EOS included", {}
    else:
        family, model_class, how, rows = _causal_format(model, {
            "separator": fmt.get("separator"), "separator_id": fmt.get("separator_id"),
            "added": fmt.get("added_tokens"), "packing": fmt.get("packing")})
        summary = (f"A decoder-only {model_class} (family `{family}`) fine-tuned on **{task.name}** ({task.description}) "
                   f"with `hf_synpre`'s `recipes/finetune.py`, {protocol}\n{how} (The task metric was decoded "
                   "greedily, the prompts left-padded.)")
        scored = "at t against the target token at t + 1 (targets and EOS only)"
        details[1:1] = rows
        extra = dict(model_type=family, pipeline_tag="text-generation")
    return model_card(
        name,
        summary=summary,
        details=details,
        sections=[("Evaluation", f"Validation accuracy is teacher-forced: argmax of the logits {scored}, "
                   f"no decoding. {round_trip}Scores are 0-100.")],
        reproduce=command,
        base_model=hub_model_id(info["source"]) if info["kind"] == "checkpoint" else None,
        datasets=[task.hub_id] if getattr(task, "hub_id", None) else [],
        tags=["finetuned", task.name],
        results=evals,
        **extra,
    )


def _architecture(model) -> str:
    c = model.config
    if getattr(c, "model_type", "t5") != "t5":
        from .modeling_causal import describe_causal

        return describe_causal(model)
    params = sum(p.numel() for p in model.parameters())
    return (f"T5, d_model {c.d_model}, {c.num_layers}+{c.num_decoder_layers} layers, d_ff {c.d_ff}, "
            f"{c.num_heads} heads, vocab {c.vocab_size}, {params / 1e6:.2f}M parameters")


# ----------------------------------------------------------------------------------------- helpers
def _checked(card, kind: str = "model"):
    """Parse the card back as the Hub would and refuse unbalanced code fences."""
    from huggingface_hub import DatasetCard, ModelCard

    text = str(card)
    (ModelCard if kind == "model" else DatasetCard)(text, ignore_metadata_errors=False)
    if len(_FENCE.findall(card.text)) % 2:
        raise AssertionError(f"{kind} card has an unbalanced code fence:\n{card.text}")
    return card


def _table(rows: Sequence[tuple[str, object]], header: tuple[str, str] = ("", "")) -> str:
    lines = [f"| {header[0]} | {header[1]} |", "|---|---|"]
    lines += [f"| {k} | {v} |" for k, v in rows]
    return "\n".join(lines)


def _as_list(value) -> list:
    if value is None:
        return []
    return [value] if isinstance(value, str) else list(value)


def _size_category(n: int) -> str:
    if n < 1_000:
        return "n<1K"
    bounds = ["1K", "10K", "100K", "1M", "10M", "100M", "1B"]
    k = min(len(str(n)) - 4, len(bounds) - 2)
    return f"{bounds[k]}<n<{bounds[k + 1]}"
