"""Reproduce the paper's Tables 1-3 in one command: pre-train each condition, fine-tune, tabulate, plot.

Layout (each module's docstring lists its public API):

    conditions.py   the tables' rows: ``CONDITIONS``, ``parse_conditions``
    scales.py       ``Scale``, ``SCALES``, ``load_scale``: the scales are ``scales/<name>.yaml`` files
    plan.py         ``Stage``, ``plan(...) -> list[Stage]``: every stage's exact flags
    run.py          the stage cache (``stage.json``), the scheduler, the corpus stage
    results.py      ``collect``, ``merge``, ``summarize``, ``RESULTS_FORMAT``: results.json's numbers;
                    ``load_reference``, ``compare``: a table against another run's (``--compare_to``)
    report.py       ``render_markdown``, ``plot``: results.md and the PNGs
    cli.py          ``parse_args``, ``main(argv)``; ``recipes/reproduce.py`` and ``python -m recipes.reproduce``
                    run it
    prepretrain.py  ``--experiment prepretrain``: a synthetic phase before natural pre-training, natural
                    tokens saved (``experiments/<name>.yaml``); the same stage cache and scheduler

"Insights into Pre-training via Simpler Synthetic Tasks" (Wu, Li, Liang, NeurIPS 2022) reports each
pre-training condition as a share of natural pre-training's benefit over Random Init:
``benefit = (condition - random) / (natural - random)`` per downstream task, then averaged. This
recipe runs that protocol with the project's own recipes and writes ``--output_dir`` (default
``runs/reproduce/<scale>``; a folder's table is merged across invocations, never cut down):
``results.json`` (every run, every seed), ``results.md`` (the tables) and PNG plots.

    # mini scale: 2 CPU cores, offline, the core table with 3 seeds (about two hours)
    python recipes/reproduce.py --scale mini
    python recipes/reproduce.py --scale mini --compare_to results/mini   # checked against the committed table

    # the 18 simple tasks ranked by benefit (ranking.png), and the pre-pretraining experiment
    python recipes/reproduce.py --scale mini --conditions random,natural,ranking
    python recipes/reproduce.py --experiment prepretrain --scale mini

    # more rows (Table 1's other synthetic tasks, Table 2 from LIME, Table 3) and fewer seeds
    python recipes/reproduce.py --scale mini --conditions core,nonsense,nesting,stats_lime,preattn_ln --seeds 2

    # the budget check: the same checkpoints fine-tuned 1,000 steps, beside the 200-step table
    python recipes/reproduce.py --scale mini --conditions core --finetune_steps 1000

    # the paper's scale (T5-small, 80k pre-training steps, the six tasks): print the plan, then run on GPUs
    python recipes/reproduce.py --scale paper --dry_run

Stages, each cached in ``<output_dir>/runs/<stage>`` with a ``stage.json`` marker (re-running skips
what is done, resumes what was interrupted from its last checkpoint, and refuses a stage whose cached
settings differ from the requested ones):

1. ``corpus/natural`` (mini only): span-corrupted Python standard-library sources
   (``hf_synpre.data.natural``) -- the "natural" pre-training text available offline;
2. ``pretrain/<condition>/seed<p>``: ``recipes/pretrain.py``, once per pre-training seed; synthetic
   tasks keep the first checkpoint with validation token accuracy >= 0.99 (the paper's rule), natural
   text the best one, all with the same step budget and batch;
3. ``finetune/<task>/<condition>/seed<k>``: ``recipes/finetune.py`` from the selected checkpoint,
   Random Init or the statistics of one (Tables 2-3); the model of the best validation accuracy is the
   one evaluated on test -- nothing is chosen on the test split;
   ``finetune-<N>steps/<task>/<condition>/seed<k>`` the same for another budget (``--finetune_steps N``);
4. the report, from whatever stages exist.

Conditions (``--conditions``, comma-separated names or ``core``/``all``): random, natural, set,
identity, lime, nonsense, nesting, stats_set, stats_lime, preattn_ln. The scales (``--scale``) are the
files ``scales/<name>.yaml`` (schema: ``scales.py``). Metric per scale: ``mini`` reports the test
split's teacher-forced token accuracy (a tiny model's greedy decodes are almost never exact, so exact
match cannot separate the rows); ``paper`` the task's own decoded metric.

Nothing under ``hf_synpre/`` imports this package: it is a recipe, built on the library's public API.
"""
