"""The paper's six downstream tasks, registered in ``DOWNSTREAM_TASKS`` when the package is imported.

Public API:
    DOWNSTREAM_TASK_NAMES -- the six, in the paper's order: cnndm_10k, code_translation, mtop,
                             retrosynthesis, squad, webqsp

A task is one row of ``_SETTINGS`` (the paper's numbers) and one entry of ``_DEFINITIONS`` (its data,
formatting and the preprocessing choices the paper leaves open).
"""

from __future__ import annotations

from .formatting import (
    format_cnndm,
    format_code_translation,
    format_mtop,
    format_retrosynthesis,
    format_squad,
    format_webqsp,
    keep_webqsp_train,
)
from .loaders import DOWNLOAD_HINTS, load_raw_cnndm_10k, load_raw_code_translation
from .registry import DownstreamTask, FinetuneConfig, register_task

# The paper's settings (seed_code.md §3, from the released finetune.sh scripts), one row a task: the token
# lengths inputs and targets are truncated to, the metric and the key the paper reports, then the
# FinetuneConfig fields named in _FINETUNE_COLUMNS.
_FINETUNE_COLUMNS = (
    "learning_rate", "train_steps", "batch_size", "eval_period", "max_decode_length", "infer_eval_examples"
)
_SETTINGS = {
    #                   input  target  metric         reported  LR     steps    batch  eval    decode  decoded
    "cnndm_10k":        (512,  256,    "rouge",       "rouge1", 1e-3,  100_000, 128,   10_000, 148,    20_000),
    "code_translation": (1024, 1024,   "exact_match", "em",     3e-3,  150_000, 32,    10_000, 1024,   5_000),
    "mtop":             (1024, 128,    "exact_match", "em",     1e-3,  100_000, 128,   10_000, 128,    5_000),
    "retrosynthesis":   (256,  256,    "exact_match", "em",     3e-3,  400_000, 128,   10_000, 256,    5_000),
    "squad":            (512,  128,    "squad",       "em",     1e-3,  250_000, 128,   10_000, 128,    20_000),
    "webqsp":           (2048, 256,    "exact_match", "em",     1e-3,  50_000,  32,    5_000,  256,    20_000),
}
# SQuAD alone was packed (Table 1), and has no public test split, so its validation split is decoded.
_FINETUNE_EXTRA = {"squad": {"pack": True, "infer_eval_split": "validation"}}

# Where each task's data are (Hub ids: paper_and_related_work.md §4) and how a row becomes text; the keys
# are DownstreamTask's fields.
_DEFINITIONS = {
    "cnndm_10k": dict(
        hub_id="abisee/cnn_dailymail",
        hub_config="3.0.0",
        format_example=format_cnndm,
        raw_loader=load_raw_cnndm_10k,
        description="CNN/DailyMail summarisation on Krishna et al.'s 10,000-article training subset: article -> highlights.",
        preprocessing_notes="""
            Rows: Krishna et al.'s 10,000 train / 1,000 validation positions into TFDS cnn_dailymail, rebuilt from
            abisee/cnn_dailymail 3.0.0 by matching story ids in TFDS's md5 order (rebuild_cnndm_10k); test = the
            full test split (11,490), in Hub order (order does not change the metric). Text: article and highlights
            lowercased, as Wu et al.'s lowercase_{train,val,test}.txt files; the highlight lines joined with single
            spaces (the paper's one-line-per-example files cannot hold newlines; the exact join is unknown). No task
            prefix. Metric: T5 rouge, report rouge1.
        """,
    ),
    "code_translation": dict(
        hub_id="google/code_x_glue_cc_code_to_code_trans",
        format_example=format_code_translation,
        raw_loader=load_raw_code_translation,
        download_hint=DOWNLOAD_HINTS["code_translation"],
        description="CodeXGLUE code-to-code translation, Java -> C#.",
        preprocessing_notes="""
            Rows: the offline CodeXGLUE files in <data_dir>/code_translation when present (10,295 / 499 / 1,000
            pairs), else the Hub copy (10,300 / 500 / 1,000). Text: java -> cs, each stripped of surrounding
            whitespace (the Hub rows keep the line's newline), otherwise verbatim; C# braces and other characters
            missing from the T5 vocabulary become <unk> at tokenisation, and EM compares round-tripped targets with
            decoded predictions, as T5 did.
        """,
    ),
    "mtop": dict(
        hub_id="WillHeld/mtop",
        hub_splits={"train": "train_en", "validation": "eval_en", "test": "test_en"},
        format_example=format_mtop,
        description="MTOP task-oriented semantic parsing (English): utterance -> decoupled logical form.",
        preprocessing_notes="""
            The paper's MTOP files came from UnifiedSKG scripts that are not public in its repo; closest public
            version: WillHeld/mtop, English splits train_en (15,667) / eval_en (2,235) / test_en (4,386). Text:
            utterance -> dcp_form (MTOP's decoupled form, e.g. '[IN:GET_MESSAGE [SL:CONTACT Angelika ] ]'),
            verbatim. Not reproduced: UnifiedSKG's optional '; structured knowledge: <API list>' suffix (the API
            list is not in the Hub copy), which may explain the paper's 1,024-token input length. EM is
            case-sensitive exact match of the form.
        """,
    ),
    "retrosynthesis": dict(
        hub_id="bisectgroup/USPTO_50K",
        hub_splits={"train": "train", "validation": "val", "test": "test"},
        format_example=format_retrosynthesis,
        description="Single-step retrosynthesis on USPTO-50K: product SMILES -> reactant SMILES.",
        preprocessing_notes="""
            The paper's converted USPTO-50K files are not public; closest public version: bisectgroup/USPTO_50K
            (40,008 / 5,001 / 5,007). Text: product -> reactants as raw SMILES (no spaces between atoms, fed to the
            T5 SentencePiece as text), atom-map numbers removed ([CH3:1] -> [CH3]; a no-op on unmapped SMILES), no
            canonicalisation (it would need RDKit), no reaction-class token. The metric decodes the first 5,000 test
            examples in order (the test split has 5,007).
        """,
    ),
    "squad": dict(
        hub_id="rajpurkar/squad",
        hub_config="plain_text",
        hub_splits={"train": "train", "validation": "validation", "test": "validation"},
        format_example=format_squad,
        metric_on_decoded_targets=False,
        description="SQuAD v1.1 reading comprehension, scored against all reference answers (T5's squad_v010_allanswers).",
        preprocessing_notes="""
            Exactly T5's stock squad preprocessor: punctuation padded with spaces (every char that is not _,
            whitespace, number, letter or mark; RE2's ASCII whitespace), whitespace collapsed; inputs = 'question:
            <q> context: <c>'; target = the first answer; 'answers' = all answers, padded, for the metric (T5's qa
            postprocessor). SQuAD has no public test split: 'test' is the validation split (10,570), on which the
            paper also reports. Packing applies to the paper's Table 1 runs only.
        """,
    ),
    "webqsp": dict(
        hub_id="rmanluo/RoG-webqsp",
        format_example=format_webqsp,
        keep_train_example=keep_webqsp_train,
        description="WebQuestionsSP knowledge-base question answering over a linearised Freebase subgraph.",
        preprocessing_notes="""
            The paper used UnifiedSKG's WebQSP (question + KB subgraph -> s-expression), which is not on the Hub.
            The formatter reproduces UnifiedSKG's linearisation '<question> ; structured knowledge: <entities> |
            <h r t> | ...' for both schemas: UnifiedSKG rows (fields entities, kg_tuples, s_expression; target =
            s-expression; training rows whose s-expression is 'null' dropped, as UnifiedSKG does) when source=
            points at such a copy, and the default Hub copy rmanluo/RoG-webqsp (about 2.8k / 246 / 1.6k questions;
            fields q_entity, graph, answer), which has no logical forms: there the target is the answer list joined
            with ' | ' in the data's order, so its EM is answer-set EM, not the paper's s-expression EM. Inputs
            beyond 2,048 tokens are truncated at tokenisation.
        """,
    ),
}


def _paper_task(name: str) -> DownstreamTask:
    max_input, max_target, metric, reported, *finetune = _SETTINGS[name]
    definition = dict(_DEFINITIONS[name])
    # wrapped to fit the source; a task holds its notes as one paragraph
    definition["preprocessing_notes"] = " ".join(definition["preprocessing_notes"].split())
    return DownstreamTask(
        name=name,
        max_input_length=max_input,
        max_target_length=max_target,
        metrics=(metric,),
        report_metric=reported,
        finetune=FinetuneConfig(**dict(zip(_FINETUNE_COLUMNS, finetune)), **_FINETUNE_EXTRA.get(name, {})),
        **definition,
    )


for _name in _SETTINGS:
    register_task(_paper_task(_name))

DOWNSTREAM_TASK_NAMES = tuple(_SETTINGS)
