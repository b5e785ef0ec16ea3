"""Benchmark: does a pretraining run learn the world? One pt1-style run, outside Snakemake.

Trains a model of the given dims on a mix of tasks (all seven by default) and compares it, on
held-out standard-city prompts, with chance (yes/no and compass) and with always answering the
training mean (error tasks). Writes JSON. Used to size the default campaign:

    python benchmarks/pt1_learning.py --hidden 128 --layers 4 --samples 20000 --epochs 3
    python benchmarks/pt1_learning.py --tasks distance --samples 50000 --epochs 2
    python benchmarks/pt1_learning.py --city-names ids   # cities spelled c_<id>, as in the study
    python benchmarks/pt1_learning.py --samples 14000 --lead-in-samples 18000  # the default pt1
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "workflow"))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from ftdag.core.batches import PromptAnswerData  # noqa: E402
from ftdag.core.config import schema_defaults  # noqa: E402
from ftdag.core.io import write_json  # noqa: E402
from ftdag.core.model import build_model, save_model  # noqa: E402
from ftdag.core.tokenizer import build_tokenizer  # noqa: E402
from ftdag.core.train import TrainConfig, train  # noqa: E402
from ftdag.exp3.evaluate import evaluate_model  # noqa: E402
from ftdag.exp3.metrics import against_trivial_baseline  # noqa: E402
from ftdag.exp3.tasks import TASK_NAMES, sample_examples  # noqa: E402
from ftdag.exp3.world import STANDARD, generate_world  # noqa: E402


def build_data(args: argparse.Namespace) -> tuple:
    """The world; held-out prompts per task; the lead-in records; the training records (the
    lead-in first), none of them a held-out prompt."""
    tasks = args.tasks.split(",")
    world = generate_world(0, args.cities, 4, 6, 100, city_names=args.city_names)
    rng = np.random.default_rng(0)
    held_out = {
        t: [
            e.to_record(STANDARD)
            for e in sample_examples((t,), args.eval_samples, world, rng, False)
        ]
        for t in tasks
    }
    exclude = {r["prompt"] for records in held_out.values() for r in records}
    lead_in = [
        e.to_record(STANDARD)
        for e in sample_examples(
            args.lead_in_tasks.split(","), args.lead_in_samples, world, rng, False, exclude=exclude
        )
    ]
    training = lead_in + [
        e.to_record(STANDARD)
        for e in sample_examples(tasks, args.samples, world, rng, False, exclude=exclude)
    ]
    return world, held_out, lead_in, training


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", default=",".join(TASK_NAMES))
    parser.add_argument("--hidden", type=int, default=256)
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--samples", type=int, default=20000)
    parser.add_argument(
        "--lead-in-samples", type=int, default=0, help="seen once first (a stage of epochs: 1)"
    )
    lead_in_tasks = schema_defaults()["exp3"]["data"]["pt1_stages"][0]["tasks"]
    parser.add_argument("--lead-in-tasks", default=",".join(lead_in_tasks))
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--cities", type=int, default=30)
    parser.add_argument("--city-names", choices=["letters", "ids"], default="letters")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--eval-samples", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0, help="model init and sample order")
    parser.add_argument("--save-model", type=Path, help="also save the trained model here")
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks/results/pt1_learning.json")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    world, held_out, lead_in, training = build_data(args)
    tokenizer = build_tokenizer()
    model = build_model(
        tokenizer, args.hidden, 4 * args.hidden, max(2, args.hidden // 32), args.layers, args.seed
    )
    config = TrainConfig(
        epochs=args.epochs,
        batch_size=args.batch_size,
        lr=args.lr,
        seed=args.seed,
        checkpoint_every=10**9,
    )
    started = time.time()
    data = PromptAnswerData(tokenizer, training, lead_in=len(lead_in))
    stats = train(model, data, config, args.out.with_suffix(".ckpt"), progress=False)
    args.out.with_suffix(".ckpt").unlink(missing_ok=True)
    if args.save_model:
        save_model(model, tokenizer, args.save_model)
    rows, predictions = evaluate_model(
        model, tokenizer, {f"{t}_standard": r for t, r in held_out.items()}, world
    )

    result = {
        "args": {k: str(v) for k, v in vars(args).items()},
        "train_seconds": round(time.time() - started, 1),
    }
    result["tokens_per_second"] = stats["tokens_per_second"]
    result["final_loss"] = stats["final_loss"]
    for row in rows:
        task = row["task"]
        scored = [p for p in predictions if p["eval"] == row["eval"]]
        result[task] = against_trivial_baseline(
            task,
            [p["score"] for p in scored],
            [r["answer"] for r in training if r["task"] == task],
            [p["answer"] for p in scored],
        )
    write_json(args.out, result)
    if args.save_model:
        write_json(args.save_model / "predictions.json", predictions)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
