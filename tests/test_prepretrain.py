"""recipes/reproduce.py --experiment prepretrain (issue 17 part 5): the shipped experiment, the plan, the
token-saving arithmetic, and a tiny experiment end to end (synthetic phase -> --transfer -> natural run,
a mixture, the table, the plot, the cache)."""

import json
import subprocess
import sys

import pytest
import yaml
from conftest import REPO
from synpre_testkit.corpora import code_documents, write_corpus

sys.path.insert(0, str(REPO / "recipes"))
from reproduce.prepretrain import (  # noqa: E402
    load_experiment,
    loss_at,
    plan_prepretrain,
    summarize_prepretrain,
    tokens_to_reach,
)

RECIPE = REPO / "recipes" / "reproduce.py"


def test_the_shipped_experiment_plans_synthetic_phases_before_their_natural_runs(tmp_path):
    exp = load_experiment("prepretrain_mini")
    assert list(exp.conditions) == ["scratch", "set", "shuffle_dyck", "nesting", "mixture"]
    stages = plan_prepretrain(exp, list(exp.conditions), 3, tmp_path)
    keys = [s.key for s in stages]
    assert keys[:3] == ["synthetic/set/seed0", "synthetic/set/seed1", "synthetic/set/seed2"]
    assert len(keys) == 9 + 15
    nat = {s.key: s for s in stages}["natural/set/seed1"]
    assert nat.deps == ["synthetic/set/seed1"]
    flags = dict(zip(nat.argv, nat.argv[1:]))
    assert flags["--transfer"] == "all" and flags["--model_name_or_path"].endswith("synthetic/set/seed1/selected")
    # every natural run has the same natural budget and data; the mixture's task comes last and wins
    mixture = {s.key: s for s in stages}["natural/mixture/seed0"].argv
    assert mixture[mixture.index("--synthetic_decay_steps") + 1] == "500"
    assert [a for a in mixture if a.startswith("natural")][-1] == "natural:0.9,set:0.1"
    dyck = {s.key: s for s in stages}["synthetic/shuffle_dyck/seed0"].argv
    assert dyck[dyck.index("--max_length") + 1] == "62"


def test_the_t5_experiment_is_the_same_protocol_for_the_encoder_decoder(tmp_path):
    from reproduce.prepretrain import experiment_name

    assert experiment_name("mini", None) == "prepretrain_mini" and experiment_name("mini", "t5") == "prepretrain_mini_t5"
    t5, causal = load_experiment("prepretrain_mini_t5"), load_experiment("prepretrain_mini")
    what = lambda exp: {n: (c.get("synthetic"), c.get("mixture")) for n, c in exp.conditions.items()}
    assert what(t5) == what(causal) and t5.config == "recipes/configs/cpu_default.yaml"
    stages = {s.key: s for s in plan_prepretrain(t5, list(t5.conditions), 1, tmp_path)}
    assert "--corpus_objective" not in stages["synthetic/shuffle_dyck/seed0"].argv  # T5: span corruption


@pytest.mark.parametrize("name", ["prepretrain_mini", "prepretrain_mini_t5"])
def test_every_synthetic_checkpoint_has_the_positions_its_natural_phase_needs(tmp_path, name):
    """A decoder-only checkpoint refuses lengths beyond its positions (max_source + max_target of its own
    pre-training): each synthetic phase must be built for the natural phase that continues it."""
    exp = load_experiment(name)
    config = yaml.safe_load((REPO / exp.config).read_text())

    def last(argv, flag):
        found = [argv[i + 1] for i, a in enumerate(argv) if a == flag]
        return int(found[-1]) if found else int(config[flag[2:]])

    stages = {s.key: s for s in plan_prepretrain(exp, list(exp.conditions), 1, tmp_path)}
    checked = 0
    for stage in stages.values():
        for dep in stage.deps:
            built, needed = stages[dep].argv, stage.argv
            if config.get("family", "t5") == "t5":  # relative positions: n_positions = the longer of the two
                assert max(last(built, "--max_source_length"), last(built, "--max_target_length")) >= max(
                    last(needed, "--max_source_length"), last(needed, "--max_target_length")), stage.key
            else:
                assert last(built, "--max_source_length") + last(built, "--max_target_length") >= last(
                    needed, "--max_source_length") + last(needed, "--max_target_length"), stage.key
            checked += 1
    assert checked == 3


def test_bad_experiment_files_are_one_line(tmp_path):
    with pytest.raises(ValueError, match="unknown experiment 'nope'; valid: prepretrain_mini, prepretrain_mini_t5"):
        load_experiment("nope")
    bad = tmp_path / "bad.yaml"
    base = yaml.safe_load((REPO / "recipes/reproduce/experiments/prepretrain_mini.yaml").read_text())
    for change, message in [({"conditions": {"set": {"synthetic": "set"}}}, "need scratch"),
                            ({"conditions": {"scratch": {}, "x": {"synthetic": "sett"}}}, "sett"),
                            ({"conditions": {"scratch": {}, "x": {"mixture": "set:1"}}}, "has no 'natural'"),
                            ({"transfer": "attentoin"}, "attentoin")]:
        bad.write_text(yaml.safe_dump({**base, **change}))
        with pytest.raises(ValueError, match=message):
            load_experiment(bad)


def test_tokens_to_reach_and_loss_at_interpolate_between_evaluations():
    curve = [(100, 1000, 5.0), (200, 2000, 4.0), (300, 3000, 3.5)]
    assert tokens_to_reach(curve, 4.5) == pytest.approx(1500)
    assert tokens_to_reach(curve, 5.5) == 1000
    assert tokens_to_reach(curve, 3.0) is None
    assert loss_at(curve, 2500) == pytest.approx(3.75)
    assert loss_at(curve, 3000) == pytest.approx(3.5)
    assert loss_at(curve, 4000) is None
    curves = {
        "natural/scratch/seed0": {"condition": "scratch", "seed": 0, "curve": curve},
        # reaches scratch's final 3.5 at 2,000 tokens of 3,000: a third fewer
        "natural/set/seed0": {"condition": "set", "seed": 0, "curve": [(100, 1000, 4.0), (200, 2000, 3.5), (300, 3000, 3.2)]},
        "natural/bad/seed0": {"condition": "bad", "seed": 0, "curve": [(100, 1000, 6.0), (300, 3000, 5.0)]},
    }
    rows = summarize_prepretrain(curves, ["scratch", "set", "bad"])["conditions"]
    assert rows["scratch"]["saving_mean"] == pytest.approx(0.0)
    assert rows["set"]["saving_mean"] == pytest.approx(1 / 3) and rows["set"]["reached"] == "1/1"
    assert rows["set"]["loss_at_scratch_tokens_mean"] == pytest.approx(3.2)
    assert rows["bad"]["saving_mean"] is None and rows["bad"]["reached"] == "0/1"


def test_a_tiny_experiment_runs_end_to_end_and_is_cached(tmp_path):
    corpus = write_corpus(tmp_path / "corpus", code_documents(150))
    exp = yaml.safe_load((REPO / "recipes/reproduce/experiments/prepretrain_mini.yaml").read_text())
    exp.update(
        natural={"flags": f"--task natural --natural_data {corpus} --natural_length 16 --max_source_length 32 "
                          "--max_target_length 17 --num_validation 8 --max_steps 6 --eval_steps 2 --save_steps 2 "
                          "--save_total_limit 1 --selection_rule best --report_to none"},
        synthetic={"flags": "--max_steps 2 --eval_steps 2 --save_steps 2 --num_validation 16 --selection_rule best "
                            "--report_to none --max_length 20"},
        conditions={"scratch": {}, "set": {"synthetic": "set"},
                    "mixture": {"mixture": "natural:0.75,set:0.25", "flags": "--synthetic_decay_steps 4 --max_length 20"}},
        seeds=1)
    spec = tmp_path / "prepretrain_tiny.yaml"
    spec.write_text(yaml.safe_dump(exp))
    out = tmp_path / "out"
    argv = [sys.executable, str(RECIPE), "--experiment", "prepretrain", "--scale", str(spec), "--output_dir", str(out),
            "--pretrain_args", "--per_device_train_batch_size 8 --config_overrides width=32,layers=1,heads=2,ffn=64 "
                               "--disable_tqdm true"]
    env = {**__import__("os").environ, "HF_HUB_OFFLINE": "1"}
    proc = subprocess.run(argv, cwd=REPO, capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    results = json.loads((out / "results.json").read_text())
    curves = results["curves"]
    assert set(curves) == {"synthetic/set/seed0", "natural/scratch/seed0", "natural/set/seed0", "natural/mixture/seed0"}
    scratch = curves["natural/scratch/seed0"]["curve"]
    assert [c[:2] for c in scratch] == [[2, 2 * 8 * 16], [4, 4 * 8 * 16], [6, 6 * 8 * 16]]
    mixture = curves["natural/mixture/seed0"]["curve"]
    assert mixture[-1][1] < 6 * 8 * 16 and mixture[-1][1] - mixture[-2][1] == 2 * 8 * 16  # Set rows gone by step 4
    row = results["summary"]["conditions"]["set"]["seeds"][0]
    assert row["tokens_to_target"] == tokens_to_reach([tuple(c) for c in curves["natural/set/seed0"]["curve"]],
                                                      scratch[-1][2])
    started = json.loads((out / "runs/natural/set/seed0/selected/selection.json").read_text())
    assert started["step"] in (2, 4, 6)
    card = (out / "runs/natural/set/seed0/selected/README.md").read_text()
    assert "with transfer policy `all`" in card
    md = (out / "results.md").read_text()
    assert "| set (synthetic: set) |" in md and "natural tokens saved" in md
    assert (out / "prepretrain_curves.png").read_bytes()[:4] == b"\x89PNG"
    # everything cached: a re-run starts nothing and reports the same numbers
    logs = {p: p.stat().st_size for p in (out / "runs").rglob("log.txt")}
    again = subprocess.run(argv, cwd=REPO, capture_output=True, text=True, env=env, timeout=600)
    assert again.returncode == 0, again.stderr[-3000:]
    assert {p: p.stat().st_size for p in (out / "runs").rglob("log.txt")} == logs
    assert json.loads((out / "results.json").read_text())["summary"] == results["summary"]
