"""Benchmark: the shared training loop and batched evaluation against what a user would write.

In one process, side by side:
- training: ftdag's loop (`ftdag.core.train`) against Hugging Face `Trainer` on the same wide
  model (4.2 M parameters), the same samples in the same order, the same batch size, learning
  rate schedule, weight decay and clipping; alternating runs, the median of each;
- evaluation: `ftdag.core.generate.generate_answers` (batched greedy decoding) against
  `model.generate` one prompt at a time, on the same prompts; the answers must be the same.

    python benchmarks/shared_loop_speed.py [--steps 60] [--prompts 1500] [--threads 2]

Writes benchmarks/results/shared_loop_speed.json.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "workflow"))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from ftdag.core.batches import PromptAnswerData, answer_loss  # noqa: E402
from ftdag.core.config import schema_defaults  # noqa: E402
from ftdag.core.generate import generate_answers, generate_one_at_a_time  # noqa: E402
from ftdag.core.io import write_json  # noqa: E402
from ftdag.core.model import build_model  # noqa: E402
from ftdag.core.provenance import cpu_model, versions  # noqa: E402
from ftdag.core.schedule import epoch_order  # noqa: E402
from ftdag.core.tokenizer import build_tokenizer  # noqa: E402
from ftdag.core.train import TrainConfig, train  # noqa: E402
from ftdag.exp3.tasks import TASK_NAMES, sample_examples  # noqa: E402
from ftdag.exp3.world import STANDARD, generate_world  # noqa: E402

DEFAULTS = schema_defaults()["exp3"]


def records(n: int, seed: int) -> list[dict]:
    world = generate_world(**DEFAULTS["world"])
    examples = sample_examples(TASK_NAMES, n, world, np.random.default_rng(seed), False)
    return [e.to_record(STANDARD) for e in examples]


def wide_model(tokenizer, path=None):
    """The default wide arch: built fresh, or a trained one (pt1) loaded from `path`."""
    if path:
        from ftdag.core.model import load_model

        return load_model(path)
    arch = {k: v for k, v in DEFAULTS["archs"]["wide"].items() if k != "epochs"}
    return build_model(tokenizer, seed=0, **arch)


def run_ftdag(tokenizer, samples, config: TrainConfig, path=None) -> float:
    model = wide_model(tokenizer, path)
    data = PromptAnswerData(tokenizer, samples)
    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        stats = train(model, data, config, Path(tmp) / "c.pt", progress=False)
        seconds = time.perf_counter() - started
    return seconds, stats["loss_curve"]


def run_trainer(tokenizer, samples, config: TrainConfig, path=None) -> float:
    """The Trainer a user would write: a dataset of token ids, a padding collator, the
    answer loss, the same optimizer settings; its sampler replaced by ftdag's epoch order so
    that both see the same batches."""
    from torch.utils.data import Dataset, SequentialSampler
    from transformers import Trainer, TrainingArguments

    data = PromptAnswerData(tokenizer, samples)
    order = epoch_order(config.seed, 0, data.n_samples).tolist()

    class Ordered(Dataset):
        def __len__(self):
            return len(order)

        def __getitem__(self, i):
            return order[i]

    class AnswerTrainer(Trainer):
        def compute_loss(self, model, inputs, return_outputs=False, **kwargs):
            labels = inputs.pop("labels")
            logits = model(**inputs).logits
            return answer_loss(logits, labels)

        def _get_train_sampler(self, *args, **kwargs):
            return SequentialSampler(self.train_dataset)

    with tempfile.TemporaryDirectory() as tmp:
        arguments = TrainingArguments(
            output_dir=tmp,
            per_device_train_batch_size=config.batch_size,
            num_train_epochs=config.epochs,
            learning_rate=config.lr,
            weight_decay=config.weight_decay,
            warmup_steps=max(1, int(config.warmup_fraction * len(order) // config.batch_size)),
            lr_scheduler_type="linear",
            max_grad_norm=config.grad_clip,
            optim="adamw_torch",
            logging_strategy="no",
            save_strategy="no",
            report_to=[],
            use_cpu=True,
            bf16=config.precision == "bf16",
            dataloader_num_workers=0,
            disable_tqdm=True,
            seed=config.seed,
        )
        # A process's default, which ftdag's loop changes (it flushes subnormal floats).
        torch.set_flush_denormal(False)
        trainer = AnswerTrainer(
            model=wide_model(tokenizer, path),
            args=arguments,
            train_dataset=Ordered(),
            data_collator=data.batch,
        )
        started = time.perf_counter()
        trainer.train()
        return time.perf_counter() - started


def bench_training(args, tokenizer) -> dict:
    """Both loops at each precision: float32, then bfloat16 autocast (Trainer's `bf16=True`)."""
    samples = records(args.steps * 64, seed=1)
    tokens = sum(len(i) for i in PromptAnswerData(tokenizer, samples).ids)
    result = {
        "model": str(args.from_model) if args.from_model else "wide, freshly built",
        "steps": args.steps,
        "batch_size": 64,
        "tokens": tokens,
    }
    medians = {}
    for precision in ("fp32", "bf16"):
        config = TrainConfig(
            epochs=1, batch_size=64, lr=2e-3, checkpoint_every=10**9, precision=precision
        )
        ftdag_seconds, trainer_seconds = [], []
        for _ in range(args.repeats):  # alternating, so that drifts of the machine hit both
            seconds, losses = run_ftdag(tokenizer, samples, config, args.from_model)
            ftdag_seconds.append(seconds)
            trainer_seconds.append(run_trainer(tokenizer, samples, config, args.from_model))
        ftdag_median = statistics.median(ftdag_seconds)
        trainer_median = statistics.median(trainer_seconds)
        medians[precision] = (ftdag_median, trainer_median)
        result[precision] = {
            "ftdag_seconds": [round(s, 2) for s in ftdag_seconds],
            "trainer_seconds": [round(s, 2) for s in trainer_seconds],
            "ftdag_tokens_per_second": round(tokens / ftdag_median),
            "trainer_tokens_per_second": round(tokens / trainer_median),
            "speedup": round(trainer_median / ftdag_median, 3),
            "ftdag_final_loss": round(float(np.mean(losses[-10:])), 4),
        }
    # What a user gets who writes Trainer with its defaults (float32) and ftdag with bf16.
    result["ftdag_bf16_vs_trainer_fp32"] = round(medians["fp32"][1] / medians["bf16"][0], 3)
    return result


def bench_generation(args, tokenizer) -> dict:
    model = wide_model(tokenizer)
    # A briefly trained model, so that answers have their real lengths (an untrained one
    # rambles to the token limit).
    samples = records(3200, seed=2)
    config = TrainConfig(epochs=1, batch_size=64, lr=2e-3, checkpoint_every=10**9)
    with tempfile.TemporaryDirectory() as tmp:
        train(model, PromptAnswerData(tokenizer, samples), config, Path(tmp) / "c", progress=False)
    prompts = [r["prompt"] for r in records(args.prompts, seed=3)]
    batched_runs, single_runs = [], []
    for _ in range(args.repeats):  # alternating, so that drifts of the machine hit both
        started = time.perf_counter()
        batched = generate_answers(model, tokenizer, prompts, 256, 8, progress=False)
        batched_runs.append(time.perf_counter() - started)
        started = time.perf_counter()
        single = generate_one_at_a_time(model, tokenizer, prompts, 8)
        single_runs.append(time.perf_counter() - started)
    batched_seconds = statistics.median(batched_runs)
    single_seconds = statistics.median(single_runs)
    same = sum(a == b for a, b in zip(batched, single, strict=True))
    return {
        "prompts": len(prompts),
        "batched_runs": [round(x, 2) for x in batched_runs],
        "one_at_a_time_runs": [round(x, 2) for x in single_runs],
        "batched_seconds": round(batched_seconds, 2),
        "one_at_a_time_seconds": round(single_seconds, 2),
        "batched_prompts_per_second": round(len(prompts) / batched_seconds, 1),
        "one_at_a_time_prompts_per_second": round(len(prompts) / single_seconds, 1),
        "speedup": round(single_seconds / batched_seconds, 2),
        "same_answers": same,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--prompts", type=int, default=1500)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--only", choices=["training", "generation"])
    parser.add_argument(
        "--from-model",
        type=Path,
        help="train from this saved model (e.g. a campaign's results/exp3/wide/models/pt1), "
        "as every fine-tune does, instead of a fresh one",
    )
    parser.add_argument(
        "--out", type=Path, default=REPO / "benchmarks/results/shared_loop_speed.json"
    )
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    tokenizer = build_tokenizer()
    result = {
        "machine": {
            "cpu": cpu_model(),
            "threads": args.threads,
            "python": platform.python_version(),
        },
        "versions": versions(),
    }
    if args.only != "generation":
        result["training"] = bench_training(args, tokenizer)
    if args.only != "training":
        result["generation"] = bench_generation(args, tokenizer)
    write_json(args.out, result)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
