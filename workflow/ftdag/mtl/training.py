"""The MTL family's training step (rule mtl_train): an arm's model, from the tiny LM or a
checkpoint, with LoRA optionally, trained by the shared loop under the arm's gradient rule and
the family's objective, with validation, early stopping and kept snapshots."""

from __future__ import annotations

import json
import logging
from pathlib import Path

from ftdag.core import io
from ftdag.mtl.config_checks import TINY
from ftdag.mtl.steps import SNAPSHOTS, score, validation_metrics

log = logging.getLogger("ftdag.mtl")


def starting_model(model_settings: dict, seed: int, device: str):
    """(model, tokenizer) an arm starts from: the tiny LM built from the dims (the same
    weights for every arm of a seed), or a checkpoint by hub id or folder; with LoRA adapters
    when `lora` is set."""
    import torch

    from ftdag.core.lora import add_lora
    from ftdag.core.model import build_model, load_model
    from ftdag.core.tokenizer import build_tokenizer, load_tokenizer

    base = model_settings.get("base", TINY)
    if base == TINY:
        dims = {k: model_settings[k] for k in DIMS}
        tokenizer = build_tokenizer()
        model = build_model(tokenizer, seed=seed, **dims).to(device)
    else:
        tokenizer = load_tokenizer(base)
        dtype = getattr(torch, model_settings.get("dtype", "float32"))
        model = load_model(base, device=device, dtype=dtype)
    if model_settings.get("lora"):
        torch.manual_seed(seed)  # the adapters' initial weights
        model = add_lora(model, model_settings["lora"])
    return model, tokenizer


DIMS = ("hidden_size", "intermediate_size", "num_attention_heads", "num_hidden_layers")


def snapshot_saver(tokenizer):
    """Saves a snapshot as a plain model: a LoRA model's adapters merged into a copy (the
    training goes on with its adapters)."""
    import copy

    from ftdag.core.model import save_model

    def save(model, folder) -> None:
        if hasattr(model, "merge_and_unload"):
            model = copy.deepcopy(model).merge_and_unload()
        save_model(model, tokenizer, folder)

    return save


def train_arm(
    train_split,
    validation_split,
    model_settings: dict,
    training: dict,
    aggregator: str,
    schedule: dict,
    eval_settings: dict,
    seed: int,
    out_dir,
    checkpoint,
    device: str,
    objective: dict | None = None,
) -> None:
    """One arm and seed: a causal LM trained on every domain with the arm's gradient rule
    (`sum`: the summed losses; `pcgrad`, `torchjd:<Name>`: one gradient per domain) and
    objective (`sft`: the answers' loss; `grpo`: rewards of sampled answers), validated every
    k epochs and before training, stopped early, and snapshotted every k epochs (the last M
    kept) and at its best validation, under `out_dir/snapshots/`. Under torchrun every
    process trains its share of each batch and the first one writes."""
    import pandas as pd

    from ftdag.core import distributed
    from ftdag.core.checkpoint import Retention
    from ftdag.core.stopping import EarlyStopping, Validation
    from ftdag.core.surgery import AggregatedGradients
    from ftdag.core.train import TrainConfig, train

    records, validation = io.read_jsonl(train_split), io.read_jsonl(validation_split)
    domains = list(dict.fromkeys(r["domain"] for r in records))
    model, tokenizer = starting_model(model_settings, seed, device)
    device = str(next(model.parameters()).device)  # with its index: cuda:1 under torchrun

    def evaluate(m) -> dict[str, float]:
        _, rewards = score(m, tokenizer, validation, **eval_settings)
        return validation_metrics(validation, rewards)

    objective = objective or {"name": "sft"}
    out = Path(out_dir)
    stats = train(
        model,
        training_data(objective, tokenizer, records, domains, aggregator != "sum", seed),
        TrainConfig.from_config({**training, "epochs": schedule["max_epochs"], "seed": seed}),
        checkpoint,
        f"mtl:{aggregator}:{json.dumps(model_settings, sort_keys=True)}:{json.dumps(objective)}",
        device,
        gradient=None if aggregator == "sum" else AggregatedGradients(aggregator, seed),
        validation=Validation(evaluate, schedule["validate_every_epochs"], True),
        early_stopping=EarlyStopping(**schedule["early_stopping"]),
        retention=Retention(
            out / SNAPSHOTS,
            schedule["checkpoint_every_epochs"],
            schedule["keep_last"],
            snapshot_saver(tokenizer),
        ),
    )
    if not distributed.is_main():
        return
    stats["processes"] = distributed.world_size()
    with io.atomic_path(out / "validations.csv") as tmp:
        pd.DataFrame(stats.pop("validations")).to_csv(tmp, index=False)
    with io.atomic_path(out / "loss_curve.csv") as tmp:
        pd.DataFrame(
            {"step": range(1, len(stats["loss_curve"]) + 1), "loss": stats["loss_curve"]}
        ).to_csv(tmp, index=False)
    summary = {**stats, "aggregator": aggregator, "objective": objective["name"]}
    io.write_json(out / "train_stats.json", {**summary, "domains": domains})
    Path(checkpoint).unlink(missing_ok=True)
    log.info(
        "%s: %d steps; %s", aggregator, stats["steps"], stats.get("stopped_early") or "ran to max"
    )


def training_data(objective: dict, tokenizer, records, domains, per_domain: bool, seed: int):
    """The loop's data for an objective: the answers' loss per domain (sft), or the policy
    loss of sampled answers per domain (grpo). With `per_domain`, each domain's samples get
    their own forward pass, so that a gradient per domain costs about one backward pass."""
    from ftdag.mtl.batches import DomainData

    if objective["name"] == "sft":
        return DomainData(tokenizer, records, domains, forward_per_domain=per_domain)
    from ftdag.mtl.grpo import GroupRelativeData

    return GroupRelativeData(
        tokenizer,
        records,
        domains,
        forward_per_domain=per_domain,
        group_size=objective["group_size"],
        temperature=objective["temperature"],
        max_new_tokens=objective["max_new_tokens"],
        seed=seed,
    )
