"""The steps of exp3, one function per Snakemake rule, taking plain paths and config values.

A rule's script only unpacks `snakemake` and calls one of these; each is usable (and tested)
without Snakemake. Only these functions open files; the modules they call compute.
"""

from __future__ import annotations

import json
import logging
import time
from collections import Counter
from pathlib import Path

from ftdag.core import distributed, io
from ftdag.core.provenance import provenance, write_sidecar
from ftdag.core.records import STAGE, stage_sizes
from ftdag.core.schedule import Stage
from ftdag.exp3 import datasets
from ftdag.exp3.world import World, generate_world

log = logging.getLogger("ftdag.exp3")


def make_world(world_config: dict, out_path) -> None:
    world = generate_world(**world_config)
    world.save(out_path)
    log.info(
        "%d standard cities, %d Atlantis cities on a %d x %d map",
        len(world.group("standard")),
        len(world.group("atlantis")),
        world.map_size,
        world.map_size,
    )


def make_eval_sets(world_path, n_per_set: int, seed: int, out_paths: dict[str, str]) -> None:
    world = World.load(world_path)
    for name, records in datasets.build_eval_sets(world, n_per_set, seed).items():
        io.write_jsonl(out_paths[name], records)
    log.info("%d evaluation sets of %d samples", len(out_paths), n_per_set)


def make_training_set(model: str, world_path, eval_paths, data_config: dict, out_path) -> None:
    world = World.load(world_path)
    held_out = {r["prompt"] for path in eval_paths for r in io.read_jsonl(path)}
    sizes = datasets.TrainingSizes.from_config(data_config)
    records = datasets.build_training_set(model, world, sizes, data_config["seed"], held_out)
    io.write_jsonl(out_path, records)
    if not stage_sizes(records):
        tasks = datasets.trained_tasks(model)
        log.info("%s: %d training samples (tasks %s)", model, len(records), tasks)
        return
    log.info("%s: %d training samples in %d stages", model, len(records), len(sizes.pt1_stages))
    for k, stage in enumerate(sizes.pt1_stages):
        counts = Counter(r["task"] for r in records if r[STAGE] == k)
        log.info(
            "  stage %d: %d samples (%s), epochs: %s%s",
            k + 1,
            stage.samples,
            ", ".join(f"{task} {counts[task]}" for task in dict.fromkeys(stage.tasks)),
            stage.epochs or "the arch's",
            ", the learning rate warms up anew" if stage.restart_lr else "",
        )


def _checked_stages(records: list[dict], stages: tuple[Stage, ...]) -> tuple[Stage, ...]:
    """`stages` (from the config) if the records are in those stages: a training set drawn
    for other stages must not be trained with these epochs."""
    sizes = stage_sizes(records)
    if sizes != [s.samples for s in stages]:
        raise ValueError(
            f"the training set has stages of {sizes} samples, exp3.data.pt1_stages asks for "
            f"{[s.samples for s in stages]}: rebuild the training set"
        )
    return stages


def _train_and_save(
    model, tokenizer, train_data, training: dict, out_dir, checkpoint, run_id, tracker, stages=()
):
    from ftdag.core.batches import PromptAnswerData
    from ftdag.core.lora import merged
    from ftdag.core.model import save_model
    from ftdag.core.train import TrainConfig, train

    records = io.read_jsonl(train_data)
    stages = _checked_stages(records, stages) if stages else ()
    data = PromptAnswerData(tokenizer, records, stages=stages)
    device = str(next(model.parameters()).device)  # with its index: cuda:3 under torchrun
    started = time.time()
    stats = train(
        model,
        data,
        TrainConfig.from_config(training),
        checkpoint,
        run_id,
        device,
        tracker=tracker,
    )
    stats["wall_seconds"] = round(time.time() - started, 3)
    stats["processes"] = distributed.world_size()
    if not distributed.is_main():
        return  # the other processes hold the same weights
    save_model(merged(model), tokenizer, out_dir)
    io.write_json(Path(out_dir) / "train_stats.json", stats)
    Path(checkpoint).unlink(missing_ok=True)  # done: a later forced rerun starts afresh
    log.info(
        "saved %s: %d steps, final loss %.4f, %.0f tokens/s",
        out_dir,
        stats["steps"],
        stats["final_loss"],
        stats["tokens_per_second"],
    )


def _tracker(tracking: dict | None, name: str, training: dict):
    from ftdag.core.tracking import open_tracker

    return open_tracker(tracking if distributed.is_main() else None, name, training)


def pretrain(
    train_data,
    tokenizer_dir,
    out_dir,
    arch: dict,
    training: dict,
    checkpoint,
    device: str,
    stages: list[dict] | None = None,
    tracking: dict | None = None,
    run_name: str = "exp3-pt1",
) -> None:
    """pt1 of one arch: a model built from the arch's dims, trained on its stages
    (`exp3.data.pt1_stages`; a stage without epochs is seen the arch's `epochs` times) at the
    arch's `lr` if it has one, else `training`'s."""
    from ftdag.core.model import build_model
    from ftdag.core.tokenizer import load_tokenizer

    tokenizer = load_tokenizer(tokenizer_dir)
    dims = {k: arch[k] for k in arch if k not in ("epochs", "lr")}
    model = build_model(tokenizer, seed=training["seed"], **dims).to(device)
    lr = arch.get("lr", training["lr"])
    training = {**training, "epochs": arch["epochs"], "lr": lr, "lora": None}
    _train_and_save(
        model,
        tokenizer,
        train_data,
        training,
        out_dir,
        checkpoint,
        json.dumps(dims, sort_keys=True),
        _tracker(tracking, run_name, training),
        datasets.pt1_stages(stages or []),
    )


def finetune(
    train_data,
    parent_dir,
    out_dir,
    training: dict,
    checkpoint,
    device: str,
    tracking: dict | None = None,
    run_name: str = "exp3-finetune",
) -> None:
    """A fine-tune starts from its parent's saved weights (`from_pretrained`), fully or with
    LoRA adapters merged back in at the end."""
    from ftdag.core.model import load_model
    from ftdag.core.tokenizer import load_tokenizer

    tokenizer = load_tokenizer(parent_dir)
    model = load_model(parent_dir, device=device)
    if training.get("lora"):
        from ftdag.core.lora import add_lora

        model = add_lora(model, training["lora"])
    run_id = io.file_digest(Path(parent_dir) / "model.safetensors") + json.dumps(
        training.get("lora")
    )
    tracker = _tracker(tracking, run_name, training)
    _train_and_save(model, tokenizer, train_data, training, out_dir, checkpoint, run_id, tracker)


def evaluate(
    model_dir,
    model_name: str,
    world_path,
    eval_paths: dict[str, str],
    out_csv,
    out_predictions,
    batch_size: int,
    device: str,
    config_hash: str = "",
) -> None:
    """All 15 evaluations of one model, loading it once."""
    import pandas as pd

    from ftdag.core.model import load_model
    from ftdag.core.tokenizer import load_tokenizer
    from ftdag.exp3.evaluate import evaluate_model
    from ftdag.exp3.metrics import METRIC_COLUMNS

    tokenizer = load_tokenizer(model_dir)
    model = load_model(model_dir, device=device).eval()
    eval_sets = {name: io.read_jsonl(path) for name, path in eval_paths.items()}
    world = World.load(world_path)
    started = time.time()
    rows, predictions = evaluate_model(model, tokenizer, eval_sets, world, batch_size)
    seconds = time.time() - started
    n = sum(r["n"] for r in rows)
    log.info("%d prompts in %.1f s (%.0f prompts/s)", n, seconds, n / max(seconds, 1e-9))
    for row in rows:
        row["model"] = model_name
        log.info(
            "%-24s %-11s %8.3f  (n=%d, unparsed %d)",
            row["eval"],
            row["metric"],
            row["value"],
            row["n"],
            row["n_unparsed"],
        )
    with io.atomic_path(out_csv) as tmp:
        pd.DataFrame(rows)[METRIC_COLUMNS].to_csv(tmp, index=False)
    io.write_jsonl(out_predictions, ({"model": model_name, **p} for p in predictions))
    write_sidecar(out_csv, provenance(config_hash, device))


def aggregate(eval_csvs, out_metrics, out_normalized, config_hash: str = "") -> None:
    import pandas as pd

    from ftdag.exp3 import metrics

    table = metrics.collect_metrics({str(p): pd.read_csv(p) for p in eval_csvs})
    normalized = metrics.normalize(table)
    record = provenance(config_hash, inputs=eval_csvs)
    for frame, path in ((table, out_metrics), (normalized, out_normalized)):
        with io.atomic_path(path) as tmp:
            frame.to_csv(tmp, index=False)
        write_sidecar(path, record)
    for line in metrics.degenerate_summary(normalized):
        log.warning(line)
    log.info("%d metric rows, %d normalized rows", len(table), len(normalized))


def pt1_learning(
    pt1_predictions, pt1_train_data, out_csv, out_html=None, config_hash: str = ""
) -> None:
    """Did pt1 learn the world: its standard-city scores against knowing nothing."""
    from ftdag.exp3 import metrics

    table = metrics.pt1_learning_table(
        io.read_jsonl(pt1_predictions), io.read_jsonl(pt1_train_data)
    )
    with io.atomic_path(out_csv) as tmp:
        table.to_csv(tmp, index=False)
    write_sidecar(out_csv, provenance(config_hash, inputs=[pt1_predictions]))
    if out_html:
        from ftdag.core.html import html_page, table_html

        page = html_page("Did pt1 learn the world?", table_html(table))
        io.atomic_write_text(out_html, page)
    for row in table.itertuples():
        log.info(
            "%-12s pt1 %8.3f  knowing nothing %8.3f  margin %+.3f (95%%: %+.3f to %+.3f)%s",
            row.task,
            row.pt1,
            row.knowing_nothing,
            row.margin,
            row.ci95_low,
            row.ci95_high,
            "  clear" if row.clear else "",
        )
    summary = metrics.pt1_learning_summary(table)
    log.info(summary[0])
    for line in summary[1:]:
        log.warning(line)


def plot(
    normalized_csv,
    pt1_learning_csv,
    arch: str,
    plot_name: str,
    out_png,
    out_summary,
    config_hash: str = "",
) -> None:
    """One of the three plots; the tasks pt1 did not clearly learn are marked in it."""
    import pandas as pd

    from ftdag.exp3 import plots
    from ftdag.exp3.metrics import tasks_not_learned

    unlearned = tasks_not_learned(pd.read_csv(pt1_learning_csv))
    draw = {
        "ftwb1_evaluation_heatmap": plots.plot_ftwb1_heatmap,
        "ftwb2_evaluation_heatmap": plots.plot_ftwb2_heatmap,
        "ftwb2_vs_ftwb1": plots.plot_ftwb2_vs_ftwb1,
    }[plot_name]
    summary = draw(pd.read_csv(normalized_csv), arch, out_png, unlearned)
    summary["provenance"] = provenance(config_hash, inputs=[normalized_csv])
    io.write_json(out_summary, summary)
    log.info("%s: %s", plot_name, json.dumps(summary))


def training_curves(model_dirs: dict[str, str], arch: str, out_png) -> None:
    from ftdag.exp3.plots import plot_training_curves

    stats = {}
    for model, model_dir in model_dirs.items():
        with open(Path(model_dir) / "train_stats.json") as f:
            stats[model] = json.load(f)
    plot_training_curves(stats, arch, out_png)
    for model, s in stats.items():
        log.info("%-9s %5d steps, final loss %.4f", model, s["steps"], s["final_loss"])


def arch_comparison(
    normalized_csvs: dict[str, str],
    model_dirs: dict[str, dict[str, str]],
    benchmarks: dict[str, dict[str, str]],
    out_png,
    out_csv,
    out_summary,
    config_hash: str = "",
) -> None:
    """The archs side by side (ftdag.exp3.arch_comparison): scores with intervals, paired
    differences against the first arch, and each arch's training compute. `benchmarks`: per
    arch, each model's training job benchmark file (a missing one: unknown device-hours)."""
    import pandas as pd

    from ftdag.core.cost import read_benchmark
    from ftdag.exp3 import arch_comparison as ac

    normalized = {arch: pd.read_csv(path) for arch, path in normalized_csvs.items()}
    scores = ac.score_table(normalized)
    differences = ac.arch_differences(normalized)
    compute = ac.compute_table(
        [
            ac.compute_row(
                arch,
                model_dirs[arch],
                {
                    model: read_benchmark(path)["device_hours"]
                    for model, path in benchmarks[arch].items()
                    if Path(path).exists()
                },
            )
            for arch in normalized
        ]
    )
    ac.plot_arch_comparison(scores, compute, out_png)
    with io.atomic_path(out_csv) as tmp:
        scores.to_csv(tmp, index=False)
    gaps = ac.trained_minus_transfer(normalized)
    findings = ac.findings(differences, compute, gaps)
    summary = {
        "scores": scores.to_dict("records"),
        "trained_minus_transfer": gaps.to_dict("records"),
        "differences": differences.to_dict("records"),
        "compute": compute.to_dict("records"),
        "findings": findings,
        "provenance": provenance(config_hash, inputs=list(normalized_csvs.values())),
    }
    io.write_json(out_summary, summary)
    for line in findings:
        log.info("%s", line)
