"""The steps of the MTL family, one function per Snakemake rule (workflow/rules/mtl.smk),
taking plain paths and config values. Only these functions open files."""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

import numpy as np

from ftdag.core import io
from ftdag.mtl.domains import TASKS, reward, sample

log = logging.getLogger("ftdag.mtl")
SNAPSHOTS = "snapshots"  # epoch_<n>/ and best/ of an arm's training


def make_data(
    sizes: dict[str, int], seed: int, out_paths: dict[str, str], files=None, tiny: bool = True
) -> None:
    """Train, validation and test records, each marked with whether its task is trained.
    Generated: the trained tasks in all three splits, the out-of-distribution variants in test
    only (early stopping watches what is trained). Or the user's files (`files`: paths per
    split, see `ftdag.mtl.user_data`)."""
    if files:
        from ftdag.mtl.user_data import user_splits

        splits = user_splits(files, sizes["validation"], seed, tiny)
    else:
        rng = np.random.default_rng(seed)
        splits = {
            split: [
                {**r, "trained": t.trained}
                for t in TASKS
                if t.trained or split == "test"
                for r in sample(t, sizes[split], rng)
            ]
            for split in out_paths
        }
    for split, path in out_paths.items():
        io.write_jsonl(path, splits[split])
        tasks = {r["task"] for r in splits[split]}
        log.info("%s: %d records of %d tasks", split, len(splits[split]), len(tasks))


def score(model, tokenizer, records: list[dict], batch_size: int, max_new_tokens: int):
    """Greedy answers and their rewards, in the order of `records`."""
    from ftdag.core.generate import generate_answers

    answers = generate_answers(
        model, tokenizer, [r["prompt"] for r in records], batch_size, max_new_tokens, False
    )
    return answers, [reward(a, r["answer"]) for a, r in zip(answers, records, strict=True)]


def validation_metrics(records: list[dict], rewards: list[float]) -> dict[str, float]:
    """validation_reward_mean (over domains, each the mean of its tasks) and per domain."""
    by_domain: dict[str, list[float]] = {}
    for record, value in zip(records, rewards, strict=True):
        by_domain.setdefault(record["domain"], []).append(value)
    per_domain = {d: float(np.mean(v)) for d, v in by_domain.items()}
    return {
        "validation_reward_mean": float(np.mean(list(per_domain.values()))),
        **{f"validation_reward_{d}": v for d, v in per_domain.items()},
    }


def kept_snapshots(train_dir) -> list[str]:
    """The snapshots an arm's training kept: epoch_<n> in epoch order, then best."""
    root = Path(train_dir) / SNAPSHOTS
    epochs = sorted(
        (p.name for p in root.glob("epoch_*") if p.is_dir()), key=lambda n: int(n.split("_")[1])
    )
    return epochs + (["best"] if (root / "best").is_dir() else [])


def evaluate_snapshot(
    snapshot_dir, test_split, eval_settings: dict, out_csv, out_predictions, device: str
) -> None:
    """Every test task of every domain on one kept snapshot: reward mean per task, n, and a
    95% interval over prompts."""
    import pandas as pd

    from ftdag.core.model import load_model
    from ftdag.core.stats import wilson_interval
    from ftdag.core.tokenizer import load_tokenizer

    records = io.read_jsonl(test_split)
    tokenizer = load_tokenizer(snapshot_dir)
    model = load_model(snapshot_dir, device=device).eval()
    started = time.time()
    answers, rewards = score(model, tokenizer, records, **eval_settings)
    rows = []
    first = {}
    for record in records:
        first.setdefault(record["task"], record)
    for task in first:
        chosen = [v for r, v in zip(records, rewards, strict=True) if r["task"] == task]
        mean = float(np.mean(chosen))
        low, high = wilson_interval(mean, len(chosen))
        rows.append(
            {
                "task": task,
                "domain": first[task]["domain"],
                "trained": bool(first[task].get("trained", True)),
                "reward_mean": mean,
                "ci_low": low,
                "ci_high": high,
                "n": len(chosen),
            }
        )
    with io.atomic_path(out_csv) as tmp:
        pd.DataFrame(rows).to_csv(tmp, index=False)
    io.write_jsonl(
        out_predictions,
        (
            {**r, "generated": a, "reward": v}
            for r, a, v in zip(records, answers, rewards, strict=True)
        ),
    )
    log.info("%s: %d prompts in %.1f s", snapshot_dir, len(records), time.time() - started)


def collect_evolution(eval_csvs: dict[str, str], arm: str, seed: int, training_dir, out_csv):
    """One arm's evaluated snapshots in one table: arm, seed, snapshot, epoch (the best
    snapshot's own epoch), then its per-task rows."""
    import pandas as pd

    snapshots = Path(training_dir) / SNAPSHOTS
    frames = []
    for snapshot, path in eval_csvs.items():
        frame = pd.read_csv(path)
        epoch = (
            int((snapshots / "best" / "EPOCH").read_text())
            if snapshot == "best"
            else int(snapshot.split("_")[1])
        )
        frame.insert(0, "epoch", epoch)
        frame.insert(0, "snapshot", snapshot)
        frame.insert(0, "seed", seed)
        frame.insert(0, "arm", arm)
        frames.append(frame)
    table = pd.concat(frames, ignore_index=True)
    with io.atomic_path(out_csv) as tmp:
        table.to_csv(tmp, index=False)
    log.info("%s seed %d: %d snapshots evaluated", arm, seed, len(eval_csvs))


def concatenate(csvs: list[str], out_csv) -> None:
    import pandas as pd

    table = pd.concat([pd.read_csv(p) for p in csvs], ignore_index=True)
    with io.atomic_path(out_csv) as tmp:
        table.to_csv(tmp, index=False)


def write_report(
    final_predictions: dict[str, str],
    evolution_csv,
    trainings: dict[str, str],
    benchmarks: dict[str, str],
    arms: list[str],
    threshold: float,
    config_hash: str,
    out: dict[str, str],
) -> None:
    """report.md and its tables: every arm against the first, per task and per domain, on
    each arm's final snapshot (paired over prompts and seeds); each arm's training (validation
    before and at best, why it stopped, device-hours); best epochs, overfitting. The keys of
    `final_predictions`, `trainings` and `benchmarks` are 'arm/seed'."""
    import pandas as pd

    from ftdag.core.cost import read_benchmark
    from ftdag.core.html import html_page, markdown_html
    from ftdag.core.provenance import provenance, provenance_line
    from ftdag.mtl import report

    frames = []
    for key, path in final_predictions.items():
        frame = pd.DataFrame(io.read_jsonl(path))[["domain", "task", "trained", "reward"]]
        frame.insert(0, "item", range(len(frame)))  # the test split's order, every seed
        frame.insert(0, "seed", int(key.split("/")[1]))
        frame.insert(0, "arm", key.split("/")[0])
        frames.append(frame)
    predictions = pd.concat(frames, ignore_index=True)
    reference = arms[0]
    comparisons = [
        report.compare(predictions, reference, other).assign(arm=other) for other in arms[1:]
    ]
    curves = report.domain_curves(pd.read_csv(evolution_csv))
    best, flags = report.best_epochs(curves), report.overfitting(curves, threshold)
    training = pd.DataFrame(
        report.training_row(
            key,
            pd.read_csv(Path(folder) / "validations.csv"),
            json.loads((Path(folder) / "train_stats.json").read_text()),
            read_benchmark(benchmarks[key])["device_hours"],
        )
        for key, folder in trainings.items()
    )
    stops = dict(zip(trainings, training["stopped"], strict=True))
    text = "".join(
        report.markdown(c, reference, other, flags, stops)
        + report.task_markdown(c, reference, other)
        for c, other in zip(comparisons, arms[1:], strict=True)
    ) or (f"# MTL\n\nOne arm ({reference}): nothing to compare.\n")
    text += report.training_markdown(training) + report.best_epochs_markdown(best)
    text += provenance_line(provenance(config_hash, inputs=list(final_predictions.values())))
    io.atomic_write_text(out["report"], text)
    io.atomic_write_text(out["html"], html_page("mtl: the arms compared", markdown_html(text)))
    tables = {
        "comparison": pd.concat(comparisons, ignore_index=True) if comparisons else pd.DataFrame(),
        "training": training,
        "best_epochs": best,
        "overfitting": flags,
    }
    for name, table in tables.items():
        with io.atomic_path(out[name]) as tmp:
            table.to_csv(tmp, index=False)
    log.info("%s", text)
