"""The downstream registry: the paper's six tasks, their loaders on real schemas, formatting, settings."""

import dataclasses
import hashlib
import json
from pathlib import Path

import datasets
import pytest

from conftest import CODE_TRANSLATION_HOWTO, real_code_translation_root, write_code_translation_folder
from hf_synpre import downstream
from hf_synpre.downstream import (
    DOWNSTREAM_TASK_NAMES,
    DOWNSTREAM_TASKS,
    DownstreamDataNotFoundError,
    DownstreamTask,
    FinetuneConfig,
    get_downstream_task,
    load_downstream,
    read_code_translation,
    rebuild_cnndm_10k,
    register_task,
    tfds_order,
)

FIXTURES = Path(__file__).parent / "fixtures" / "downstream"
SOURCES = {
    "cnndm_10k": FIXTURES / "cnn_dailymail",
    "code_translation": FIXTURES / "code_x_glue_cc_code_to_code_trans",
    "mtop": FIXTURES / "mtop",
    "retrosynthesis": FIXTURES / "uspto_50k",
    "squad": FIXTURES / "squad",
    "webqsp": FIXTURES / "rog_webqsp",
}


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory):
    return str(tmp_path_factory.mktemp("hf_datasets_cache"))


def load_fixture(name, cache_dir, **kwargs):
    if name == "cnndm_10k":
        kwargs = {"indices_dir": FIXTURES / "cnndm_10k", "expected_sizes": None, **kwargs}
    return load_downstream(name, source=str(SOURCES[name]), cache_dir=cache_dir, **kwargs)


# --------------------------------------------------------------------------- registry and settings


def test_registry_holds_the_papers_six_tasks_in_order():
    assert DOWNSTREAM_TASK_NAMES == ("cnndm_10k", "code_translation", "mtop", "retrosynthesis", "squad", "webqsp")


# seed_code.md §3.2: LR, steps, batch, input/target length, max decode, eval period, reported metric
PAPER_SETTINGS = {
    "cnndm_10k": (1e-3, 100_000, 128, 512, 256, 148, 10_000, "rouge1"),
    "code_translation": (3e-3, 150_000, 32, 1024, 1024, 1024, 10_000, "em"),
    "mtop": (1e-3, 100_000, 128, 1024, 128, 128, 10_000, "em"),
    "retrosynthesis": (3e-3, 400_000, 128, 256, 256, 256, 10_000, "em"),
    "squad": (1e-3, 250_000, 128, 512, 128, 128, 10_000, "em"),
    "webqsp": (1e-3, 50_000, 32, 2048, 256, 256, 5_000, "em"),
}


@pytest.mark.parametrize("name", DOWNSTREAM_TASK_NAMES)
def test_each_task_carries_the_papers_finetuning_settings(name):
    task = get_downstream_task(name)
    lr, steps, batch, in_len, tgt_len, decode, period, metric = PAPER_SETTINGS[name]
    ft = task.finetune
    assert (ft.learning_rate, ft.train_steps, ft.batch_size, ft.max_decode_length, ft.eval_period) == (
        lr,
        steps,
        batch,
        decode,
        period,
    )
    assert (task.max_input_length, task.max_target_length, task.report_metric) == (in_len, tgt_len, metric)
    assert (ft.num_beams, ft.beam_alpha, ft.lr_schedule, ft.optimizer, ft.dropout_rate) == (
        4,
        0.6,
        "constant",
        "adafactor",
        0.1,
    )
    assert task.preprocessing_notes and task.description


def test_squad_is_decoded_on_validation_and_scored_against_raw_answers():
    squad = get_downstream_task("squad")
    assert squad.finetune.infer_eval_split == "validation" and squad.hub_splits["test"] == "validation"
    assert squad.metrics == ("squad",) and squad.metric_on_decoded_targets is False
    assert get_downstream_task("retrosynthesis").finetune.infer_eval_examples == 5_000


def test_unknown_task_lists_the_valid_names_and_suggests_the_closest():
    with pytest.raises(ValueError) as err:
        get_downstream_task("squadd")
    message = str(err.value)
    assert "Did you mean 'squad'?" in message
    assert all(name in message for name in DOWNSTREAM_TASK_NAMES)
    with pytest.raises(ValueError, match="Did you mean 'code_translation'"):
        load_downstream("code_transltion")


def test_seqio_ids_and_other_spellings_resolve_to_the_registry_names():
    assert get_downstream_task("squad_v010_allanswers").name == "squad"
    assert get_downstream_task("CNNDM").name == "cnndm_10k"
    assert get_downstream_task("code-translation").name == "code_translation"


def test_finetune_config_becomes_seq2seq_training_arguments(tmp_path):
    from transformers import Seq2SeqTrainingArguments

    cfg = get_downstream_task("code_translation").finetune.replace(train_steps=20, num_beams=1)
    args = Seq2SeqTrainingArguments(output_dir=str(tmp_path), report_to=[], **cfg.training_arguments_kwargs())
    assert (args.learning_rate, args.max_steps, args.per_device_train_batch_size) == (3e-3, 20, 32)
    assert (args.lr_scheduler_type.value, args.optim.value, args.eval_steps) == ("constant", "adafactor", 10_000)
    assert (args.generation_max_length, args.generation_num_beams, args.predict_with_generate) == (1024, 1, True)


def test_finetune_config_rejects_nonsense_values():
    with pytest.raises(ValueError, match="batch_size must be a positive integer, got 0"):
        FinetuneConfig(batch_size=0)
    with pytest.raises(ValueError, match="infer_eval_split must be one of"):
        FinetuneConfig(infer_eval_split="dev")


# --------------------------------------------------------------------------- each task on its fixture


@pytest.mark.parametrize("name", DOWNSTREAM_TASK_NAMES)
def test_each_task_loads_and_formats_its_fixture(name, cache_dir):
    ds = load_fixture(name, cache_dir)
    assert list(ds) == ["train", "validation", "test"]
    expected_columns = {"inputs", "targets", "answers"} if name == "squad" else {"inputs", "targets"}
    for split in ds.values():
        assert len(split) > 0 and set(split.column_names) == expected_columns
        assert all(isinstance(x, str) and x for x in list(split["inputs"]) + list(split["targets"]))


def test_squad_formatting_is_t5s_squad_preprocessor(cache_dir):
    ds = load_fixture("squad", cache_dir)
    row = ds["train"][0]
    context = (
        "Super Bowl 50 was played on February 7 , 2016 , at Levi ' s Stadium in Santa Clara , California . "
        "The Denver Broncos beat the Carolina Panthers 24 – 10 to win their third Super Bowl title . "
    )
    assert row["inputs"] == "question: Where was Super Bowl 50 played ? context: " + context
    assert row["targets"] == "Levi ' s Stadium" and row["answers"] == ["Levi ' s Stadium"]
    # letters with accents are letters: not padded
    assert ds["train"][2]["targets"] == "Paul Émile Lecoq de Boisbaudran"
    # all reference answers are kept, the first is the target; "test" is the validation split
    assert ds["test"][0] == ds["validation"][0]
    assert ds["validation"][0]["answers"] == ["The Denver Broncos", "Denver Broncos", "Denver Broncos"]
    assert ds["validation"][0]["targets"] == "The Denver Broncos"


def test_pad_punctuation_follows_tensorflows_regex_semantics():
    pad = downstream.formatting._pad_punctuation
    assert pad("don't stop_now: 24–10!") == "don ' t stop_now : 24 – 10 ! "
    assert pad("naïve café ½") == "naïve café ½"  # letters and numbers (\p{L}, \p{N}) stay
    # RE2's \s is ASCII whitespace: a no-break space is padded like punctuation, not collapsed
    assert pad("a\u00a0b") == "a \u00a0 b"


def test_cnndm_10k_is_the_indexed_subset_in_tfds_order_lowercased(cache_dir):
    raw = load_fixture("cnndm_10k", cache_dir, formatted=False)
    full = datasets.load_dataset(str(SOURCES["cnndm_10k"]), "3.0.0", cache_dir=cache_dir)
    # TFDS order of the six train stories is Hub rows [2, 5, 4, 1, 0, 3] (md5 salted with "train"), so
    # Krishna-style positions [4, 0] select Hub rows 0 and 2, and validation position 1 selects row 3.
    assert raw["train"]["id"] == [full["train"][0]["id"], full["train"][2]["id"]]
    assert raw["validation"]["id"] == [full["validation"][3]["id"]]
    assert raw["test"]["id"] == full["test"]["id"]
    ds = load_fixture("cnndm_10k", cache_dir)
    assert (
        ds["train"][0]["targets"]
        == "council approves 400 homes on the edge of the town . residents say the roads could not cope ."
    )
    assert ds["train"][0]["inputs"].startswith("london, england (reuters) -- a council in kent")


def test_tfds_order_sorts_by_md5_of_split_and_story_key():
    ids = [json.loads(line)["id"] for line in (SOURCES["cnndm_10k"] / "3.0.0" / "train.jsonl").read_text().splitlines()]
    assert tfds_order(ids, "train") == [2, 5, 4, 1, 0, 3]
    hashes = [int(hashlib.md5(b"train" + f"{i}.story".encode()).hexdigest(), 16) for i in ids]
    assert [hashes[r] for r in tfds_order(ids, "train")] == sorted(hashes)
    assert tfds_order(ids, "validation") != tfds_order(ids, "train")  # the split name is the salt


def test_cnndm_10k_refuses_a_copy_that_is_not_the_full_split(cache_dir):
    full = datasets.load_dataset(str(SOURCES["cnndm_10k"]), "3.0.0", cache_dir=cache_dir)
    with pytest.raises(ValueError, match="287,113-row split"):
        rebuild_cnndm_10k(full, [0], [0])
    with pytest.raises(ValueError, match="index 6 is past the end of the 6-row train split"):
        rebuild_cnndm_10k(full, [6], [0], expected_sizes=None)


def test_cnndm_10k_without_index_files_says_what_to_download(tmp_path):
    with pytest.raises(DownstreamDataNotFoundError) as err:
        load_downstream("cnndm_10k", data_dir=tmp_path)
    message = str(err.value)
    assert str(tmp_path / "cnndm_10k" / "cnndm_train_indices.txt") in message
    assert "acmi-lab/pretraining-with-nonsense" in message and "indices_dir=" in message


def test_mtop_reads_both_spellings_of_the_hub_columns(cache_dir):
    ds = load_fixture("mtop", cache_dir)
    assert ds["train"][0] == {
        "inputs": "Has Angelika Kratzer video messaged me?",
        "targets": "[IN:GET_MESSAGE [SL:CONTACT Angelika Kratzer ] [SL:TYPE_CONTENT video ] [SL:RECIPIENT me ] ]",
    }
    # eval_en (our validation) fills the " utterance" / " dcp_form" columns
    assert ds["validation"][0]["inputs"] == "Will it rain today?"


def test_retrosynthesis_maps_hub_split_val_and_strips_atom_maps(cache_dir):
    ds = load_fixture("retrosynthesis", cache_dir)
    assert ds["train"][0]["inputs"] == "[CH3][C](=[O])[NH][CH2][c]1[cH][cH][cH][cH][cH]1"
    assert ds["train"][0]["targets"] == "[CH3][C](=[O])Cl.[NH2][CH2][c]1[cH][cH][cH][cH][cH]1"
    assert ds["validation"][0] == {"inputs": "c1ccc(-c2ccccc2)cc1", "targets": "Brc1ccccc1.OB(O)c1ccccc1"}


def test_webqsp_linearises_the_subgraph_as_unifiedskg_does(cache_dir):
    ds = load_fixture("webqsp", cache_dir)
    assert ds["test"][0] == {
        "inputs": "what does jamaican people speak ; structured knowledge: Jamaica | "
        "Jamaica location.country.languages_spoken Jamaican English | "
        "Jamaica location.country.languages_spoken Jamaican Creole English Language",
        "targets": "Jamaican English | Jamaican Creole English Language",
    }


def test_webqsp_in_unifiedskg_schema_targets_s_expressions_and_drops_null_training_rows(cache_dir):
    ds = load_downstream("webqsp", source=str(FIXTURES / "unifiedskg_webqsp"), cache_dir=cache_dir)
    assert len(ds["train"]) == 1  # the row whose s-expression is "null" is gone
    assert ds["validation"][0] == {
        "inputs": "where is jamarcus russell from ; structured knowledge: m.0gs1nr: JaMarcus Russell | "
        "m.0gs1nr people.person.place_of_birth m.0qb0p",
        "targets": "(JOIN (R people.person.place_of_birth) m.0gs1nr)",
    }


# --------------------------------------------------------------------------- code translation: offline folder


def _offline_code_translation_folder():
    root = real_code_translation_root()
    if root is None:
        pytest.skip(f"needs {CODE_TRANSLATION_HOWTO}")
    return root / "code_translation"


def test_code_translation_reads_any_folder_in_the_codexglue_layout(tmp_path):
    folder = write_code_translation_folder(tmp_path / "code_translation")
    ds = load_downstream("code_translation", data_dir=tmp_path)
    assert {split: len(d) for split, d in ds.items()} == {"train": 64, "validation": 24, "test": 16}
    java = (folder / "valid.java-cs.txt.java").read_text(encoding="utf-8").split("\n")[3]
    cs = (folder / "valid.java-cs.txt.cs").read_text(encoding="utf-8").split("\n")[3]
    assert ds["validation"][3] == {"inputs": java, "targets": cs}


def test_code_translation_reads_the_offline_codexglue_folder():
    folder = _offline_code_translation_folder()
    ds = load_downstream("code_translation", formatted=False)
    assert {split: len(d) for split, d in ds.items()} == {"train": 10_295, "validation": 499, "test": 1_000}
    first_java = (folder / "test.java-cs.txt.java").read_text(encoding="utf-8").split("\n")[0]
    first_cs = (folder / "test.java-cs.txt.cs").read_text(encoding="utf-8").split("\n")[0]
    assert ds["test"][0] == {"id": 0, "java": first_java + "\n", "cs": first_cs + "\n"}
    formatted = load_downstream("code_translation")
    assert formatted["test"][0] == {"inputs": first_java.strip(), "targets": first_cs.strip()}


def test_code_translation_offline_rows_have_the_hub_schema(cache_dir):
    offline = read_code_translation(_offline_code_translation_folder())
    hub = load_fixture("code_translation", cache_dir, formatted=False)
    for split in ("train", "validation", "test"):
        assert offline[split].features == hub[split].features
    assert hub["train"][0]["java"].endswith("\n") and offline["train"][0]["java"].endswith("\n")


def test_code_translation_source_may_be_the_codexglue_folder_itself():
    folder = _offline_code_translation_folder()
    ds = load_downstream("code_translation", source=str(folder), formatted=False)
    assert ds["validation"][:] == read_code_translation(folder)["validation"][:]


def test_code_translation_with_a_data_dir_lacking_the_folder_says_where_to_get_it(tmp_path):
    with pytest.raises(DownstreamDataNotFoundError) as err:
        load_downstream("code_translation", data_dir=tmp_path)
    message = str(err.value)
    assert str(tmp_path / "code_translation") in message
    assert "microsoft/CodeXGLUE" in message and "google/code_x_glue_cc_code_to_code_trans" in message


def test_code_translation_folder_with_a_missing_file_names_it(tmp_path):
    folder = tmp_path / "code_translation"
    folder.mkdir()
    for stem in ("train", "valid", "test"):
        for lang in ("java", "cs"):
            (folder / f"{stem}.java-cs.txt.{lang}").write_text("x\n", encoding="utf-8")
    (folder / "valid.java-cs.txt.cs").unlink()
    with pytest.raises(DownstreamDataNotFoundError, match=r"missing .*valid\.java-cs\.txt\.cs"):
        load_downstream("code_translation", data_dir=tmp_path)
    (folder / "valid.java-cs.txt.cs").write_text("x\ny\n", encoding="utf-8")
    with pytest.raises(ValueError, match="line-aligned"):
        read_code_translation(folder)


# --------------------------------------------------------------------------- errors and extension


def test_an_unreachable_hub_dataset_names_the_id_and_the_way_out(monkeypatch, cache_dir):
    import huggingface_hub.constants

    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(DownstreamDataNotFoundError) as err:
        load_downstream("mtop", cache_dir=cache_dir)
    assert "WillHeld/mtop" in str(err.value) and "source=" in str(err.value)


def test_a_plain_folder_of_split_files_is_a_source_too(tmp_path, cache_dir):
    # no README and so no "plain_text" config: the Hub config is only used where the source has it
    for split in ("train", "validation"):
        text = (SOURCES["squad"] / "plain_text" / f"{split}-00000-of-00001.jsonl").read_text(encoding="utf-8")
        (tmp_path / f"{split}.jsonl").write_text(text, encoding="utf-8")
    ds = load_downstream("squad", source=str(tmp_path), cache_dir=cache_dir)
    assert ds["train"][0] == load_fixture("squad", cache_dir)["train"][0]


def test_data_without_a_needed_split_says_which_splits_it_has(tmp_path, cache_dir):
    (tmp_path / "train.jsonl").write_text(json.dumps({"java": "a", "cs": "b"}) + "\n")
    with pytest.raises(ValueError, match=r"no 'validation' split .* it has \['train'\]"):
        load_downstream("code_translation", source=str(tmp_path), cache_dir=cache_dir)


@pytest.fixture
def restore_registry():
    saved = dict(DOWNSTREAM_TASKS)
    yield
    DOWNSTREAM_TASKS.clear()
    DOWNSTREAM_TASKS.update(saved)


def test_a_user_registers_a_task_in_a_few_lines(tmp_path, cache_dir, restore_registry):
    for split, rows in {
        "train": [("2+2", "4"), ("3+3", "6")],
        "validation": [("1+1", "2")],
        "test": [("5+5", "10")],
    }.items():
        (tmp_path / f"{split}.jsonl").write_text("".join(json.dumps({"q": q, "a": a}) + "\n" for q, a in rows))

    register_task(
        DownstreamTask(
            name="arithmetic",
            hub_id="me/arithmetic",
            format_example=lambda ex: {"inputs": ex["q"], "targets": ex["a"]},
            finetune=FinetuneConfig(learning_rate=1e-3, train_steps=1_000, batch_size=8, eval_period=100),
        )
    )

    ds = load_downstream("arithmetic", source=str(tmp_path), cache_dir=cache_dir)
    assert ds["test"][0] == {"inputs": "5+5", "targets": "10"}
    assert get_downstream_task("arithmetic").compute_metrics(["4", "7"], ["4", "6"]) == {"em": 50.0, "f1": 50.0}
    with pytest.raises(ValueError, match="already registered"):
        register_task(get_downstream_task("arithmetic"))


def test_a_task_with_an_unknown_metric_or_report_key_is_refused():
    fmt = lambda ex: ex
    with pytest.raises(ValueError, match="unknown metric.*'bleu'.*valid metrics: exact_match, squad, rouge, token_f1"):
        DownstreamTask(name="t", hub_id="x/y", format_example=fmt, metrics=("bleu",))
    with pytest.raises(ValueError, match="report_metric 'rouge1' is not produced by \\['exact_match'\\]"):
        DownstreamTask(name="t", hub_id="x/y", format_example=fmt, report_metric="rouge1")


def test_a_formatter_that_returns_the_wrong_shape_is_reported(tmp_path, cache_dir):
    (tmp_path / "train.jsonl").write_text(json.dumps({"q": "x"}) + "\n")
    task = DownstreamTask(
        name="bad",
        hub_id="x/y",
        format_example=lambda ex: {"question": ex["q"]},
        hub_splits={"train": "train", "validation": "train", "test": "train"},
    )
    with pytest.raises(
        ValueError, match="format_example must return a dict with str 'inputs' and 'targets'; got \\['question'\\]"
    ):
        load_downstream(task, source=str(tmp_path), cache_dir=cache_dir)


def test_task_metrics_are_the_papers(cache_dir):
    squad = get_downstream_task("squad")
    assert squad.compute_metrics(["Denver Broncos!"], [["The Denver Broncos", "Broncos"]]) == {"em": 100.0, "f1": 100.0}
    cnndm = get_downstream_task("cnndm_10k")
    scores = cnndm.compute_metrics(["the cat sat on the mat"], ["the cat is on the mat"])
    assert scores["rouge1"] == pytest.approx(500 / 6) and scores["rouge2"] == pytest.approx(60.0)


def test_tasks_are_frozen_so_a_recipe_cannot_change_the_registry_by_accident():
    with pytest.raises(dataclasses.FrozenInstanceError):
        get_downstream_task("squad").max_input_length = 1
