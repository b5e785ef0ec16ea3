"""Benchmark: training speed of the default wide pt1 with and without flushing subnormal floats.

Trains the default config's wide pt1 model on its pt1 data for N steps twice, once with
`torch.set_flush_denormal(False)` and once with True, and writes steps/s per 100-step window
and the loss at the end to JSON. With one thread each the two run side by side (both see the
same machine); with more, one after the other.

    python benchmarks/flush_denormal.py [--steps 1200] [--threads 1] [--out FILE]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "workflow"))


def train_steps(flush: bool, steps: int, threads: int) -> dict:
    import torch

    from ftdag.core.batches import answer_loss, collate, encode
    from ftdag.core.model import build_model
    from ftdag.core.schedule import epoch_order
    from ftdag.core.tokenizer import build_tokenizer
    from ftdag.exp3.datasets import TrainingSizes, build_training_set
    from ftdag.exp3.world import generate_world

    torch.set_num_threads(threads)
    torch.set_flush_denormal(flush)
    exp3 = yaml.safe_load((REPO / "config/config.yaml").read_text())["exp3"]
    data = exp3["data"]
    sizes = TrainingSizes.from_config(data)
    world = generate_world(**exp3["world"])
    records = build_training_set("pt1", world, sizes, data["seed"], set())
    tokenizer = build_tokenizer()
    arch = {k: v for k, v in exp3["archs"]["wide"].items() if k != "epochs"}
    model = build_model(tokenizer, seed=0, **arch)
    ids, answer_start = encode(tokenizer, records)
    lr, batch_size = exp3["pretrain"]["lr"], exp3["pretrain"]["batch_size"]
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01)
    steps_per_epoch = len(ids) // batch_size
    windows, started = [], time.perf_counter()
    for step in range(steps):
        epoch, position = divmod(step, steps_per_epoch)
        batch = epoch_order(0, epoch, len(ids))[position * batch_size : (position + 1) * batch_size]
        input_ids, mask, labels = collate(
            [ids[i] for i in batch], [answer_start[i] for i in batch], tokenizer.pad_token_id
        )
        loss = answer_loss(model(input_ids=input_ids, attention_mask=mask).logits, labels)
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        if (step + 1) % 100 == 0:
            now = time.perf_counter()
            windows.append(round(100 / (now - started), 3))
            started = now
    return {"flush_denormal": flush, "steps_per_second_per_100": windows, "loss": loss.item()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=1200)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument(
        "--out", type=Path, default=REPO / "benchmarks/results/flush_denormal_1thread.json"
    )
    parser.add_argument("--worker", choices=["0", "1"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(train_steps(args.worker == "1", args.steps, args.threads)))
        return
    runs = []
    workers = []
    for flag in ("0", "1"):
        command = [sys.executable, __file__, "--steps", str(args.steps), "--worker", flag]
        command += ["--threads", str(args.threads)]
        workers.append(subprocess.Popen(command, stdout=subprocess.PIPE, text=True))
        if args.threads > 1:  # one after the other: each gets the cores it asked for
            runs.append(json.loads(workers.pop().communicate()[0]))
    runs += [json.loads(worker.communicate()[0]) for worker in workers]
    side_by_side = args.threads == 1
    result = {
        "what": "default wide pt1 (4.2M parameters, batch 64)",
        "threads": args.threads,
        "runs_side_by_side": side_by_side,
        "steps": args.steps,
        "runs": runs,
        "last_window_speedup": round(
            runs[1]["steps_per_second_per_100"][-1] / runs[0]["steps_per_second_per_100"][-1], 2
        ),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
