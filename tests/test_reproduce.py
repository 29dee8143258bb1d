"""recipes/reproduce/: the plan of stages, the scales' YAML, the benefit arithmetic, caching, and a tiny
end-to-end run through ``recipes/reproduce.py``."""

import dataclasses
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from conftest import reassemble
from hf_synpre.data.natural import corpus_fingerprint, python_stdlib_files, span_corruption_corpus
from hf_synpre.tasks.span_corruption import sentinel_ids
from hf_synpre.tokenizer import default_tokenizer, protocol_for

REPO = Path(__file__).resolve().parents[1]
RECIPE = REPO / "recipes" / "reproduce.py"  # the command line the README gives
if str(REPO / "recipes") not in sys.path:
    sys.path.insert(0, str(REPO / "recipes"))  # recipes/ is not installed: its package reproduce/ from here

from reproduce.cli import main, resolve_scale  # noqa: E402
from reproduce.conditions import CONDITIONS, parse_conditions  # noqa: E402
from reproduce.plan import plan  # noqa: E402
from reproduce.results import RESULTS_FORMAT, merge, summarize  # noqa: E402
from reproduce.scales import SCALES, SCALES_DIR, load_scale  # noqa: E402

PLANS = REPO / "tests" / "fixtures" / "reproduce_plans.json"


# ----------------------------------------------------------------------------------------- plan
def test_the_mini_core_plan(tmp_path):
    conditions = parse_conditions("core")
    assert conditions == ["random", "natural", "set", "identity", "lime", "stats_set"]
    stages = plan(SCALES["mini"], conditions, ["code_translation"], 3, tmp_path)
    keys = [s.key for s in stages]
    pretrained = ("natural", "set", "identity", "lime")
    assert keys[:13] == ["corpus/natural", *(f"pretrain/{c}/seed{p}" for c in pretrained for p in range(3))]
    finetunes = [s for s in stages if s.kind == "finetune"]
    assert len(finetunes) == 6 * 3 and len(stages) == 1 + 4 * 3 + 18  # 3 pre-training seeds per pre-trained row
    by_key = {s.key: s for s in stages}
    for s in stages:  # dependencies come first, so a scheduler in list order never waits on a later stage
        assert all(keys.index(d) < keys.index(s.key) for d in s.deps)

    def flag(stage, name):  # the last occurrence wins, as on a command line
        return stage.argv[max(i for i, a in enumerate(stage.argv) if a == name) + 1]

    for p in range(3):
        natural = by_key[f"pretrain/natural/seed{p}"]
        assert natural.deps == ["corpus/natural"] and flag(natural, "--seed") == str(p)
        assert flag(natural, "--data") == str(tmp_path / "runs" / "corpus/natural" / "data")  # one corpus for all
        assert flag(natural, "--selection_rule") == "best"
    assert keys.count("corpus/natural") == 1
    assert flag(by_key["pretrain/set/seed1"], "--task") == "set" and flag(by_key["pretrain/set/seed1"], "--max_steps") == "3500"
    assert flag(by_key["pretrain/lime/seed0"], "--max_source_length") == "128"

    stats = by_key["finetune/code_translation/stats_set/seed2"]
    assert stats.deps == ["pretrain/set/seed2"] and stats.seed == 2 and stats.pretrain_seed == 2 and flag(stats, "--seed") == "2"
    assert flag(stats, "--model") == f"from_statistics:{tmp_path / 'runs' / 'pretrain/set/seed2' / 'selected'}:Per Param Mean/SD"
    assert flag(by_key["finetune/code_translation/random/seed0"], "--model") == "from_scratch"
    assert by_key["finetune/code_translation/random/seed0"].deps == []
    assert flag(by_key["finetune/code_translation/set/seed1"], "--model") == str(tmp_path / "runs" / "pretrain/set/seed1" / "selected")
    # fewer pre-training seeds than fine-tuning seeds: seed k starts from pre-training seed k mod 2
    two = {s.key: s for s in plan(SCALES["mini"], ["random", "natural", "set"], ["code_translation"], 3,
                                         tmp_path, pretrain_seeds=2)}
    assert two["finetune/code_translation/set/seed2"].deps == ["pretrain/set/seed0"]
    assert "pretrain/set/seed2" not in two
    assert flag(stats, "--decode") == "false" and flag(stats, "--max_steps") == "200"


def test_a_longer_fine_tuning_budget_gets_stages_of_its_own_from_the_same_pre_training(tmp_path):
    from reproduce.plan import default_finetune_steps

    scale = SCALES["mini"]
    assert default_finetune_steps(scale) == 200
    default = {s.key: s for s in plan(scale, ["random", "set"], ["code_translation"], 2, tmp_path)}
    longer = {s.key: s for s in plan(scale, ["random", "set"], ["code_translation"], 2, tmp_path, finetune_steps=1000)}
    assert "finetune-1000steps/code_translation/set/seed1" in longer and "finetune/code_translation/set/seed1" not in longer
    long_set, short_set = longer["finetune-1000steps/code_translation/set/seed1"], default["finetune/code_translation/set/seed1"]
    assert long_set.deps == short_set.deps == ["pretrain/set/seed1"] and long_set.finetune_steps == 1000
    assert long_set.argv[-2:] == ["--max_steps", "1000"]  # the last --max_steps wins, as on a command line
    assert long_set.argv[:-2] == [a.replace("finetune/", "finetune-1000steps/") for a in short_set.argv]
    assert longer["pretrain/set/seed1"].argv == default["pretrain/set/seed1"].argv  # one pre-training for both
    # the scale's own budget named explicitly is the scale's stages, not a copy of them
    assert {s.key for s in plan(scale, ["set"], ["code_translation"], 1, tmp_path, finetune_steps=200)} == {
        "pretrain/set/seed0", "finetune/code_translation/set/seed0"}
    with pytest.raises(ValueError, match="--finetune_steps must be >= 1"):
        plan(scale, ["set"], ["code_translation"], 1, tmp_path, finetune_steps=0)


def test_the_paper_plan_uses_off_the_shelf_natural_checkpoints(tmp_path):
    stages = plan(SCALES["paper"], parse_conditions("random,natural,set,preattn_ln"),
                         ["cnndm_10k", "mtop"], 1, tmp_path)
    assert [s.key for s in stages if s.kind != "finetune"] == ["pretrain/set/seed0"]  # natural is not pre-trained
    models = {s.key: s.argv[s.argv.index("--model") + 1] for s in stages if s.kind == "finetune"}
    assert models["finetune/mtop/natural/seed0"] == "google-t5/t5-small"
    assert models["finetune/cnndm_10k/natural/seed0"] == "google/t5-v1_1-small"
    assert models["finetune/mtop/preattn_ln/seed0"] == "from_statistics::Pre-attn LN Constant"
    assert "recipes/configs/paper_t5_small.yaml" in stages[0].argv


def test_bad_conditions_say_what_is_valid():
    with pytest.raises(ValueError, match=r"unknown condition 'sett' \(closest: 'set'\); valid: core, table2, table3, ranking, "
                                         "all, random, natural, set"):
        parse_conditions("random,natural,sett")
    with pytest.raises(ValueError, match="must include natural"):
        parse_conditions("random,set")
    # a folder whose table has the baselines takes more rows without re-running them
    assert parse_conditions("table3", measured=["random", "natural", "set"])[0] == "ln_0.05"
    with pytest.raises(ValueError, match="must include natural"):
        parse_conditions("table3", measured=["random"])
    assert parse_conditions("all") == list(CONDITIONS)


def _flag(stage, name):  # the last occurrence wins, as on a command line
    return [v for k, v in zip(stage.argv, stage.argv[1:]) if k == name][-1]


def test_tables_2_and_3_are_whole_and_run_as_the_paper_names_them(tmp_path):
    from hf_synpre.checkpoints import parse_model_spec
    from hf_synpre.statistics import SCHEMES, get_scheme

    t2 = parse_conditions("random,natural,table2")[2:]
    # ten schemes (Pre-attn LN Constant is Table 3's), each from Set and from LIME, reading that source's checkpoint
    assert len(t2) == 2 * 9 and all(CONDITIONS[n].table == 2 for n in t2)
    stages = {s.key: s for s in plan(SCALES["mini"], ["random", "natural", *t2], ["code_translation"], 1, tmp_path,
                                     pretrain_seeds=1)}
    schemes = {}
    for name in t2:
        kind, source, scheme = parse_model_spec(_flag(stages[f"finetune/code_translation/{name}/seed0"], "--model"))
        assert kind == "from_statistics" and source == str(tmp_path / "runs" / f"pretrain/{CONDITIONS[name].source}/seed0"
                                                            / "selected")
        schemes.setdefault(CONDITIONS[name].source, []).append(get_scheme(scheme).name)
    assert schemes["set"] == schemes["lime"] and set(schemes["set"]) == set(SCHEMES) - {"Pre-attn LN Constant"}
    # Table 3: the authors' sweep, in order, no pre-training, each value reaching the scheme
    t3 = parse_conditions("random,natural,table3")[2:]
    values = []
    for name in t3:
        assert CONDITIONS[name].table == 3 and CONDITIONS[name].pretrain is None
        kind, source, scheme = parse_model_spec(CONDITIONS[name].model)
        assert kind == "from_statistics" and source is None
        values.append(get_scheme(scheme).value)
    assert values == [0.05, 0.1, 0.2, 0.4, 0.6, 0.8, 1.0]


def test_unknown_downstream_task_is_refused_before_any_work(tmp_path):
    with pytest.raises(ValueError, match="code_translation"):
        main(["--tasks", "code_translaton", "--output_dir", str(tmp_path)])
    assert not any(tmp_path.iterdir())


def test_plans_and_scales_are_those_a_cache_from_the_single_file_recipe_holds():
    """A cache made by the recipe before it became a package (runs/<stage>/stage.json holds each stage's argv)
    is still recognised: the same stage keys, argv lists word for word, dependencies and seeds."""
    pinned = json.loads(PLANS.read_text())
    for name, fields in pinned["scales"].items():  # every field the Scale held as Python tuples, now read from YAML
        now = json.loads(json.dumps(dataclasses.asdict(SCALES[name])))
        # a task's flags may be added (a row the pinned plans do not have), never changed
        task_flags = now.pop("pretrain_task_flags")
        assert {t: task_flags[t] for t in fields["pretrain_task_flags"]} == fields["pretrain_task_flags"], name
        fields = {k: v for k, v in fields.items() if k != "pretrain_task_flags"}
        assert {k: now[k] for k in fields} == fields, name
        # fields added since keep their defaults in the pinned scales: the plans below prove the argv unchanged
        assert {k: v for k, v in now.items() if k not in fields} == {"natural_corpus": "span_corruption"}, name
    for case, fixture in pinned["plans"].items():
        call = dict(fixture["call"])
        scale, spec, tasks, seeds = (SCALES[call.pop("scale")], call.pop("conditions"), call.pop("tasks"),
                                     call.pop("seeds"))
        if spec == "all":  # "all" has grown since (Tables 2-3 whole); the pinned plan is of the ten rows it had
            spec = "random,natural,set,identity,lime,nonsense,nesting,stats_set,stats_lime,preattn_ln"
        stages = plan(scale, parse_conditions(spec), tasks, seeds, Path(pinned["root"]), **call)
        got = [dataclasses.asdict(s) for s in stages]
        assert [s["key"] for s in got] == [s["key"] for s in fixture["stages"]], case
        for mine, theirs in zip(got, fixture["stages"]):
            assert {k: mine[k] for k in theirs} == theirs, (case, mine["key"])
            assert {k: v for k, v in mine.items() if k not in theirs} == {"finetune_steps": None}  # added since


def _scale_file(tmp_path, edit):
    raw = yaml.safe_load((SCALES_DIR / "mini.yaml").read_text())
    edit(raw)
    path = tmp_path / "custom.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


@pytest.mark.parametrize("edit, message", [
    (lambda r: r.update(jbos=2), r"jbos: unknown key; valid here: description, tasks, pretrain"),
    (lambda r: r.pop("metric"), r"metric: missing \(required\)"),
    (lambda r: r.update(metric="exact_match"), r"metric: expected one of test_token_accuracy, report"),
    (lambda r: r.update(jobs=0), r"jobs: expected a whole number >= 1, got 0"),
    (lambda r: r.update(offline="yes please"), r"offline: expected true or false"),
    (lambda r: r.update(tasks="code_translation"), r"tasks: expected a non-empty list of names"),
    (lambda r: r["pretrain"].update(flags=["--max_steps", 3500]), r"pretrain.flags: expected one string"),
    (lambda r: r["pretrain"].update(flags="max_steps 3500"), r"pretrain.flags: flags must start with a --flag"),
    (lambda r: r["pretrain"].update(config="recipes/configs/nope.yaml"),
     r"pretrain.config: no such file recipes/configs/nope.yaml"),
    (lambda r: r["pretrain"]["task_flags"].update(nonsense="--max_length 9"),
     r"pretrain.task_flags: unknown pre-training task 'nonsense'; valid: natural, set"),
    (lambda r: r["pretrain"]["task_flags"].update(lime="--max_length '120"),
     r"pretrain.task_flags: lime: cannot split"),
    (lambda r: r["finetune"].update(stepz=1), r"finetune.stepz: unknown key; valid here: config, flags"),
    (lambda r: r.update(natural_checkpoints={"mtop": "google-t5/t5-small"}),
     r"natural_checkpoints: no model for task 'code_translation' of tasks"),
])
def test_a_bad_scale_file_is_refused_in_one_line_naming_the_key(tmp_path, edit, message):
    path = _scale_file(tmp_path, edit)
    with pytest.raises(ValueError, match=message) as err:
        load_scale(path)
    assert str(err.value).startswith(f"{path}: ") and "\n" not in str(err.value)


def test_a_scale_is_a_shipped_name_or_any_yaml_file(tmp_path):
    custom = load_scale(_scale_file(tmp_path, lambda r: r.update(jobs=1)))
    assert custom.name == "custom" and custom.jobs == 1
    assert dataclasses.replace(custom, name="mini", jobs=2) == SCALES["mini"]
    with pytest.raises(ValueError, match="unknown scale 'minii'; valid: mini, mini_causal, paper, or the path"):
        load_scale("minii")
    (tmp_path / "broken.yaml").write_text("tasks: [a\n")
    with pytest.raises(ValueError, match="broken.yaml: not valid YAML"):
        load_scale(tmp_path / "broken.yaml")


def test_the_mini_scale_states_its_model_size_and_finetunes_the_pretrained_architecture():
    """Random Init and the pre-trained checkpoints must be the same model (cpu_default.yaml's), and the
    description says how many parameters that is."""
    from hf_synpre.modeling import build_t5

    mini = SCALES["mini"]
    pretrain = yaml.safe_load((REPO / mini.pretrain_config).read_text())
    flags = mini.finetune_flags
    overrides = dict(kv.split("=") for kv in flags[flags.index("--config_overrides") + 1].split(","))
    assert {k: int(v) for k, v in overrides.items()} == {k: pretrain[k] for k in overrides}
    model = build_t5({k: int(v) for k, v in overrides.items()})
    millions = sum(p.numel() for p in model.parameters()) / 1e6  # the embedding and lm_head are one tensor
    assert f"{millions:.2f}" == "1.44" and "(1.44M parameters)" in mini.description


def test_every_simple_task_row_of_the_mini_scale_fits_its_lengths():
    """The ranking pre-trains each of the 18 simple tasks with the CPU default's lengths; a task whose
    examples are longer (Duplicate: targets twice the body) needs its own limits in the scale, or
    recipes/pretrain.py refuses it after the ranking has started."""
    from hf_synpre.data.validation import make_validation_set
    from reproduce.conditions import GROUPS

    scale = SCALES["mini"]
    config = yaml.safe_load((REPO / scale.pretrain_config).read_text())
    protocol = protocol_for(default_tokenizer())
    for name in GROUPS["ranking"]:
        task = CONDITIONS[name].pretrain
        flags = list(scale.pretrain_task_flags.get(task, ()))
        limits = {k: int(flags[flags.index(f"--{k}") + 1]) if f"--{k}" in flags else config[k]
                  for k in ("min_length", "max_length", "max_source_length", "max_target_length")}
        examples = make_validation_set([task], protocol, 1024, (limits["min_length"], limits["max_length"]), 0).examples
        assert int(examples.inputs.lengths.max()) + 1 <= limits["max_source_length"], task
        assert int(examples.targets.lengths.max()) + 1 <= limits["max_target_length"], task


def test_the_package_runs_as_a_module_and_by_its_old_path_alike(tmp_path):
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    argv = ["--scale", "paper", "--conditions", "random,natural,set", "--tasks", "mtop", "--seeds", "1",
            "--dry_run", "--output_dir", str(tmp_path)]
    by_path = subprocess.run([sys.executable, str(RECIPE), *argv], cwd=REPO, capture_output=True, text=True, env=env)
    as_module = subprocess.run([sys.executable, "-m", "recipes.reproduce", *argv], cwd=REPO, capture_output=True,
                               text=True, env=env)
    assert by_path.returncode == 0 and as_module.returncode == 0, by_path.stderr[-2000:] + as_module.stderr[-2000:]
    assert by_path.stdout == as_module.stdout and "[pretrain/set/seed0] accelerate launch" in by_path.stdout
    bad = subprocess.run([sys.executable, str(RECIPE), "--scale", "giant"], cwd=REPO, capture_output=True, text=True,
                         env=env)
    assert bad.returncode == 2 and "reproduce.py: error: unknown scale 'giant'" in bad.stderr


# ----------------------------------------------------------------------------------------- arithmetic
def _results(values):
    return {"pretraining": [{"condition": "set", "seed": p, "validation_token_accuracy": a, "step": st,
                             "rule": "first_above", "threshold_reached": a >= 0.99}
                            for p, (a, st) in enumerate([(0.995, 2750), (0.991, 3000)])],
            "finetuning": [{"condition": c, "task": t, "seed": k, "metric": v}
                           for (c, t), vs in values.items() for k, v in enumerate(vs)]}


def test_benefit_is_measured_between_random_and_natural_per_task_then_averaged():
    values = {("random", "a"): [0.40, 0.42], ("natural", "a"): [0.60, 0.62],
              ("set", "a"): [0.50, 0.52],  # halfway on task a
              ("random", "b"): [0.10, 0.10], ("natural", "b"): [0.30, 0.20],
              ("set", "b"): [0.30, 0.20]}  # all of natural's benefit on task b
    summary = summarize(_results(values), ["random", "natural", "set"], ["a", "b"])
    row = summary["conditions"]["set"]
    assert row["tasks"]["a"]["benefit"] == pytest.approx(50.0)
    assert row["tasks"]["b"]["benefit"] == pytest.approx(100.0)
    assert row["benefit"] == pytest.approx(75.0)
    assert row["tasks"]["a"]["mean"] == pytest.approx(0.51) and row["tasks"]["a"]["std"] == pytest.approx(math.sqrt(2e-4))
    # seed by seed: task a gives 50, 50; task b gives 100, 100 -> the average is 75 on both seeds
    assert row["benefit_std"] == pytest.approx(0.0, abs=1e-9)
    assert row["pretraining_token_accuracy"] == pytest.approx(0.993) and row["pretraining_steps"] == [2750, 3000]
    assert row["pretraining_learnt"] == 2 and row["pretraining_seeds"] == 2
    assert summary["conditions"]["random"]["benefit"] == 0.0 and summary["conditions"]["natural"]["benefit"] == 100.0
    margin = summary["margins"]["a"]
    assert margin["natural_minus_random"] == pytest.approx(0.20)
    assert margin["margin_over_noise"] == pytest.approx(0.20 / math.sqrt(2e-4))


def test_statistics_rows_report_their_source_pretraining():
    values = {("random", "a"): [0.4], ("natural", "a"): [0.6], ("stats_set", "a"): [0.45]}
    summary = summarize(_results(values), ["random", "natural", "stats_set"], ["a"])
    row = summary["conditions"]["stats_set"]
    assert row["benefit"] == pytest.approx(25.0) and row["table"] == 2
    assert row["pretraining_token_accuracy"] == pytest.approx(0.993)  # the Set checkpoints its statistics come from
    assert row["pretraining_steps"] == [2750, 3000]


def test_fine_tunes_from_a_re_run_pre_training_are_flagged_in_the_table():
    """The merge wart: pre-training re-run after some fine-tunes; the table shows the new pre-training, so a
    row whose fine-tunes started from the old checkpoints must say it mixes two generations."""
    from reproduce.report import render_markdown

    values = {("random", "a"): [0.4, 0.4], ("natural", "a"): [0.6, 0.6], ("set", "a"): [0.5, 0.5],
              ("stats_set", "a"): [0.45, 0.45]}
    results = _results(values)
    for p, fp in zip(results["pretraining"], ("new0", "new1")):
        p["checkpoint_fingerprint"] = fp
    sources = {("set", 0): "old0", ("set", 1): "new1", ("stats_set", 0): "new0", ("stats_set", 1): None}
    for r in results["finetuning"]:
        r["key"] = f"finetune/a/{r['condition']}/seed{r['seed']}"
        r["source_fingerprint"] = sources.get((r["condition"], r["seed"]))
    summary = summarize(results, ["random", "natural", "set", "stats_set"], ["a"])
    assert summary["conditions"]["set"]["finetunes_from_other_checkpoints"] == ["finetune/a/set/seed0"]
    assert summary["conditions"]["stats_set"]["finetunes_from_other_checkpoints"] == []
    assert summary["conditions"]["stats_set"]["finetunes_source_unrecorded"] == 1
    md = render_markdown(SCALES["mini"], summary, results, ["a"], "cmd")
    assert "**Mixed checkpoints:** Set: 1 fine-tune(s) started from another checkpoint" in md
    assert "predate checkpoint fingerprints" in md and "Per Param Mean/SD" in md


def test_the_18_simple_tasks_are_ranked_by_benefit_with_what_they_learnt(tmp_path):
    from reproduce.conditions import GROUPS
    from reproduce.report import plot, ranking_rows, render_markdown

    assert len(GROUPS["ranking"]) == 18 and GROUPS["ranking"][:2] == ("identity", "task_reverse")
    assert "set" in GROUPS["ranking"] and "task_set" not in CONDITIONS
    values = {("random", "a"): [0.4, 0.4], ("natural", "a"): [0.6, 0.6], ("set", "a"): [0.5, 0.52],
              ("identity", "a"): [0.45, 0.45], ("task_reverse", "a"): [0.55, 0.57], ("task_sort", "a"): [0.35, 0.37]}
    results = _results(values)
    results["pretraining"] += [{"condition": "task_reverse", "seed": p, "validation_token_accuracy": 0.9, "step": 5,
                                "rule": "first_above", "threshold_reached": False, "curve": []} for p in (0, 1)]
    for p in results["pretraining"]:
        p["curve"] = []
    for r in results["finetuning"]:
        r["validation_history"] = [{"step": 1, "token_accuracy": r["metric"]}]
    summary = summarize(results, ["random", "natural", "set", "identity", "task_reverse", "task_sort"], ["a"])
    ranked = [n for n, _ in ranking_rows(summary)]
    assert ranked == ["task_reverse", "set", "identity", "task_sort"]  # 80, 55, 25, -20 %
    md = render_markdown(SCALES["mini"], summary, results, ["a"], "cmd")
    assert "| 1 | Reverse | 0/2 | 0.900 | 80 ± 7 |" in md and "| 4 | Sort | — | — | -20 ± 7 |" in md
    assert "## 4 of the 18 simple tasks ranked by benefit" in md  # a ranking measured in slices says so
    written = plot(summary, results, ["a"], tmp_path)
    assert (tmp_path / "ranking.png") in written and (tmp_path / "ranking.png").read_bytes()[:4] == b"\x89PNG"
    # the curves' panel keeps to Table 1's rows (the ranked tasks have their bar plot)
    import matplotlib.pyplot as plt

    from reproduce.report import _mean_curves

    fig, ax = plt.subplots()
    table1 = {n for n, r in summary["conditions"].items() if r["table"] == 1}
    _mean_curves(ax, summary, results["finetuning"], "a", {n: "C0" for n in CONDITIONS}, table1)
    assert ax.get_legend_handles_labels()[1] == ["Random Init", "Natural pre-training", "Set", "Identity"]
    plt.close(fig)


def test_the_budget_check_compares_benefit_and_order_at_both_budgets(tmp_path):
    from reproduce.report import budget_rows, plot, render_markdown

    short = {("random", "a"): [0.40, 0.40], ("natural", "a"): [0.60, 0.60], ("set", "a"): [0.50, 0.52],
             ("identity", "a"): [0.45, 0.45]}
    long = {("random", "a"): [0.50, 0.50], ("natural", "a"): [0.70, 0.70], ("set", "a"): [0.54, 0.54],
            ("identity", "a"): [0.60, 0.62]}
    results = _results(short)
    results["finetuning"] += [{**r, "finetune_steps": 1000} for r in _results(long)["finetuning"]]
    for p in results["pretraining"]:
        p["curve"] = []
    for r in results["finetuning"]:
        r["validation_history"] = [{"step": 50, "token_accuracy": r["metric"]}]
    summary = summarize(results, ["random", "natural", "set", "identity"], ["a"])
    assert summary["conditions"]["set"]["benefit"] == pytest.approx(55.0)  # the scale's budget only
    assert set(summary["budgets"]) == {"1000"}
    assert summary["budgets"]["1000"]["set"]["benefit"] == pytest.approx(20.0)  # against the 1000-step baselines
    assert summary["budgets"]["1000"]["identity"]["benefit"] == pytest.approx(55.0)
    assert [n for n, _, _ in budget_rows(summary, "1000")] == ["random", "natural", "set", "identity"]
    md = render_markdown(SCALES["mini"], summary, results, ["a"], "cmd")
    assert "## Budget check: fine-tuning for 1,000 steps instead of 200 steps" in md
    assert "| Set | 0.510 ± 0.014 | 55 ± 7 | 0.540 ± 0.000 | 20 ± 0 |" in md
    assert "at 200 steps: Set > Identity; at 1,000 steps: Identity > Set (changed)." in md
    written = plot(summary, results, ["a"], tmp_path)
    assert (tmp_path / "budget_1000steps.png") in written
    # results.md names every plot the folder gets, the budget check's among them
    plots_line = next(line for line in md.splitlines() if line.startswith("Plots: "))
    assert sorted(p.name for p in written) == sorted(plots_line.split("`")[1::2])
    assert (tmp_path / "budget_1000steps.png").read_bytes()[:4] == b"\x89PNG"
    # without another budget the table and the plots are as before
    plain = summarize(_results(short), ["random", "natural", "set"], ["a"])
    plain_md = render_markdown(SCALES["mini"], plain, _results(short), ["a"], "c")
    assert plain["budgets"] == {} and "Budget check" not in plain_md and "budget_" not in plain_md


def test_a_re_run_is_checked_against_the_reference_tables_plus_minus(tmp_path):
    """--compare_to: each value of this table inside or outside another run's stated ±, and stages that ran
    with other flags named (then it is not the same experiment)."""
    from reproduce.report import render_markdown
    from reproduce.results import compare, load_reference

    ref_values = {("random", "a"): [0.40, 0.42], ("natural", "a"): [0.60, 0.64], ("set", "a"): [0.50, 0.56]}
    ref = {"format": RESULTS_FORMAT, "scale": "mini",
           "summary": summarize(_results(ref_values), ["random", "natural", "set"], ["a"]),
           "stages": {"pretrain/set/seed0": {"argv": ["--task", "set", "--output_dir", "/old/runs/pretrain/set/seed0"]},
                      "pretrain/set/seed1": {"argv": ["--task", "set", "--output_dir", "/old/runs/pretrain/set/seed1"]}}}
    (tmp_path / "results.json").write_text(json.dumps(ref))
    label, doc = load_reference(str(tmp_path), SCALES["mini"])
    assert label == str(tmp_path) and doc["summary"] == json.loads(json.dumps(ref["summary"]))
    # random inside (0.41 ± 0.014), natural outside (0.70 vs 0.62 ± 0.028), set's benefit 50 vs 65 ± ...
    values = {("random", "a"): [0.41, 0.41], ("natural", "a"): [0.70, 0.70], ("set", "a"): [0.55, 0.55]}
    summary = summarize(_results(values), ["random", "natural", "set"], ["a"])
    stages = {"pretrain/set/seed0": {"argv": ["--task", "set", "--output_dir", "/new/x/runs/pretrain/set/seed0"]},
              "pretrain/set/seed1": {"argv": ["--task", "set", "--max_steps", "9",
                                              "--output_dir", "/new/x/runs/pretrain/set/seed1"]}}
    c = compare(summary, doc, ["a"], stages)
    rows = {r["condition"]: r for r in c["rows"]}
    assert rows["random"]["tasks"]["a"]["inside"] and not rows["natural"]["tasks"]["a"]["inside"]
    assert "benefit" not in rows["random"] and "benefit" not in rows["natural"]  # 0 and 100 by definition
    ref_set = ref["summary"]["conditions"]["set"]
    assert rows["set"]["benefit"] == pytest.approx(100 * (0.55 - 0.41) / (0.70 - 0.41))  # 48 %
    assert rows["set"]["benefit_inside"] == (abs(rows["set"]["benefit"] - ref_set["benefit"]) <= ref_set["benefit_std"])
    assert c["cells"] == 3 and c["benefits"] == 1
    assert c["stages_with_other_flags"] == ["pretrain/set/seed1"]  # the root differs everywhere; only seed1's flags
    md = render_markdown(SCALES["mini"], summary, _results(values), ["a"], "cmd", comparison={"reference": label, **c})
    assert f"## Against `{label}`" in md and "| Natural pre-training | 0.700 | 0.620 ± 0.028 | **no** |" in md
    assert "**Not the same experiment:** 1 stage(s) ran with other flags than the reference's (pretrain/set/seed1)" in md
    # a reference that cannot be one is refused in one line naming the fix
    with pytest.raises(ValueError, match="no results.json there"):
        load_reference(str(tmp_path / "missing"), SCALES["mini"])
    with pytest.raises(ValueError, match="of scale 'mini', this run's is 'mini_causal'"):
        load_reference(str(tmp_path / "results.json"), SCALES["mini_causal"])


def test_a_later_invocation_merges_into_the_table_and_never_drops_a_row():
    scale = SCALES["mini"]
    first = {"format": RESULTS_FORMAT, "scale": "mini",
             "pretraining": [{"key": "pretrain/set/seed0", "condition": "set", "seed": 0}],
             "finetuning": [{"key": f"finetune/a/{c}/seed0", "condition": c, "metric": m}
                            for c, m in (("random", 0.4), ("natural", 0.6), ("set", 0.5))]}
    again = {"pretraining": [], "finetuning": [{"key": "finetune/a/random/seed0", "condition": "random", "metric": 0.41},
                                               {"key": "finetune/a/lime/seed0", "condition": "lime", "metric": 0.45}]}
    merged = merge(first, again, scale)
    assert {r["key"]: r["metric"] for r in merged["finetuning"]} == {
        "finetune/a/random/seed0": 0.41, "finetune/a/lime/seed0": 0.45,  # re-run rows replace theirs
        "finetune/a/natural/seed0": 0.6, "finetune/a/set/seed0": 0.5}  # the rest stay
    assert merged["pretraining"] == first["pretraining"]
    with pytest.raises(ValueError, match="another format or scale"):
        merge({"scale": "mini", "finetuning": []}, again, scale)  # the one-pre-training-seed format


# ----------------------------------------------------------------------------------------- natural corpus
def test_natural_corpus_is_span_corrupted_stdlib_with_held_out_chunks():
    tok = default_tokenizer()
    files = python_stdlib_files()[:4]
    ds = span_corruption_corpus(files, tok, inputs_length=32, num_validation=8, min_train_examples=0, seed=5)
    sentinels = set(sentinel_ids(protocol_for(tok)).tolist())
    for row in list(ds["train"].select(range(20))) + list(ds["validation"]):
        assert len(row["inputs"]) == 31  # exactly 32 with the EOS the collator appends
        assert row["targets"][0] == max(sentinels)  # <extra_id_0> opens every target
        assert any(t in sentinels for t in row["inputs"])
    # filling the sentinels back in gives the original text, chunk after chunk (the validation is the end)
    raw = sum(tok([Path(f).read_text(encoding="utf-8", errors="replace") for f in files],
                  add_special_tokens=False)["input_ids"], [])

    def restore(row):
        return reassemble(row["inputs"], row["targets"], sentinels)

    chunk = len(restore(ds["train"][0]))
    n_train = len(ds["train"])
    assert restore(ds["train"][0]) == raw[:chunk]
    assert restore(ds["validation"][0]) == raw[n_train * chunk:(n_train + 1) * chunk]
    # more epochs of the same chunks with fresh masks when more examples are asked for
    more = span_corruption_corpus(files, tok, inputs_length=32, num_validation=8, min_train_examples=n_train + 1, seed=5)
    assert len(more["train"]) == 2 * n_train
    assert more["train"][n_train]["inputs"] != more["train"][0]["inputs"]
    assert restore(more["train"][n_train]) == raw[:chunk]
    assert more["validation"]["inputs"] == ds["validation"]["inputs"]
    assert corpus_fingerprint(files) == corpus_fingerprint(list(files)) != corpus_fingerprint(files[:3])
    with pytest.raises(ValueError, match="not more than num_validation"):
        span_corruption_corpus(files[:1], tok, inputs_length=32, num_validation=10**6)


def test_the_decoder_only_natural_corpus_is_the_same_text_as_plain_chunks():
    from hf_synpre.data.natural import language_modeling_corpus

    tok = default_tokenizer()
    files = python_stdlib_files()[:4]
    ds = language_modeling_corpus(files, tok, length=32, num_validation=8)
    raw = sum(tok([Path(f).read_text(encoding="utf-8", errors="replace") for f in files],
                  add_special_tokens=False)["input_ids"], [])
    n_train = len(ds["train"])
    assert len(raw) // 32 == n_train + 8  # every whole chunk, the short tail dropped
    assert all(row["inputs"] == [] and len(row["targets"]) == 32 for row in ds["validation"])
    assert sum(ds["train"]["targets"], []) + sum(ds["validation"]["targets"], []) == raw[:(n_train + 8) * 32]
    with pytest.raises(ValueError, match="not more than num_validation"):
        language_modeling_corpus(files[:1], tok, length=32, num_validation=10**6)


# ----------------------------------------------------------------------------------------- end to end
TINY = [
    "--scale", "mini", "--conditions", "random,natural,preattn_ln", "--seeds", "2", "--natural_files", "3",
    "--natural_validation", "8", "--natural_examples", "200",
    "--pretrain_args", "--max_steps 4 --eval_steps 2 --save_steps 2 --num_validation 16 --d_model 32 --d_kv 8 "
                       "--d_ff 64 --num_layers 1 --num_decoder_layers 1",
    "--finetune_args", "--max_steps 4 --eval_steps 2 --save_steps 4 --learning_rate 0.1 --max_train_samples 32 --max_eval_samples 8 "
                       "--infer_eval_examples 8 --max_source_length 32 --max_target_length 32 "
                       "--config_overrides d_model=32,d_kv=8,d_ff=64,num_layers=1,num_decoder_layers=1,num_heads=4,vocab_size=4100",
]


def test_tiny_reproduction_writes_tables_and_plots_and_reruns_from_cache(tmp_path, code_translation_root, monkeypatch):
    out = tmp_path / "mini"
    monkeypatch.setenv("SYNPRE_DATA_DIR", str(code_translation_root))  # the real copy, or a stand-in in its format
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    proc = subprocess.run([sys.executable, str(RECIPE), *TINY, "--output_dir", str(out)], cwd=REPO,
                          capture_output=True, text=True, env=env)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    results = json.loads((out / "results.json").read_text())
    assert len(results["finetuning"]) == 3 * 2 and results["seeds"] == 2
    assert {(p["condition"], p["seed"]) for p in results["pretraining"]} == {("natural", 0), ("natural", 1)}
    assert [r["pretrain_seed"] for r in results["finetuning"] if r["condition"] == "natural"] == [0, 1]
    assert results["format"] == RESULTS_FORMAT and results["invocations"][0]["conditions"] == [
        "random", "natural", "preattn_ln"]
    assert results["natural_corpus"]["source"].endswith("(3 files)")
    for r in results["finetuning"]:
        run = json.loads((out / "runs" / f"finetune/code_translation/{r['condition']}/seed{r['seed']}" /
                          "finetune_results.json").read_text())
        assert r["metric"] == run["test"]["teacher_forced"]["token_accuracy"]  # the reported number is the run's
        assert r["selected_step"] == run["selection"]["step"]
    table = results["summary"]["conditions"]
    assert table["random"]["benefit"] == 0.0 and table["natural"]["benefit"] == pytest.approx(100.0)
    assert "benefit" in table["preattn_ln"] and table["preattn_ln"]["table"] == 3
    md = (out / "results.md").read_text()
    assert "## Table 1: pre-training data" in md and "## Table 3" in md and "Pre-attn LN Constant 0.4" in md
    assert "gap / max std" in md
    for png in ("benefit.png", "validation_curves.png"):
        assert (out / png).read_bytes()[:4] == b"\x89PNG"

    # Everything is cached: a re-run starts no stage and reports the same numbers.
    logs = {p: p.stat().st_size for p in (out / "runs").rglob("log.txt")}
    # Checked against itself (--compare_to): every value inside its own ±.
    again = subprocess.run([sys.executable, str(RECIPE), *TINY, "--output_dir", str(out), "--compare_to", str(out)],
                           cwd=REPO, capture_output=True, text=True, env=env)
    assert again.returncode == 0, again.stderr[-3000:]
    assert {p: p.stat().st_size for p in (out / "runs").rglob("log.txt")} == logs
    rerun = json.loads((out / "results.json").read_text())
    assert rerun["summary"] == results["summary"]
    assert rerun["comparison"]["reference"] == str(out) and rerun["comparison"]["stages_with_other_flags"] == []
    assert "1 of 1 benefit % and 3 of 3 accuracies lie inside the reference's ±." in (out / "results.md").read_text()

    # The budget check: the same pre-training fine-tuned longer, in stages of its own beside the table's.
    pretrain_logs = {p: n for p, n in logs.items() if "pretrain" in p.parts}
    longer = subprocess.run([sys.executable, str(RECIPE), *TINY, "--conditions", "random,natural", "--finetune_steps", "6",
                             "--output_dir", str(out)], cwd=REPO, capture_output=True, text=True, env=env)
    assert longer.returncode == 0, longer.stderr[-3000:]
    assert {p: p.stat().st_size for p in pretrain_logs} == pretrain_logs  # nothing pre-trained again
    both = json.loads((out / "results.json").read_text())
    budget = [r for r in both["finetuning"] if r.get("finetune_steps") == 6]
    assert sorted((r["condition"], r["seed"]) for r in budget) == [("natural", 0), ("natural", 1), ("random", 0), ("random", 1)]
    for r in budget:
        run = json.loads((out / "runs" / r["key"] / "finetune_results.json").read_text())
        assert r["key"].startswith("finetune-6steps/") and run["validation_history"][-1]["step"] == 6
    assert both["summary"]["conditions"] == results["summary"]["conditions"]  # the 4-step table is untouched
    assert both["summary"]["budgets"]["6"]["natural"]["benefit"] == pytest.approx(100.0)
    assert "## Budget check: fine-tuning for 6 steps instead of 200 steps" in (out / "results.md").read_text()

    # A cached stage made with other settings is refused, not silently reused.
    changed = [a.replace("--max_steps 4 --eval_steps 2", "--max_steps 6 --eval_steps 2") for a in TINY]
    with pytest.raises(ValueError, match="was made with other settings"):
        main([*changed, "--output_dir", str(out)])


TINY_CAUSAL = [
    "--family", "causal", "--scale", "mini", "--conditions", "random,natural,set,stats_set", "--seeds", "1",
    "--pretrain_seeds", "1", "--natural_files", "3", "--natural_validation", "8",
    "--pretrain_args", "--max_steps 4 --eval_steps 2 --save_steps 2 --num_validation 16 --per_device_train_batch_size 8 "
                       "--config_overrides width=32,layers=1,heads=2,ffn=64",
    "--finetune_args", "--max_steps 4 --eval_steps 2 --save_steps 4 --learning_rate 0.1 --max_train_samples 32 --max_eval_samples 8 "
                       "--infer_eval_examples 8 --max_source_length 32 --max_target_length 32 "
                       "--config_overrides width=32,layers=1,heads=2,ffn=64,vocab=4224",
]


def test_the_causal_mini_scale_finetunes_the_pretrained_architecture():
    """Random Init (--config_name llama + overrides) is the architecture cpu_causal.yaml pre-trains."""
    from hf_synpre.modeling_causal import causal_fields

    scale = SCALES["mini_causal"]
    config = yaml.safe_load((REPO / scale.pretrain_config).read_text())
    flags = dict(zip(scale.finetune_flags, scale.finetune_flags[1:]))
    assert config["family"] == "llama" and flags["--config_name"] == "llama"
    overrides = causal_fields("llama", flags["--config_overrides"])
    assert {k: v for k, v in overrides.items() if k != "vocab_size"} == causal_fields("llama", config["model"])
    assert overrides["vocab_size"] == 4224  # the shipped 4,100 ids + <sep>, rounded up to 128 as pretrain.py does
    assert scale.natural_corpus == "language_modeling"
    assert resolve_scale("mini", "causal") is scale and resolve_scale("mini") is SCALES["mini"]
    with pytest.raises(ValueError, match="--family causal has no 'paper' scale"):
        resolve_scale("paper", "causal")


def test_tiny_causal_reproduction_runs_every_row_end_to_end(tmp_path, code_translation_root, monkeypatch):
    out = tmp_path / "mini_causal"
    monkeypatch.setenv("SYNPRE_DATA_DIR", str(code_translation_root))
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    proc = subprocess.run([sys.executable, str(RECIPE), *TINY_CAUSAL, "--output_dir", str(out)], cwd=REPO,
                          capture_output=True, text=True, env=env)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    results = json.loads((out / "results.json").read_text())
    assert results["scale"] == "mini_causal" and len(results["finetuning"]) == 4
    for r in results["finetuning"]:
        run = json.loads((out / "runs" / f"finetune/code_translation/{r['condition']}/seed0" /
                          "finetune_results.json").read_text())
        assert run["model"]["family"] == "llama" and r["metric"] == run["test"]["teacher_forced"]["token_accuracy"]
    natural = out / "runs" / "pretrain/natural/seed0" / "selected"
    assert json.loads((natural / "config.json").read_text())["model_type"] == "llama"
    corpus = json.loads((out / "runs" / "corpus/natural/data/corpus.json").read_text())
    assert corpus["objective"] == "language_modeling"
    assert "benefit" in results["summary"]["conditions"]["stats_set"]


def test_without_matplotlib_the_reproduction_refuses_before_any_work(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib -> ImportError
    out = tmp_path / "mini"
    with pytest.raises(ValueError, match=r"matplotlib is not installed: `pip install -e \.`"):
        main([*TINY, "--output_dir", str(out)])
    assert not (out / "runs").exists()
