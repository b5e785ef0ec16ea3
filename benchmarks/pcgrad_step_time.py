"""Benchmark: a training step with PCGrad against the baseline's (the summed domain losses), side
by side on the same model, data and batches: six domains, so PCGrad takes six backward passes
where the baseline takes one. Target: PCGrad's step within (domains + 1)x the baseline's.
Also torchjd's PCGrad (the same algorithm through its Gramian), for the choice of our own.

    python benchmarks/pcgrad_step_time.py [--steps 60] [--threads 2] [--out FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "workflow"))

from ftdag.core.io import write_json  # noqa: E402
from ftdag.core.model import build_model  # noqa: E402
from ftdag.core.surgery import AggregatedGradients  # noqa: E402
from ftdag.core.tokenizer import build_tokenizer  # noqa: E402
from ftdag.core.train import TrainConfig, train  # noqa: E402
from ftdag.mtl.batches import DomainData  # noqa: E402
from ftdag.mtl.domains import DOMAINS, TASKS, sample  # noqa: E402

DIMS = {
    "hidden_size": 64,
    "intermediate_size": 256,
    "num_attention_heads": 4,
    "num_hidden_layers": 4,
}


def step_seconds(rule, per_domain: bool, steps: int, records, tokenizer, workdir: Path) -> dict:
    model = build_model(tokenizer, seed=0, **DIMS)
    data = DomainData(tokenizer, records, DOMAINS, forward_per_domain=per_domain)
    config = TrainConfig(epochs=1, batch_size=len(records) // steps, lr=1e-3, seed=0)
    checkpoint = workdir / "bench.pt"
    checkpoint.unlink(missing_ok=True)
    started = time.perf_counter()
    stats = train(model, data, config, checkpoint, progress=False, gradient=rule)
    wall = time.perf_counter() - started
    checkpoint.unlink(missing_ok=True)
    return {
        "steps": stats["steps"],
        "seconds_per_step": round(stats["train_seconds"] / stats["steps"], 5),
        "wall_seconds": round(wall, 2),
        "final_loss": round(stats["final_loss"], 4),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument(
        "--out", type=Path, default=REPO / "benchmarks/results/pcgrad_step_time.json"
    )
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    rng = np.random.default_rng(0)
    trained = [t for t in TASKS if t.trained]
    per_task = args.steps * args.batch // len(trained) + 1
    records = [r for t in trained for r in sample(t, per_task, rng)][: args.steps * args.batch]
    tokenizer = build_tokenizer()
    workdir = Path(os.environ.get("TMPDIR", "/tmp"))
    # (rule, one forward pass per domain): what the workflow runs is the per-domain forward
    # for every rule but the baseline's; the shared forward pass shows what it saves.
    rules = {
        "baseline (sum of domain losses, one backward)": (None, False),
        "pcgrad (ftdag, one forward pass per domain)": (AggregatedGradients("pcgrad"), True),
        "pcgrad (torchjd 0.18.0, one forward pass per domain)": (
            AggregatedGradients("torchjd:PCGrad"),
            True,
        ),
        "pcgrad (ftdag, one shared forward pass)": (AggregatedGradients("pcgrad"), False),
    }
    # Each rule twice, alternating, so that drift in the machine's speed falls on all of them.
    results: dict[str, list[dict]] = {name: [] for name in rules}
    for _ in range(2):
        for name, (rule, per_domain) in rules.items():
            results[name].append(
                step_seconds(rule, per_domain, args.steps, records, tokenizer, workdir)
            )
    best = {name: min(r["seconds_per_step"] for r in runs) for name, runs in results.items()}
    baseline = best["baseline (sum of domain losses, one backward)"]
    result = {
        "machine": {
            "cpus": os.cpu_count(),
            "threads": args.threads,
            "python": platform.python_version(),
        },
        "model": {
            **DIMS,
            "parameters": sum(
                p.numel() for p in build_model(tokenizer, seed=0, **DIMS).parameters()
            ),
        },
        "domains": len(DOMAINS),
        "batch": args.batch,
        "steps": args.steps,
        "seconds_per_step_best_of_2": best,
        "ratio_to_baseline": {name: round(v / baseline, 2) for name, v in best.items()},
        "target_ratio": len(DOMAINS) + 1,
        "runs": results,
    }
    write_json(args.out, result)
    print(json.dumps({k: v for k, v in result.items() if k != "runs"}, indent=2))


if __name__ == "__main__":
    main()
