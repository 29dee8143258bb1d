"""hf_synpre.data.text and natural text in the stream (issue 17 part 1 and 3): the sources (local text,
json/jsonl, parquet, directories, globs, a Hub dataset streamed through a local Hub), the chunk stream
(held-out start, epochs, any request order), both objectives, mixtures with natural text (workers, resume,
the decaying schedule, the natural-token count)."""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from synpre_testkit.corpora import code_documents, write_corpus
from torch.utils.data import DataLoader

from hf_synpre import protocol_for
from hf_synpre.data.streaming import SyntheticStream, make_validation_set, parse_mixture
from hf_synpre.data.text import NATURAL, NaturalText, open_text_source
from hf_synpre.tasks.span_corruption import tokens_length_for
from hf_synpre.tokenizer import load_tokenizer

DOCS = code_documents(40, repeat=True)


@pytest.fixture(scope="module")
def tokenizer():
    return load_tokenizer("default")


@pytest.fixture(scope="module")
def proto(tokenizer):
    return protocol_for(tokenizer, content_vocab_size=300)


@pytest.fixture()
def text_dir(tmp_path):
    return write_corpus(tmp_path / "texts", DOCS, "doc{:02d}.txt")


def _token_stream(tokenizer, docs, eos=True):
    ids = tokenizer(docs, add_special_tokens=False)["input_ids"]
    return np.array([t for row in ids for t in row + ([tokenizer.eos_token_id] if eos else [])])


# ----------------------------------------------------------------------------------------- chunks
def test_language_modeling_chunks_are_the_token_stream_after_the_held_out_start(text_dir, tokenizer):
    natural = NaturalText(open_text_source(str(text_dir)), tokenizer, 16, num_validation=4)
    stream = _token_stream(tokenizer, DOCS)  # files sorted by name = DOCS order; EOS closes each document
    val = natural.validation()
    assert val.inputs.lengths.tolist() == [0] * 4
    assert np.array_equal(val.targets.values, stream[:64])
    train_tokens = stream[64:]
    per_epoch = len(train_tokens) // 16
    ex = natural.examples(0, 3 * per_epoch)  # three epochs: each reads the text after the held-out start again
    want = np.tile(train_tokens, 4)[: 3 * per_epoch * 16]
    assert np.array_equal(ex.targets.values, want)
    assert not set(map(tuple, val.targets.to_lists())) & set(map(tuple, ex.targets.to_lists()))


def test_chunks_do_not_depend_on_how_they_are_asked_for(text_dir, tokenizer):
    source = open_text_source(str(text_dir))
    whole = NaturalText(source, tokenizer, 12, num_validation=2).examples(0, 300)
    pieces = NaturalText(source, tokenizer, 12, num_validation=2)
    got = [pieces.examples(200, 100), pieces.examples(0, 50), pieces.examples(50, 150)]  # backwards, then on
    assert np.array_equal(got[0].targets.values, whole.targets.values[200 * 12:])
    assert np.array_equal(np.concatenate([g.targets.values for g in got[1:]]), whole.targets.values[: 200 * 12])


def test_span_corruption_chunks_fill_the_inputs_and_a_new_epoch_masks_anew(text_dir, tokenizer, proto):
    natural = NaturalText(open_text_source(str(text_dir)), tokenizer, 32, "span_corruption", proto, num_validation=2)
    raw, _ = tokens_length_for(32)
    assert natural.tokens_per_example == raw
    stream = _token_stream(tokenizer, DOCS, eos=False)  # T5 concatenates documents without a separator
    per_epoch = (len(stream) - 2 * raw) // raw
    ex = natural.examples(0, per_epoch + 5)
    assert set(ex.inputs.lengths.tolist()) == {31}  # + EOS = 32
    sentinel = int(proto.task_divider)  # <extra_id_0>
    first = ex.take(np.array([0]))
    assert first.inputs.values[first.inputs.values != sentinel].size < raw and first.targets.values[0] == sentinel
    # chunk 0 of epoch 1 has the same text as chunk 0 of epoch 0 only if the epoch is a whole number of
    # chunks; compare the masks of identical rows where that holds, otherwise check the seed changes them
    other = NaturalText(open_text_source(str(text_dir)), tokenizer, 32, "span_corruption", proto, 2, seed=1)
    assert not np.array_equal(other.examples(0, 4).inputs.values, ex.take(np.arange(4)).inputs.values)


def test_too_little_text_is_one_line_naming_the_fix(tmp_path, tokenizer):
    (tmp_path / "a.txt").write_text("short text")
    natural = NaturalText(open_text_source(str(tmp_path / "a.txt")), tokenizer, 64, num_validation=8)
    with pytest.raises(ValueError, match="fewer than --num_validation 8 held-out chunks"):
        natural.validation()
    with pytest.raises(ValueError, match="no training text after the 8 held-out chunks"):
        natural.examples(0, 1)


# ----------------------------------------------------------------------------------------- bookmarks
@pytest.mark.parametrize("kind,objective", [("text", "language_modeling"), ("jsonl", "span_corruption")])
def test_a_resumed_reader_starts_at_a_bookmark_and_reads_the_same_chunks(tmp_path, tokenizer, proto, monkeypatch,
                                                                         kind, objective):
    import hf_synpre.data.text as text

    monkeypatch.setattr(text, "DOCUMENTS_PER_READ", 3)  # 40 documents: 14 batches an epoch
    monkeypatch.setattr(text, "BOOKMARK_EVERY", 16)
    if kind == "text":
        spec = str(write_corpus(tmp_path / "texts", DOCS, "doc{:02d}.txt"))
    else:
        (tmp_path / "j").mkdir()
        (tmp_path / "j" / "a.jsonl").write_text("".join(json.dumps({"text": d}) + "\n" for d in DOCS))
        spec = str(tmp_path / "j")
    marks = tmp_path / "marks"

    def reader(bookmarks=marks, num_validation=3):
        return NaturalText(open_text_source(spec), tokenizer, 24, objective, proto, num_validation, seed=5,
                           bookmark_dir=bookmarks)

    first = reader()
    run = [first.examples(i, 10) for i in range(0, 400, 10)]  # > 2 epochs, in batches as a training run asks
    assert first.examples(0, 1)  # and back: the reader starts over
    files = sorted((p for p in marks.rglob("*.json")), key=lambda p: int(p.stem))
    assert len(files) >= 20 and len({p.parent for p in files}) == 1  # one fingerprint folder
    ids = tokenizer(DOCS, add_special_tokens=False)["input_ids"]
    batch_tokens = max(sum(len(i) + 1 for i in ids[b:b + 3]) for b in range(0, len(DOCS), 3))

    def rows(ex):
        return ex.inputs.to_lists(), ex.targets.to_lists()

    every = [r for ex in run for r in zip(*rows(ex))]
    for start in (250, 371):  # a few epochs in (an epoch is ~85 chunks here)
        resumed, cold = reader(), reader(bookmarks=None)
        got = resumed.examples(start, 20)
        assert list(zip(*rows(got))) == every[start:start + 20], start
        assert list(zip(*rows(cold.examples(start, 20)))) == every[start:start + 20]
        # the resumed reader tokenised at most a bookmark's span, the request and one document batch again
        assert resumed.tokens_read <= (16 + 20) * first.tokens_per_example + batch_tokens, start
        assert resumed.tokens_read < cold.tokens_read / 3, (start, resumed.tokens_read, cold.tokens_read)

    # another held-out count is another stream: its reader ignores these bookmarks and is still right
    other, other_cold = reader(num_validation=4), reader(bookmarks=None, num_validation=4)
    assert rows(other.examples(300, 5)) == rows(other_cold.examples(300, 5))
    assert len({p.parent for p in marks.rglob("*.json")}) == 2
    # a changed file changes the fingerprint: the old bookmarks are never read for the new text
    if kind == "text":
        doc = Path(spec) / "doc07.txt"
        doc.write_text(doc.read_text() + "\n# edited\n")
        edited, edited_cold = reader(), reader(bookmarks=None)
        assert rows(edited.examples(371, 5)) == rows(edited_cold.examples(371, 5))


# ----------------------------------------------------------------------------------------- sources
def test_json_jsonl_parquet_directories_and_globs_give_the_same_documents(tmp_path, tokenizer):
    import pyarrow as pa
    import pyarrow.parquet as pq

    (tmp_path / "j").mkdir()
    (tmp_path / "j" / "a.jsonl").write_text("".join(json.dumps({"body": d, "id": i}) + "\n" for i, d in enumerate(DOCS[:20])))
    (tmp_path / "j" / "b.jsonl").write_text("".join(json.dumps({"body": d, "id": i}) + "\n" for i, d in enumerate(DOCS[20:])))
    pq.write_table(pa.table({"body": DOCS}), tmp_path / "docs.parquet")
    (tmp_path / "t").mkdir()
    for i, d in enumerate(DOCS):
        (tmp_path / "t" / f"{i:02d}.md").write_text(d)
    for spec in (str(tmp_path / "j"), str(tmp_path / "docs.parquet"), str(tmp_path / "j" / "*.jsonl")):
        source = open_text_source(spec, text_column="body")
        assert list(source.documents()) == DOCS, spec
    assert list(open_text_source(str(tmp_path / "t")).documents()) == DOCS
    assert "column 'body' of 1 local parquet file(s)" in open_text_source(str(tmp_path / "docs.parquet"), "body").describe()


def test_bad_sources_are_one_line_naming_the_fix(tmp_path):
    with pytest.raises(ValueError, match="no such file or directory"):
        open_text_source(str(tmp_path / "missing"))
    with pytest.raises(ValueError, match="matches no files"):
        open_text_source(str(tmp_path / "*.jsonl"))
    (tmp_path / "a.txt").write_text("x")
    (tmp_path / "b.jsonl").write_text('{"text": "y"}\n')
    with pytest.raises(ValueError, match="mixes file kinds"):
        open_text_source(str(tmp_path))
    with pytest.raises(ValueError, match=r"no column 'txt' .* pass --natural_text_column text"):
        list(open_text_source(str(tmp_path / "b.jsonl"), text_column="txt").documents())


def test_an_unreachable_hub_dataset_says_the_hub_is_offline(monkeypatch):
    import huggingface_hub.constants as hf_constants

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(hf_constants, "HF_HUB_OFFLINE", True)
    source = open_text_source("nobody/no-such-corpus")
    assert source.kind == "hub"
    with pytest.raises(ValueError, match="--natural_data 'nobody/no-such-corpus'.*Hub is offline"):
        next(source.documents())


STREAM_FROM_HUB = textwrap.dedent(
    """
    # A user's session: HF_ENDPOINT is the local Hub (olah), the corpus is streamed, nothing downloaded ahead.
    import json, sys
    import numpy as np
    from hf_synpre.data.text import NaturalText, open_text_source
    from hf_synpre.tokenizer import load_tokenizer
    source = open_text_source("corpora/docs", text_column="body")
    natural = NaturalText(source, load_tokenizer("default"), 16, num_validation=4)
    out = {"documents": list(source.documents()), "validation": natural.validation().targets.to_lists(),
           "train": natural.examples(0, 20).targets.to_lists()}
    json.dump(out, open(sys.argv[1], "w"))
    """
)


# what the Hub serves for a Parquet dataset: the files and a card naming them
CARD = "---\nconfigs:\n- config_name: default\n  data_files:\n  - split: train\n    path: data/train-*\n---\n# docs\n"


@pytest.mark.timeout(240)
def test_a_hub_dataset_streams_through_a_local_hub(tmp_path, tokenizer, text_dir):
    """The corpus is published to the test Hub server as Parquet and streamed back through olah by a fresh
    interpreter whose HF_ENDPOINT is olah, as a user's would be."""
    import importlib.util

    import pyarrow as pa
    import pyarrow.parquet as pq
    from synpre_testkit.hub_server import HubServer, OlahServer, Token

    if importlib.util.find_spec("olah") is None:
        pytest.fail("olah is not installed; install the test extra: pip install -e '.[test]'")
    pq.write_table(pa.table({"body": DOCS}), tmp_path / "train-00000-of-00001.parquet")
    mirrors = tmp_path / "mirrors"
    mirrors.mkdir()
    token = "hf_naturalTextWriter"
    with HubServer(mirrors, {token: Token("corpora", ("corpora",))}) as hub, \
            OlahServer(mirrors, tmp_path / "olah") as olah:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "HUGGING"))}
        publish = textwrap.dedent(f"""
            from huggingface_hub import HfApi
            api = HfApi(endpoint={hub.endpoint!r}, token={token!r})
            api.create_repo("corpora/docs", repo_type="dataset")
            api.upload_file(path_or_fileobj={str(tmp_path / "train-00000-of-00001.parquet")!r},
                            path_in_repo="data/train-00000-of-00001.parquet", repo_id="corpora/docs", repo_type="dataset")
            api.upload_file(path_or_fileobj={CARD!r}.encode(), path_in_repo="README.md", repo_id="corpora/docs",
                            repo_type="dataset")
        """)
        subprocess.run([sys.executable, "-c", publish], env={**env, "HF_HUB_OFFLINE": "0", "HF_HUB_DISABLE_XET": "1",
                                                              "HF_HOME": str(tmp_path / "writer_home")},
                       check=True, capture_output=True, text=True, timeout=120)
        out = tmp_path / "streamed.json"
        proc = subprocess.run(
            [sys.executable, "-c", STREAM_FROM_HUB, str(out)],
            env={**env, "HF_ENDPOINT": olah.endpoint, "HF_HOME": str(tmp_path / "user_home"), "HF_HUB_OFFLINE": "0",
                 "HF_DATASETS_OFFLINE": "0"},
            capture_output=True, text=True, timeout=180)
        assert proc.returncode == 0, f"streaming through olah failed:\n{proc.stderr[-4000:]}\nolah:\n{olah.output()[-2000:]}"
    got = json.loads(out.read_text())
    assert got["documents"] == DOCS
    local = NaturalText(open_text_source(str(text_dir)), tokenizer, 16, num_validation=4)
    assert got["validation"] == local.validation().targets.to_lists()
    assert got["train"] == local.examples(0, 20).targets.to_lists()


# ----------------------------------------------------------------------------------------- mixtures
def _natural(text_dir, tokenizer):
    return NaturalText(open_text_source(str(text_dir)), tokenizer, 16, num_validation=4)


def _rows(batches):
    return [(tuple(i), tuple(t)) for b in batches for i, t in zip(b.inputs.to_lists(), b.targets.to_lists())]


def test_natural_is_a_mixture_name_and_not_a_validation_task(proto):
    assert parse_mixture("natural:0.9,set:0.1") == {NATURAL: 0.9, "set": 0.1}
    with pytest.raises(ValueError, match="natural text, not a generated task"):
        make_validation_set("natural:0.9,set:0.1", proto, 10)


@pytest.mark.parametrize("group_by_length", [False, True])
def test_a_mixture_reads_natural_text_in_order_and_counts_it(text_dir, tokenizer, proto, group_by_length):
    make = lambda **kw: SyntheticStream("natural:3,set:1", proto, batch_size=8, length_range=(10, 20), seed=2,
                                        megabatch_batches=4, group_by_length=group_by_length,
                                        natural=_natural(text_dir, tokenizer), **kw)
    stream = make()
    batches = stream.take_batches(12)
    natural_rows = [(i, t) for i, t in _rows(batches) if not i]
    assert 0.6 < len(natural_rows) / 96 < 0.9  # share 0.75
    # every natural chunk of the first 12 batches, no other, each once: the text is read in order, never skipped
    want = _natural(text_dir, tokenizer).examples(0, len(natural_rows)).targets.to_lists()
    assert sorted(t for _, t in natural_rows) == sorted(map(tuple, want))
    assert stream.natural_examples_before(12) == len(natural_rows)
    assert stream.natural_examples_before(5) == sum(1 for i, _ in _rows(batches[:5]) if not i)
    # the synthetic rows are Set examples
    assert all(len(set(i)) >= 1 and len(t) >= 1 for i, t in _rows(batches) if i)
    # workers and a resumed stream see the same batches
    loader = DataLoader(make(), batch_size=8, num_workers=2, collate_fn=lambda f: f)
    got = []
    for batch in loader:
        got += [(tuple(x["inputs"].tolist()), tuple(x["targets"].tolist())) for x in batch]
        if len(got) >= 96:
            break
    assert got[:96] == _rows(batches)
    assert _rows(make(start_batch=7).take_batches(5)) == _rows(batches[7:])


def test_the_synthetic_share_decays_to_zero(text_dir, tokenizer, proto):
    stream = SyntheticStream("natural:0.5,set:0.5", proto, batch_size=16, length_range=(10, 20), seed=0,
                             megabatch_batches=8, group_by_length=False, natural=_natural(text_dir, tokenizer),
                             synthetic_decay_batches=20)
    assert stream.natural_probability(np.array([0, 10, 20, 30])).tolist() == [0.5, 0.75, 1.0, 1.0]
    share = [np.mean(b.inputs.lengths == 0) for b in stream.take_batches(32)]
    assert np.mean(share[:5]) < 0.75 and all(s == 1.0 for s in share[20:])
    with pytest.raises(ValueError, match="needs a mixture of natural text and synthetic tasks"):
        SyntheticStream("set", proto, batch_size=8, synthetic_decay_batches=5)
    with pytest.raises(ValueError, match="pass natural=NaturalText"):
        SyntheticStream("natural:1,set:1", proto, batch_size=8)


def test_processes_split_every_mixed_global_batch_between_them(text_dir, tokenizer, proto):
    """Each process computes the global batches and keeps its slice, natural rows included: together the
    two processes see exactly the single process's batches (as Accelerate's IterableDatasetShard hands out)."""
    make = lambda **kw: SyntheticStream("natural:1,set:1", proto, batch_size=8, length_range=(10, 20), seed=4,
                                        megabatch_batches=3, group_by_length=False,
                                        natural=_natural(text_dir, tokenizer), **kw)
    whole = make().take_batches(7)
    halves = [make(process_index=r, num_processes=2).take_batches(7) for r in (0, 1)]
    for b, (a0, a1) in enumerate(zip(*halves)):
        assert _rows([a0]) + _rows([a1]) == _rows([whole[b]]), b
