"""hf_synpre.data.streaming: the infinite pre-training stream (determinism, sharding, resume, mixture,
validation never in training, length grouping)."""

import numpy as np
import pytest
from torch.utils.data import DataLoader

from hf_synpre import protocol_for
from hf_synpre.data.streaming import (
    PreparedStream,
    SyntheticStream,
    ValidationSet,
    make_validation_set,
    parse_mixture,
)
from hf_synpre.tasks import Examples, Ragged, generate


@pytest.fixture(scope="module")
def proto():
    return protocol_for(None, content_vocab_size=300)


def _rows(batches):
    """Global batches (Examples) -> list of (inputs, targets) tuples, in order."""
    return [
        (tuple(i), tuple(t))
        for b in batches
        for i, t in zip(b.inputs.to_lists(), b.targets.to_lists())
    ]


def _ragged(rows):
    return Ragged.from_lengths(np.array([t for r in rows for t in r], dtype=np.int32), np.array([len(r) for r in rows]))


def _from_loader(stream, num_examples, num_workers=0, batch_size=8):
    loader = DataLoader(stream, batch_size=batch_size, num_workers=num_workers, collate_fn=lambda f: f)
    out = []
    for batch in loader:
        out += [(tuple(x["inputs"].tolist()), tuple(x["targets"].tolist())) for x in batch]
        if len(out) >= num_examples:
            return out[:num_examples]


def test_same_seed_same_batches_and_other_seed_differs(proto):
    a = SyntheticStream("set", proto, batch_size=16, length_range=(10, 40), seed=3, megabatch_batches=4)
    b = SyntheticStream("set", proto, batch_size=16, length_range=(10, 40), seed=3, megabatch_batches=4)
    c = SyntheticStream("set", proto, batch_size=16, length_range=(10, 40), seed=4, megabatch_batches=4)
    assert _rows(a.take_batches(10)) == _rows(b.take_batches(10))
    assert _rows(a.take_batches(10)) != _rows(c.take_batches(10))


def test_examples_are_the_task_generators_examples(proto):
    # Ungrouped and without a validation set, the stream is generate()'s stream cut into batches
    # (megabatch m reads raw examples m*(K+1)*B ... and yields the first K*B).
    s = SyntheticStream("set", proto, batch_size=8, length_range=(10, 40), seed=0, group_by_length=False, megabatch_batches=3)
    got = _rows(s.take_batches(6))
    raw = generate("set", proto, 64, length_range=(10, 40), seed=0)
    rows = list(zip(map(tuple, raw.inputs.to_lists()), map(tuple, raw.targets.to_lists())))
    assert got == rows[:24] + rows[32:56]


def test_dataloader_workers_give_the_single_process_order(proto):
    make = lambda: SyntheticStream("set", proto, batch_size=8, length_range=(10, 30), seed=1, megabatch_batches=4)
    single = _from_loader(make(), 96)
    assert _from_loader(make(), 96, num_workers=2) == single
    assert _rows(make().take_batches(12)) == single


def test_process_shards_partition_every_global_batch(proto):
    kw = dict(batch_size=8, length_range=(10, 30), seed=2, megabatch_batches=4)
    whole = SyntheticStream("set", proto, **kw).take_batches(10)
    shards = [SyntheticStream("set", proto, process_index=r, num_processes=2, **kw).take_batches(10) for r in range(2)]
    for j, batch in enumerate(whole):
        assert _rows([shards[0][j]]) + _rows([shards[1][j]]) == _rows([batch])


def test_process_shards_match_accelerate_iterable_dataset_shard(proto):
    # Under the Trainer, Accelerate slices the global stream with IterableDatasetShard: same partition.
    from accelerate.data_loader import IterableDatasetShard

    kw = dict(batch_size=8, length_range=(10, 30), seed=2, megabatch_batches=4)
    for rank in range(2):
        wrapped = IterableDatasetShard(SyntheticStream("set", proto, **kw), batch_size=4, num_processes=2, process_index=rank)
        mine = SyntheticStream("set", proto, process_index=rank, num_processes=2, **kw)
        assert _from_loader(wrapped, 40, batch_size=4) == _rows(mine.take_batches(10))


def test_resume_position_continues_the_same_stream(proto):
    kw = dict(batch_size=8, length_range=(10, 30), seed=5, megabatch_batches=3)
    full = _rows(SyntheticStream("set", proto, **kw).take_batches(11))
    resumed = SyntheticStream("set", proto, start_batch=7, **kw)
    assert _from_loader(resumed, 32) == full[7 * 8 :]


def test_validation_inputs_never_reach_training(proto):
    # A tiny task space (2 content ids, bodies of exactly 10 tokens: 1,024 inputs) makes collisions
    # certain (about 1 draw in 5): the filter must remove every one of them.
    tiny = protocol_for(None, content_vocab_size=2)
    validation = make_validation_set("first_token", tiny, 200, length_range=(10, 10), seed=0)
    assert len(validation) == 200
    raw = generate("first_token", tiny, 2000, length_range=(10, 10), seed=0)
    assert validation.contains(raw.inputs).any(), "the test needs a stream that collides with validation"
    stream = SyntheticStream("first_token", tiny, batch_size=50, length_range=(10, 10), seed=0, exclude=validation, megabatch_batches=30)
    seen = {i for i, _ in _rows(stream.take_batches(60))}
    held_out = {tuple(r) for r in validation.examples.inputs.to_lists()}
    assert not seen & held_out
    assert len(seen) > 50


def test_a_task_space_made_of_validation_inputs_is_refused():
    tiny = protocol_for(None, content_vocab_size=2)
    validation = make_validation_set("first_token", tiny, 900, length_range=(10, 10), seed=0)
    with pytest.raises(ValueError, match="too few distinct inputs to stream"):
        SyntheticStream("first_token", tiny, batch_size=50, length_range=(10, 10), exclude=validation)


def test_validation_set_is_distinct_and_split_by_weight(proto):
    v = make_validation_set("set:3,identity:1", proto, 400, length_range=(10, 30), seed=0)
    inputs = [tuple(r) for r in v.examples.inputs.to_lists()]
    assert len(set(inputs)) == len(inputs) == 400
    assert v.tasks.count("set") == 300 and v.tasks.count("identity") == 100
    ds = v.to_dataset()
    assert len(ds) == 400 and set(ds.column_names) == {"inputs", "targets", "task"}
    lengths = [len(x) for x in ds["inputs"]]
    assert lengths == sorted(lengths)


def test_validation_comes_from_a_disjoint_stream(proto):
    v = make_validation_set("set", proto, 300, length_range=(10, 30), seed=0)
    train = generate("set", proto, 300, length_range=(10, 30), seed=0)
    assert not v.contains(train.inputs).any()


def test_contains_is_exact_not_hash_based():
    v = ValidationSet(Examples(_ragged([[5, 6, 7]]), _ragged([[5]])), ["set"], 0)
    probe = _ragged([[5, 6, 7], [5, 6], [7, 6, 5], [5, 6, 7, 0]])
    assert v.contains(probe).tolist() == [True, False, False, False]


def test_mixture_weights_are_respected(proto):
    s = SyntheticStream("identity:3,reverse:1", proto, batch_size=64, length_range=(10, 20), seed=0, megabatch_batches=8)
    prefixes = {proto.prefixes["copy"]: "identity", proto.prefixes["reverse"]: "reverse"}
    counts = {"identity": 0, "reverse": 0}
    for inputs, _ in _rows(s.take_batches(32)):
        for prefix, name in prefixes.items():
            if inputs[: len(prefix)] == tuple(prefix):
                counts[name] += 1
    share = counts["identity"] / (counts["identity"] + counts["reverse"])
    assert abs(share - 0.75) < 0.03, counts  # 2048 draws: 3 sigma = 0.029


def test_adding_a_task_keeps_the_other_tasks_examples(proto):
    # Each task draws from its own stream, so a mixture's identity examples are identity's own stream.
    s = SyntheticStream("identity:1,reverse:1", proto, batch_size=16, length_range=(10, 20), seed=0, group_by_length=False, megabatch_batches=4)
    prefix = tuple(proto.prefixes["copy"])
    got = [i for i, _ in _rows(s.take_batches(4)) if i[: len(prefix)] == prefix]
    own = [tuple(r) for r in generate("identity", proto, len(got), length_range=(10, 20), seed=0).inputs.to_lists()]
    assert got == own


def test_parse_mixture_forms_and_errors():
    assert parse_mixture("set") == {"set": 1.0}
    assert parse_mixture("set:3, copy:1") == {"set": 3.0, "identity": 1.0}
    assert parse_mixture({"set": 2, "reverse": 1}) == {"set": 2.0, "reverse": 1.0}
    assert parse_mixture(["set", "reverse"]) == {"set": 1.0, "reverse": 1.0}
    with pytest.raises(ValueError, match="unknown task 'sett'.*Did you mean 'set'"):
        parse_mixture("sett")
    with pytest.raises(ValueError, match="positive"):
        parse_mixture("set:0")
    with pytest.raises(ValueError, match="bad weight"):
        parse_mixture("set:x")


def test_length_grouping_reaches_ninety_percent_real_tokens(proto):
    def efficiency(batches):
        real = sum(len(b.inputs.values) + len(b.targets.values) + 2 * len(b) for b in batches)  # + EOS
        total = sum(len(b) * (b.inputs.lengths.max() + b.targets.lengths.max() + 2) for b in batches)
        return real / total

    grouped = SyntheticStream("set", proto, batch_size=64, seed=0).take_batches(256)
    naive = SyntheticStream("set", proto, batch_size=64, seed=0, group_by_length=False).take_batches(64)
    assert efficiency(grouped) >= 0.90
    assert efficiency(naive) < 0.6


def test_prepared_stream_epochs_cover_the_split_in_a_new_order(proto):
    import datasets

    ex = generate("set", proto, 40, length_range=(10, 20), seed=0)
    ds = datasets.Dataset.from_dict({"inputs": ex.inputs.to_lists(), "targets": ex.targets.to_lists()})
    s = PreparedStream(ds, batch_size=8, seed=0, megabatch_batches=2)
    assert s.batches_per_epoch == 5
    epoch0, epoch1 = _rows(s.take_batches(5)), _rows(s.take_batches(5, start=5))
    everything = sorted(zip(map(tuple, ex.inputs.to_lists()), map(tuple, ex.targets.to_lists())))
    assert sorted(epoch0) == sorted(epoch1) == everything
    assert epoch0 != epoch1
    with pytest.raises(ValueError, match="fewer than one global batch"):
        PreparedStream(ds, batch_size=64)


def test_corpus_tasks_stream_span_corrupted_examples_and_prepared_splits_keep_their_transform(tmp_path):
    """The nesting language is a corpus (sentences, empty targets): both data paths train on its T5 span
    corruption, never on the raw rows (whose empty targets a model 'learns' at once)."""
    from hf_synpre.data import load_synthetic
    from hf_synpre.data.streaming import PreparedStream, SyntheticStream
    from hf_synpre.tasks.span_corruption import SpanCorruption
    from hf_synpre.tasks import generate_block
    from hf_synpre.tokenizer import default_tokenizer, protocol_for

    protocol = protocol_for(default_tokenizer(), 1000)
    stream = SyntheticStream({"nesting_language": 1.0}, protocol, length_range=(6, 62), batch_size=16, seed=3)
    batch = stream.take_batches(1)[0]
    assert batch.targets.lengths.min() >= 2  # a sentinel and at least one masked token
    sentinel = int(protocol.task_divider)
    assert all(row[0] == sentinel for row in batch.targets.to_lists())
    # the corruption is that of the raw block's rows under the stream's seed, row by row
    raw = generate_block("nesting_language", protocol, 0, (6, 62), 3)
    corrupted = SpanCorruption(protocol, seed=3).apply(raw.inputs)
    pairs = {tuple(i): tuple(t) for i, t in zip(corrupted.inputs.to_lists(), corrupted.targets.to_lists())}
    for i, t in zip(batch.inputs.to_lists(), batch.targets.to_lists()):
        assert pairs[tuple(i)] == tuple(t)

    ds = load_synthetic("nesting_language", num_train=64, num_validation=8, cache_dir=str(tmp_path))
    prepared = PreparedStream(ds["train"], batch_size=8, seed=0).take_batches(1)[0]
    assert prepared.targets.lengths.min() >= 2
    assert all(row[0] == sentinel for row in prepared.targets.to_lists())


def test_corpus_tasks_as_language_modelling_train_on_the_sequences_and_hold_out_validation_ones():
    """--corpus_objective language_modeling (Hu et al.'s Dyck pre-pretraining): the sequence is the target,
    there are no inputs, and held-out sequences (compared by their targets) never reach training."""
    from hf_synpre.data.validation import example_keys
    from hf_synpre.tasks import generate_block
    from hf_synpre.tokenizer import default_tokenizer, protocol_for

    protocol = protocol_for(default_tokenizer(), 1000)
    task = "shuffle_dyck-k2-depth2"  # 80 distinct words of 8 brackets: collisions with validation are certain
    validation = make_validation_set(task, protocol, 20, length_range=(8, 8), seed=1,
                                     corpus_objective="language_modeling")
    assert validation.examples.inputs.lengths.max() == 0 and set(validation.examples.targets.lengths) == {8}
    assert len(set(map(tuple, validation.examples.targets.to_lists()))) == 20  # distinct by their targets
    raw = generate_block(task, protocol, 0, (8, 8), 1)
    assert validation.contains(raw.inputs).any(), "the test needs a stream that collides with validation"
    stream = SyntheticStream(task, protocol, batch_size=8, length_range=(8, 8), seed=1, megabatch_batches=4,
                             corpus_objective="language_modeling", exclude=validation)
    rows = _rows(stream.take_batches(8))
    assert all(not i and len(t) == 8 for i, t in rows)
    assert {t for _, t in rows} <= {tuple(r) for r in raw.inputs.to_lists()}  # the generated words themselves
    assert not {t for _, t in rows} & {tuple(r) for r in validation.examples.targets.to_lists()}
    assert validation.contains_examples(validation.examples).all()
    assert example_keys(validation.examples) is validation.examples.targets
    with pytest.raises(ValueError, match="corpus_objective 'mlm' is not one of"):
        SyntheticStream(task, protocol, batch_size=8, corpus_objective="mlm")
