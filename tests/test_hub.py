"""Publishing to the Hub, tested over real HTTP with the real clients against local servers.

Writes go to ``tests/synpre_testkit/hub_server.HubServer`` (the Hub's create-repo / preupload / LFS / commit API over
plain git repositories); reads go through olah serving those same repositories offline. Publishing runs
in this process (``HF_ENDPOINT`` = the write server); loading runs in a fresh interpreter whose
``HF_ENDPOINT`` is olah, with its own ``HF_HOME``, exactly as a user's would. The real Hub is never
contacted: both servers listen on 127.0.0.1 and the tests start and stop them.
"""

import importlib.util
import json
import os
import subprocess
import sys
import textwrap
import time
import types
from pathlib import Path

import pytest
import yaml
from synpre_testkit.hub_server import HubServer, OlahServer, Token, git_head
from synpre_testkit.recipes import load_recipe

REPO = Path(__file__).resolve().parents[1]
WRITE_TOKEN = "hf_writeTokenThatMustNeverBePrinted"
READ_TOKEN = "hf_readOnlyTokenThatMustNeverBePrinted"
BAD_TOKEN = "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"

pytestmark = pytest.mark.timeout(240)


# ----------------------------------------------------------------------------- servers
@pytest.fixture(scope="module")
def mirrors(tmp_path_factory):
    return tmp_path_factory.mktemp("mirrors")


@pytest.fixture(scope="module")
def hub(mirrors):
    tokens = {
        WRITE_TOKEN: Token("alice", ("alice", "synpre")),
        READ_TOKEN: Token("bob", ("synpre",), role="read"),
    }
    with HubServer(mirrors, tokens) as server:
        yield server


@pytest.fixture(scope="module")
def olah(mirrors, tmp_path_factory):
    if importlib.util.find_spec("olah") is None:
        pytest.fail("olah is not installed; install the test extra: pip install -e '.[test]'")
    with OlahServer(mirrors, tmp_path_factory.mktemp("olah")) as server:
        yield server


@pytest.fixture(autouse=True)
def temp_datasets_cache(tmp_path, monkeypatch):
    """Building a dataset writes Arrow files to the datasets cache: a temp one, not the user's."""
    import datasets

    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", tmp_path / "datasets_cache")


@pytest.fixture
def publishing(hub, tmp_path, monkeypatch):
    """This process talks to the write server: online, no Xet (the server speaks LFS), instant retries."""
    import huggingface_hub.constants as hf_constants
    import huggingface_hub.utils._http as hf_http

    import hf_synpre.hub.client as hub_client

    monkeypatch.setenv("HF_ENDPOINT", hub.endpoint)
    monkeypatch.setenv("HF_TOKEN", WRITE_TOKEN)
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf_home"))
    # huggingface_hub reads these two at import time (conftest imported it offline)
    monkeypatch.setattr(hf_constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(hf_constants, "HF_HUB_DISABLE_XET", True)
    # never a real login of the machine running the tests: HF_TOKEN (set per test) is the only credential
    monkeypatch.setattr(hf_constants, "HF_TOKEN_PATH", str(tmp_path / "no_stored_token"))
    monkeypatch.setattr(hf_constants, "HF_STORED_TOKENS_PATH", str(tmp_path / "no_stored_tokens"))
    monkeypatch.delenv("HF_OIDC_RESOURCE", raising=False)
    waits = []
    monkeypatch.setattr(hub_client, "_sleep", waits.append)
    # huggingface_hub's own backoff sleeps 1+2+4+8+8 s per failing request; the count is what we test
    monkeypatch.setattr(hf_http, "time", types.SimpleNamespace(**{**vars(time), "sleep": lambda s: None}))
    hub.clear_faults()
    return types.SimpleNamespace(waits=waits)


CHILD = textwrap.dedent(
    """
    # A user's session: HF_ENDPOINT is olah, nothing else is configured.
    import json, sys
    from pathlib import Path
    out = Path(sys.argv[1])
    job = json.loads(sys.argv[2])
    if "dataset" in job:
        import datasets
        ds = datasets.load_dataset(job["dataset"])
        json.dump({split: d.to_dict() for split, d in ds.items()}, open(out / "dataset.json", "w"))
        card = datasets.load_dataset_builder(job["dataset"]).info
        json.dump({"splits": {k: v.num_examples for k, v in card.splits.items()}}, open(out / "dataset_info.json", "w"))
    if "model" in job:
        from huggingface_hub import ModelCard
        from safetensors.torch import save_file
        from transformers import T5ForConditionalGeneration
        model = T5ForConditionalGeneration.from_pretrained(job["model"])
        save_file({k: v.detach().clone().contiguous() for k, v in model.state_dict().items()}, str(out / "model.safetensors"))
        json.dump(ModelCard.load(job["model"]).data.to_dict(), open(out / "model_card.json", "w"))
    """
)


def load_through_olah(olah, tmp_path, **job):
    """Run the real ``datasets`` / ``transformers`` clients in a fresh interpreter against olah."""
    out = tmp_path / "loaded"
    out.mkdir(exist_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "HUGGING"))}
    env.update(HF_ENDPOINT=olah.endpoint, HF_HOME=str(tmp_path / "user_hf_home"), HF_HUB_OFFLINE="0", HF_DATASETS_OFFLINE="0")
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, str(out), json.dumps(job)], env=env, capture_output=True, text=True, timeout=180, check=False
    )
    assert proc.returncode == 0, f"loading through olah failed:\n{proc.stderr[-4000:]}\nolah:\n{olah.output()[-3000:]}"
    return out


def tiny_t5(seed=0):
    from transformers import T5Config

    from hf_synpre.modeling import build_t5

    config = T5Config(vocab_size=64, d_model=16, d_kv=4, d_ff=32, num_layers=2, num_decoder_layers=2, num_heads=2)
    return build_t5(config, seed=seed)


def saved_stats_model(tmp_path):
    """A tiny random T5, then a fresh model initialised from its statistics (Per Param Mean/SD), saved."""
    from hf_synpre.statistics import from_statistics

    model = from_statistics(tiny_t5(seed=1), scheme="Per Param Mean/SD", seed=0)
    path = tmp_path / "t5-tiny-pps"
    model.save_pretrained(path)
    (path / "all_results.json").write_text(json.dumps({"eval_loss": 2.5, "eval_exact_match": 0.125, "epoch": 1.0}))
    return model, path


# ----------------------------------------------------------------------------- round trip
def test_round_trip_dataset_and_stats_model_load_back_identical_through_olah(hub, olah, publishing, tmp_path):
    from hf_synpre import load_synthetic
    from hf_synpre.cli import main as synpre
    from hf_synpre.hub import publish_model

    # the CLI path of the issue: synpre publish-dataset <task> --repo-id synpre/<task>
    rc = synpre(["publish-dataset", "set", "--repo-id", "synpre/set", "--num-train", "300", "--num-validation", "20", "--seed", "3"])
    assert rc == 0
    model, model_dir = saved_stats_model(tmp_path)
    pub = publish_model(model_dir, "synpre/t5-tiny-set-pps", datasets=["synpre/set"], statistics_scheme="Per Param Mean/SD")
    assert pub.commit_oid == git_head(hub.repo_path("model", "synpre/t5-tiny-set-pps"))

    loaded = load_through_olah(olah, tmp_path, dataset="synpre/set", model="synpre/t5-tiny-set-pps")

    # the dataset, row by row, against the builder run locally with the same parameters
    expected = load_synthetic("set", num_train=300, num_validation=20, seed=3, cache_dir=str(tmp_path / "local"))
    got = json.loads((loaded / "dataset.json").read_text())
    assert set(got) == {"train", "validation"}
    for split in ("train", "validation"):
        want = expected[split].to_dict()
        assert len(got[split]["inputs"]) == len(want["inputs"])
        for i, (a, b) in enumerate(zip(zip(got[split]["inputs"], got[split]["targets"]), zip(want["inputs"], want["targets"]))):
            assert a == b, f"{split} row {i} differs"
    assert json.loads((loaded / "dataset_info.json").read_text())["splits"] == {"train": 300, "validation": 20}

    # the model, tensor by tensor
    from safetensors.torch import load_file

    got_tensors = load_file(str(loaded / "model.safetensors"))
    want_tensors = model.state_dict()
    assert set(got_tensors) == set(want_tensors)
    for name, tensor in want_tensors.items():
        assert got_tensors[name].dtype == tensor.dtype and bool((got_tensors[name] == tensor).all()), name

    # the model card as the Hub serves it
    card = json.loads((loaded / "model_card.json").read_text())
    assert card["datasets"] == ["synpre/set"]
    assert {"t5", "hf-synpre", "parameter-statistics-init"} <= set(card["tags"])
    metrics = {m["type"]: m["value"] for m in card["model-index"][0]["results"][0]["metrics"]}
    assert metrics == {"eval_loss": 2.5, "eval_exact_match": 0.125, "epoch": 1.0}

    # the data sit in LFS, as on the Hub, and each publish was one commit on top of the initial one
    repo = hub.repo_path("dataset", "synpre/set")
    log = _git_out(repo, "log", "--format=%s", "main").split("\n")
    assert log[:2] == ["set: 300 train / 20 validation, seed 3 (hf-synpre)", "initial commit"]
    pointer = _git_out(repo, "show", "main:data/train-00000-of-00001.parquet")
    assert pointer.startswith("version https://git-lfs.github.com/spec/v1\noid sha256:")
    # the reads really went through olah
    reads = _olah_routes(olah)
    assert "GET /datasets/{repo}/resolve/{revision}/data/{file}" in reads
    assert "GET /{repo}/resolve/{revision}/model.safetensors" in reads
    print("\nHub API routes the writes called (huggingface_hub -> HubServer):\n  " + "\n  ".join(hub.routes_called()))
    print("Hub API routes the reads called (datasets, transformers, huggingface_hub -> olah):\n  " + "\n  ".join(reads))


def test_from_statistics_recipe_push_to_hub_publishes_the_model_and_its_card(hub, publishing, tmp_path):
    recipe = load_recipe("from_statistics")
    source = tmp_path / "source"
    tiny_t5(seed=1).save_pretrained(source)
    out = recipe.main([
        "--source", str(source), "--scheme", "Per Param Mean/SD", "--seed", "0", "--output_dir", str(tmp_path / "out"),
        "--push_to_hub", "--hub_model_id", "synpre/t5-tiny-recipe",
    ])
    repo = hub.repo_path("model", "synpre/t5-tiny-recipe")
    readme = _git_out(repo, "show", "main:README.md")
    meta = yaml.safe_load(readme.split("---\n")[1])
    assert "## Reproduce" in readme and "Per Param Mean/SD" in readme  # the recipe's own card, kept
    assert {"parameter-statistics-init", "hf-synpre"} <= set(meta["tags"])
    pointer = _git_out(repo, "show", "main:model.safetensors")
    assert f"oid sha256:{_lfs_oid((out / 'model.safetensors').read_bytes())}" in pointer
    assert "from_statistics: Per Param Mean/SD" in _git_out(repo, "log", "-1", "--format=%s", "main")


def test_pretrain_recipe_push_to_hub_publishes_the_selected_checkpoint(hub, publishing, tmp_path):
    """``recipes/pretrain.py --push_to_hub`` sends the selected checkpoint to HF_ENDPOINT's Hub."""
    recipe = load_recipe("pretrain")
    config = {
        "task": "set", "data": "stream", "min_length": 10, "max_length": 20, "content_vocab_size": 100,
        "num_validation": 32, "max_source_length": 32, "max_target_length": 32, "d_model": 16, "d_kv": 4,
        "d_ff": 32, "num_layers": 1, "num_decoder_layers": 1, "num_heads": 2, "max_steps": 2, "warmup_steps": 10,
        "per_device_train_batch_size": 4, "per_device_eval_batch_size": 32, "eval_strategy": "steps",
        "eval_steps": 2, "save_strategy": "steps", "save_steps": 2, "logging_steps": 1, "report_to": "none", "megabatch_batches": 2,
        "disable_tqdm": True, "dataloader_pin_memory": False,
    }
    cfg = tmp_path / "tiny.yaml"
    cfg.write_text(yaml.safe_dump(config))
    recipe.main(["--config", str(cfg), "--output_dir", str(tmp_path / "run"),
                 "--push_to_hub", "true", "--hub_model_id", "alice/tiny-set"])
    repo = hub.repo_path("model", "alice/tiny-set")
    files = set(_git_out(repo, "ls-tree", "--name-only", "main").split())
    assert {"model.safetensors", "config.json", "README.md", "tokenizer.json"} <= files
    assert _git_out(repo, "log", "-1", "--format=%s", "main").startswith("pretrain: step 2")
    meta = yaml.safe_load(_git_out(repo, "show", "main:README.md").split("---\n")[1])
    assert meta["datasets"] == ["synpre/set"]


def test_publish_model_command_pushes_a_saved_model_with_its_card(hub, publishing, tmp_path, monkeypatch, capsys):
    from hf_synpre.cli import main as synpre

    _, model_dir = saved_stats_model(tmp_path)
    args = ["publish-model", str(model_dir), "--repo-id", "synpre/cli-model", "--dataset", "synpre/set", "--tag", "tiny"]
    assert synpre(args) == 0
    assert "from_pretrained('synpre/cli-model')" in capsys.readouterr().out
    repo = hub.repo_path("model", "synpre/cli-model")
    meta = yaml.safe_load(_git_out(repo, "show", "main:README.md").split("---\n")[1])
    assert meta["datasets"] == ["synpre/set"] and "tiny" in meta["tags"] and meta["library_name"] == "transformers"
    assert set(_tree(repo)) == {".gitattributes", "README.md", "config.json", "generation_config.json", "model.safetensors", "all_results.json"}

    monkeypatch.setenv("HF_TOKEN", BAD_TOKEN)
    assert synpre(args) == 1
    err = capsys.readouterr().err
    assert "synpre: error: The Hub refused the credentials (401" in err and BAD_TOKEN not in err


# ----------------------------------------------------------------------------- refusals
def test_push_rejected_with_401_says_so_and_names_the_fix(hub, publishing, tmp_path, monkeypatch, capsys, caplog):
    from hf_synpre.hub import PublishError, publish_model

    _, model_dir = saved_stats_model(tmp_path)
    monkeypatch.setenv("HF_TOKEN", BAD_TOKEN)
    before = len(hub.calls)
    with pytest.raises(PublishError) as info:
        publish_model(model_dir, "synpre/rejected-model")
    message = str(info.value)
    assert "401 Unauthorized" in message and "Invalid credentials" in message
    assert "HF_TOKEN" in message and "hf auth login" in message
    routes = [route for route, _ in hub.calls[before:]]
    assert "POST /api/repos/create" in routes and not any("commit" in r or "preupload" in r for r in routes)
    assert not hub.repo_path("model", "synpre/rejected-model").exists()
    out = capsys.readouterr()
    for text in (message, out.out, out.err, caplog.text):
        assert BAD_TOKEN not in text


def test_push_with_a_read_only_token_is_refused_with_403(hub, publishing, tmp_path, monkeypatch):
    from hf_synpre.hub import PublishError, publish_model

    _, model_dir = saved_stats_model(tmp_path)
    monkeypatch.setenv("HF_TOKEN", READ_TOKEN)
    with pytest.raises(PublishError, match=r"(?s)403 Forbidden.*'write' role for 'synpre'.*--repo-id <you>/<name>"):
        publish_model(model_dir, "synpre/read-only-model")
    assert not hub.repo_path("model", "synpre/read-only-model").exists()


def test_a_repo_gone_between_create_and_upload_gives_404_with_the_fix(hub, publishing, tmp_path):
    from hf_synpre.hub import PublishError, publish_model

    _, model_dir = saved_stats_model(tmp_path)
    hub.fail("POST /api/models/{repo_id}/preupload/{revision}", 404, code="RepoNotFound", message="Repository not found")
    with pytest.raises(PublishError, match=r"(?s)Not found \(404: Repository not found\).*Fix: check the repo id"):
        publish_model(model_dir, "synpre/vanishing-model")
    assert git_head(hub.repo_path("model", "synpre/vanishing-model")) is not None  # created, nothing committed
    assert len(_tree(hub.repo_path("model", "synpre/vanishing-model"))) == 1  # .gitattributes only


def test_no_token_fails_before_any_request(hub, publishing, tmp_path, monkeypatch):
    from hf_synpre.hub import PublishError, publish_dataset

    monkeypatch.delenv("HF_TOKEN")  # and `publishing` hid any stored login
    before = len(hub.calls)
    with pytest.raises(PublishError, match="set HF_TOKEN, run `hf auth login`"):
        publish_dataset("set", num_train=10, num_validation=2)
    assert len(hub.calls) == before


# ----------------------------------------------------------------------------- failures
def test_transient_server_errors_are_retried_a_bounded_number_of_times(hub, publishing, tmp_path):
    from hf_synpre.hub import PublishError, publish_model

    _, model_dir = saved_stats_model(tmp_path)
    hub.fail("POST /api/repos/create", 503, times=1, message="Service Unavailable")
    pub = publish_model(model_dir, "synpre/flaky-create")
    assert pub.commit_oid == git_head(hub.repo_path("model", "synpre/flaky-create"))
    assert publishing.waits == [2.0]

    hub.fail("POST /api/repos/create", 503, message="Service Unavailable")  # down for good
    with pytest.raises(PublishError, match=r"failed after 3 attempt\(s\).*HTTP 503.*run the same command again"):
        publish_model(model_dir, "synpre/down-create", max_attempts=3)
    assert publishing.waits == [2.0, 2.0, 4.0]


def test_failure_in_the_middle_of_an_upload_leaves_the_previous_revision_intact(hub, olah, publishing, tmp_path):
    from huggingface_hub import HfApi, hf_hub_download

    from hf_synpre.hub import PublishError, publish_dataset

    v1 = publish_dataset("count", "synpre/count-atomic", num_train=200, num_validation=10, seed=1)
    repo = hub.repo_path("dataset", "synpre/count-atomic")
    files_v1 = _tree(repo)

    # v2: the first Parquet shard reaches storage, every upload of the other one fails
    hub.fail("PUT /lfs-storage", 500, after=1, message="storage node lost")
    with pytest.raises(PublishError) as info:
        publish_dataset("count", "synpre/count-atomic", num_train=200, num_validation=10, seed=2, max_attempts=2)
    assert "still at its previous revision" in str(info.value) and "HTTP 500" in str(info.value)
    fault = hub._faults[-1]
    assert 2 <= fault.fired <= 2 * 6  # each of our 2 attempts; huggingface_hub retries a PUT at most 5 times
    assert git_head(repo) == v1.commit_oid and _tree(repo) == files_v1

    # what the Hub (olah) serves is v1, complete
    api = HfApi(endpoint=olah.endpoint, token=False)
    assert api.dataset_info("synpre/count-atomic", revision="main").sha == v1.commit_oid
    for name, blob in files_v1.items():
        if name.endswith(".parquet"):
            local = hf_hub_download("synpre/count-atomic", name, repo_type="dataset", endpoint=olah.endpoint,
                                    cache_dir=tmp_path / "cache", token=False)
            assert _lfs_oid(Path(local).read_bytes()) == _pointer_oid(repo, blob), name

    # once storage is back the same command publishes v2 in one commit on top of v1
    hub.clear_faults()
    v2 = publish_dataset("count", "synpre/count-atomic", num_train=200, num_validation=10, seed=2)
    log = _git_out(repo, "rev-list", "main").split()
    assert log[:2] == [v2.commit_oid, v1.commit_oid]
    assert api.dataset_info("synpre/count-atomic", revision="main").sha == v2.commit_oid


def test_republishing_with_fewer_shards_deletes_the_stale_ones_in_the_same_commit(hub, publishing, tmp_path):
    from huggingface_hub import CommitOperationAdd, HfApi

    from hf_synpre.hub import publish_dataset

    api = HfApi(endpoint=hub.endpoint, token=WRITE_TOKEN)
    api.create_repo("synpre/reverse", repo_type="dataset", exist_ok=True)
    stale = CommitOperationAdd("data/train-00001-of-00002.parquet", b"PAR1\x00stale shard of an older, larger build")
    api.create_commit("synpre/reverse", [stale], commit_message="older build", repo_type="dataset")
    publish_dataset("reverse", num_train=50, num_validation=5)
    files = set(_tree(hub.repo_path("dataset", "synpre/reverse")))
    assert "data/train-00001-of-00002.parquet" not in files
    assert {"data/train-00000-of-00001.parquet", "data/validation-00000-of-00001.parquet", "README.md"} <= files


# ----------------------------------------------------------------------------- cards
def test_dataset_card_declares_configs_dataset_info_and_how_to_regenerate(tmp_path):
    from hf_synpre.hub import build_dataset_repo

    out = build_dataset_repo("sort", tmp_path / "sort", num_train=40, num_validation=4, seed=7, length_range=(3, 9))
    text = (out / "README.md").read_text()
    meta = yaml.safe_load(text.split("---\n")[1])
    assert meta["license"] == "apache-2.0"
    assert meta["configs"] == [
        {"config_name": "default", "data_files": [{"split": "train", "path": "data/train-*"}, {"split": "validation", "path": "data/validation-*"}]}
    ]
    assert {s["name"]: s["num_examples"] for s in meta["dataset_info"]["splits"]} == {"train": 40, "validation": 4}
    assert [f["name"] for f in meta["dataset_info"]["features"]][:2] == ["inputs", "targets"]
    assert 'load_dataset("synpre/sort")' in text
    assert "synpre generate sort --num-train 40 --num-validation 4" in text and "--length-range 3,9 --seed 7" in text
    assert "@inproceedings{wu2022insights" in text
    assert json.loads((out / "generation_config.json").read_text())["seed"] == 7
    assert sorted(p.name for p in (out / "data").iterdir()) == ["train-00000-of-00001.parquet", "validation-00000-of-00001.parquet"]


def test_model_card_keeps_an_existing_card_and_completes_its_metadata(tmp_path):
    from hf_synpre.hub import model_card

    _, model_dir = saved_stats_model(tmp_path)
    existing = "---\nlibrary_name: transformers\ntags:\n- t5\n---\n\n# my model\n\nHow it was made.\n"
    text = model_card(model_dir, "me/m", datasets=["synpre/set"], base_model="google-t5/t5-small", metrics={"eval_loss": 1.5}, existing_card=existing)
    meta = yaml.safe_load(text.split("---\n")[1])
    assert meta["base_model"] == "google-t5/t5-small" and meta["datasets"] == ["synpre/set"]
    assert meta["tags"].count("t5") == 1 and "hf-synpre" in meta["tags"]
    assert "# my model\n\nHow it was made." in text and "| eval_loss | 1.5 |" in text


def test_bad_arguments_fail_before_the_hub_is_contacted(hub, publishing, tmp_path):
    from hf_synpre.hub import PublishError, publish_dataset, publish_model

    before = len(hub.calls)
    with pytest.raises(ValueError, match="unknown task"):
        publish_dataset("sett")
    with pytest.raises(PublishError, match="no namespace"):
        publish_dataset("set", "set", num_train=10, num_validation=2)
    with pytest.raises(PublishError, match="no config.json"):
        publish_model(tmp_path, "synpre/empty")
    assert len(hub.calls) == before


def test_dataset_scripts_list_all_18_paper_tasks_and_build_them_in_one_command(tmp_path):
    sys.path.insert(0, str(REPO / "dataset_scripts"))
    try:
        import publish_all
    finally:
        sys.path.remove(str(REPO / "dataset_scripts"))
    paper_tasks = [
        "identity", "reverse", "duplicate", "deduplicate", "first_token", "last_token", "length", "longest_word", "set",
        "count", "delete", "search", "sort", "replace", "union", "intersect", "set1_minus_set2", "set2_minus_set1",
    ]
    plan = publish_all.load_plan(REPO / "dataset_scripts" / "datasets.yaml")
    assert [task for task, _, _ in plan] == paper_tasks
    assert all(repo_id == f"synpre/{task}" for task, repo_id, _ in plan)
    assert {(k["num_train"], k["num_validation"], k["seed"], k["tokenizer"]) for _, _, k in plan} == {(1_000_000, 10_000, 0, "t5-small")}

    tiny = tmp_path / "tiny.yaml"
    tiny.write_text(yaml.safe_dump({
        "namespace": "me",
        "defaults": {"num_train": 20, "num_validation": 2, "tokenizer": "default"},
        "datasets": {"set": {}, "copy-long": {"task": "copy", "length_range": [30, 40]}},
    }))
    assert publish_all.main(["--config", str(tiny), "--local-dir", str(tmp_path / "out")]) == 0
    assert 'load_dataset("me/copy-long")' in (tmp_path / "out" / "copy-long" / "README.md").read_text()
    assert json.loads((tmp_path / "out" / "copy-long" / "generation_config.json").read_text())["length_range"] == [30, 40]
    assert (tmp_path / "out" / "set" / "data" / "train-00000-of-00001.parquet").is_file()


def _olah_routes(olah) -> list:
    """Distinct requests in olah's access log, repo ids, revisions and file names replaced by placeholders."""
    import re

    routes = {}
    for method, path, status in re.findall(r'"(GET|HEAD|POST) (\S+) HTTP/1.1" (\d+)', olah.output()):
        path = path.split("?")[0]
        if "/none/none/" in path:  # OlahServer's readiness probe, not a client
            continue
        path = re.sub(r"^/(api/)?(models/|datasets/)?synpre/[^/]+", lambda m: f"/{m.group(1) or ''}{m.group(2) or ''}{{repo}}", path)
        path = re.sub(r"/(resolve|revision|tree|paths-info)/[^/]+", r"/\1/{revision}", path)
        path = re.sub(r"/data/[^/]+$", "/data/{file}", path)
        routes.setdefault(f"{method} {path}", status)
    return [f"{route} -> {status}" if status != "200" else route for route, status in routes.items()]


def _git_out(repo: Path, *args) -> str:
    return subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True, check=True).stdout


def _tree(repo: Path) -> dict:
    out = _git_out(repo, "ls-tree", "-r", "main")
    return {line.split("\t")[1]: line.split()[2] for line in out.splitlines()}


def _pointer_oid(repo: Path, blob: str) -> str:
    text = _git_out(repo, "cat-file", "blob", blob)
    return text.split("oid sha256:")[1].split()[0]


def _lfs_oid(data: bytes) -> str:
    import hashlib

    return hashlib.sha256(data).hexdigest()
