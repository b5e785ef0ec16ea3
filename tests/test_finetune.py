"""Fine-tuning through exp3.finetune: full weights and LoRA adapters (real peft), from a parent
saved on disk, merged and saved as a plain model that loads with from_pretrained."""

from __future__ import annotations

import json

import pytest
import torch

from finetune_helpers import (
    TINY_DIMS,
    TINY_FINETUNE,
    save_tiny_parent,
    weights,
    write_finetune_data,
)
from ftdag.core.tokenizer import save_tokenizer
from ftdag.exp3 import steps


@pytest.fixture(scope="module")
def parent(tmp_path_factory):
    torch.set_num_threads(1)
    return save_tiny_parent(tmp_path_factory.mktemp("parent") / "pt1")


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return write_finetune_data(tmp_path_factory.mktemp("data") / "ftwb.jsonl", 48, "atlantis")


def test_full_finetune_changes_every_matrix(parent, data, tmp_path):
    out = tmp_path / "ftwb1-1"
    steps.finetune(data, parent, out, TINY_FINETUNE, tmp_path / "ckpt.pt", "cpu")
    before, after = weights(parent), weights(out)
    assert not torch.equal(before["model.embed_tokens.weight"], after["model.embed_tokens.weight"])
    assert not torch.equal(
        before["model.layers.0.mlp.up_proj.weight"], after["model.layers.0.mlp.up_proj.weight"]
    )
    stats = json.loads((out / "train_stats.json").read_text())
    assert stats["steps"] == 2 * 6 and not (tmp_path / "ckpt.pt").exists()


def test_lora_changes_only_the_adapted_projections_and_saves_a_plain_model(parent, data, tmp_path):
    out = tmp_path / "ftwb1-2"
    lora = {"r": 4, "alpha": 8, "dropout": 0.0, "target_modules": ["q_proj", "v_proj"]}
    steps.finetune(data, parent, out, {**TINY_FINETUNE, "lora": lora}, tmp_path / "ckpt.pt", "cpu")
    before, after = weights(parent), weights(out)
    assert set(before) == set(after)  # merged: no adapter keys left, loads as the base class
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    assert changed == {
        "model.layers.0.self_attn.q_proj.weight",
        "model.layers.0.self_attn.v_proj.weight",
    }


def test_pretrain_takes_the_arch_lr_where_the_arch_has_one(tmp_path, monkeypatch):
    """A wider arch may need a smaller peak learning rate than exp3.pretrain.lr."""
    save_tokenizer(tmp_path / "tokenizer")
    trained_with = []
    monkeypatch.setattr(
        steps, "_train_and_save", lambda *args, **kwargs: trained_with.append(args[3])
    )
    arch = {**TINY_DIMS, "epochs": 2}
    for this_arch in (arch, {**arch, "lr": 1e-4}):
        steps.pretrain(
            "pt1.jsonl", tmp_path / "tokenizer", tmp_path / "pt1", this_arch, TINY_FINETUNE,
            tmp_path / "pt1.pt", "cpu",
        )  # fmt: skip
    assert [t["lr"] for t in trained_with] == [TINY_FINETUNE["lr"], 1e-4]
    assert {t["epochs"] for t in trained_with} == {2}
