"""LoRA adapters (peft) from a config's `lora` section: train the adapters, then merge them
back so that every saved model is a plain one that evaluation and the next stage load alike."""

from __future__ import annotations


def add_lora(model, lora: dict, task_type: str | None = "CAUSAL_LM"):
    """`model` with adapters on `lora["target_modules"]`; only the adapters train."""
    from peft import LoraConfig, get_peft_model

    config = LoraConfig(
        r=lora["r"],
        lora_alpha=lora["alpha"],
        lora_dropout=lora["dropout"],
        target_modules=list(lora["target_modules"]),
        task_type=task_type,
    )
    return get_peft_model(model, config)


def merged(model):
    """The plain model with its adapters merged in (itself when it has none)."""
    return model.merge_and_unload() if hasattr(model, "merge_and_unload") else model
