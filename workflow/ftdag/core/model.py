"""Causal language models: a Hugging Face architecture built from config dimensions (the
embedded default), or any checkpoint by hub id or local path (real scale). Both are saved with
`save_pretrained` and loaded with `from_pretrained`, so the same code serves both scales."""

from __future__ import annotations

import torch
from transformers import AutoModelForCausalLM, Qwen2Config, Qwen2ForCausalLM

from ftdag.core.io import atomic_dir


def build_model(
    tokenizer,
    hidden_size: int,
    intermediate_size: int,
    num_attention_heads: int,
    num_hidden_layers: int,
    seed: int,
    max_position_embeddings: int = 128,
) -> Qwen2ForCausalLM:
    """A fresh Qwen2-architecture model; its weights depend only on the dims and the seed."""
    config = Qwen2Config(
        vocab_size=len(tokenizer),
        hidden_size=hidden_size,
        intermediate_size=intermediate_size,
        num_attention_heads=num_attention_heads,
        num_key_value_heads=num_attention_heads,
        num_hidden_layers=num_hidden_layers,
        max_position_embeddings=max_position_embeddings,
        tie_word_embeddings=True,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    torch.manual_seed(seed)
    return Qwen2ForCausalLM(config)


def load_model(path, device: str = "cpu", dtype=torch.float32):
    return AutoModelForCausalLM.from_pretrained(path, dtype=dtype).to(device)


def save_model(model, tokenizer, path) -> None:
    """Model and tokenizer into one folder, atomically: the folder appears complete or not at
    all."""
    with atomic_dir(path) as tmp:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)


def count_parameters(model) -> int:
    return sum(p.numel() for p in model.parameters())
