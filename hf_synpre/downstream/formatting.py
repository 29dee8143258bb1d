"""Each paper task's raw rows as T5-style text-to-text pairs, formatted as the paper's seqio tasks do.

Public API:
    format_cnndm, format_code_translation, format_mtop, format_retrosynthesis, format_squad, format_webqsp
                              -- raw row -> {"inputs": str, "targets": str} (SQuAD adds "answers")
    keep_webqsp_train(row)    -- UnifiedSKG's filter on WebQSP training rows
    strip_atom_maps(smiles)   -- [CH3:1] -> [CH3]

There is no task prefix, as in the paper's seqio tasks.
"""

from __future__ import annotations

import re
from typing import Any

import regex  # T5's regexes use \p{..} classes, which `re` lacks (installed with nltk, a rouge_score dependency)


def format_cnndm(example: dict[str, Any]) -> dict[str, str]:
    # Wu et al. trained on Krishna et al.'s *lowercased* files; the highlights (one per line in TFDS
    # 3.0.0) become one line, so that T5's rouge (" . " -> " .\n") recovers the sentences.
    highlights = " ".join(line.strip() for line in example["highlights"].split("\n") if line.strip())
    return {"inputs": example["article"].lower(), "targets": highlights.lower()}


def format_code_translation(example: dict[str, Any]) -> dict[str, str]:
    # The Hub rows keep each line's trailing newline; it is not part of the code.
    return {"inputs": example["java"].strip(), "targets": example["cs"].strip()}


def format_mtop(example: dict[str, Any]) -> dict[str, str]:
    return {"inputs": _mtop_field(example, "utterance"), "targets": _mtop_field(example, "dcp_form")}


def format_retrosynthesis(example: dict[str, Any]) -> dict[str, str]:
    return {"inputs": strip_atom_maps(example["product"]), "targets": strip_atom_maps(example["reactants"])}


def format_squad(example: dict[str, Any]) -> dict[str, Any]:
    # T5's squad preprocessor, as in the stock seqio task squad_v010_allanswers.
    answers = [_pad_punctuation(a) for a in example["answers"]["text"]]
    if not answers:
        raise ValueError(f"SQuAD example {example.get('id')!r} has no answer; v1.1 has at least one per question.")
    question = _pad_punctuation(example["question"])
    context = _pad_punctuation(example["context"])
    # T5's _string_join: join on spaces, then collapse runs of whitespace
    inputs = _WHITESPACE.sub(" ", f"question: {question} context: {context}")
    return {"inputs": inputs, "targets": answers[0], "answers": answers}


def format_webqsp(example: dict[str, Any]) -> dict[str, str]:
    # UnifiedSKG's linearisation: "<question> ; structured knowledge: <entities> | <h r t> | <h r t> ...".
    question = example["question"].strip()
    if "s_expression" in example:  # UnifiedSKG's WebQSP rows: target = the s-expression (the paper's)
        entities = " ".join(": ".join(e) for e in example["entities"]).strip()
        triples = " | ".join(" ".join(t) for t in example["kg_tuples"]).strip()
        target = example["s_expression"]
    elif "graph" in example:  # RoG-webqsp rows: no logical form; target = the answer set
        entities = " ".join(example["q_entity"]).strip()
        triples = " | ".join(" ".join(t) for t in example["graph"]).strip()
        target = " | ".join(example["answer"])
    else:
        raise ValueError(
            "WebQSP rows must have UnifiedSKG's fields (question, entities, kg_tuples, s_expression) or "
            f"RoG-webqsp's (question, q_entity, graph, answer); got {sorted(example)}."
        )
    return {"inputs": f"{question} ; structured knowledge: {entities} | {triples}", "targets": target}


def strip_atom_maps(smiles: str) -> str:
    """Drop atom-map numbers from a SMILES string: ``[CH3:1]`` -> ``[CH3]`` (no-op on unmapped SMILES)."""
    return _ATOM_MAP.sub(r"\1]", smiles)


_ATOM_MAP = re.compile(r"(\[[^\]:]+):\d+\]")
# TensorFlow's RE2 `\s` is ASCII whitespace only; T5's regexes run on RE2, so these do too.
_RE2_SPACE = r"\t\n\f\r "  # escapes, read by the regex engines
_WHITESPACE = re.compile(f"[{_RE2_SPACE}]+")
_PUNCTUATION_CHAR = regex.compile(rf"([^_{_RE2_SPACE}\p{{N}}\p{{L}}\p{{M}}])")


def _pad_punctuation(text: str) -> str:
    """T5's ``_pad_punctuation``: spaces around every char that is not _, whitespace, number, letter or mark."""
    return _WHITESPACE.sub(" ", _PUNCTUATION_CHAR.sub(r" \1 ", text))


def _mtop_field(example: dict[str, Any], name: str) -> str:
    # Some WillHeld/mtop splits were uploaded with the TSV header's leading spaces (" utterance"): the
    # parquet schema has both spellings and each row fills one of them.
    for key in (name, " " + name):
        value = example.get(key)
        if value is not None:
            return value
    raise KeyError(f"MTOP row has no {name!r} field (nor {' ' + name!r}); fields: {sorted(example)}.")


def keep_webqsp_train(example: dict[str, Any]) -> bool:
    # UnifiedSKG drops training questions without a logical form.
    return example.get("s_expression") != "null"
