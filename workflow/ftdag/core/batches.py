"""What a batch is, for the training loop: prompt/answer records of tokens.

The loop (`ftdag.core.train`) asks a training-data object for the batch of some sample
indices and for the losses of a batch; it knows nothing else about the data. `PromptAnswerData`
is the text case: `<bos> prompt answer <eos>`, loss on the answer tokens only. Other families
bring their own (images and questions; one batch per task for gradient surgery) with the same
members: `n_samples`, `lead_in`, `fingerprint`, `batch(indices)`, `losses(model, batch)`
and `tokens(batch)`; optionally `stages` (`ftdag.core.schedule.Stage`s, in order), else the
data is one stage after its lead-in, if any.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence

import torch

from ftdag.core.schedule import Stage, lead_in_stages

IGNORE = -100  # label of tokens the loss does not count (prompt and padding)


def encode(tokenizer, records: list[dict]) -> tuple[list[list[int]], list[int]]:
    """Token ids of <bos> prompt answer <eos>, and where the answer starts in each."""
    prompts = tokenizer([r["prompt"] for r in records], add_special_tokens=False)["input_ids"]
    answers = tokenizer([r["answer"] for r in records], add_special_tokens=False)["input_ids"]
    bos, eos = tokenizer.bos_token_id, tokenizer.eos_token_id
    ids = [[bos, *p, *a, eos] for p, a in zip(prompts, answers, strict=True)]
    answer_start = [1 + len(p) for p in prompts]
    return ids, answer_start


def collate(ids, answer_start, pad_id: int):
    """Right-padded batch; labels only on the answer and <eos> (the model shifts them)."""
    width = max(len(x) for x in ids)
    input_ids = torch.full((len(ids), width), pad_id, dtype=torch.long)
    labels = torch.full((len(ids), width), IGNORE, dtype=torch.long)
    mask = torch.zeros((len(ids), width), dtype=torch.long)
    for i, (seq, start) in enumerate(zip(ids, answer_start, strict=True)):
        input_ids[i, : len(seq)] = torch.tensor(seq)
        labels[i, start : len(seq)] = torch.tensor(seq[start:])
        mask[i, : len(seq)] = 1
    return input_ids, mask, labels


def per_sample_answer_loss(logits, labels):
    """Cross-entropy of each sample's answer tokens, averaged over them: one value per row."""
    logits, labels = logits[:, :-1].float(), labels[:, 1:]  # token t predicts token t+1
    per_token = torch.nn.functional.cross_entropy(
        logits.reshape(-1, logits.shape[-1]),
        labels.reshape(-1),
        ignore_index=IGNORE,
        reduction="none",
    ).view(labels.shape)
    counted = (labels != IGNORE).sum(dim=1).clamp(min=1)
    return per_token.sum(dim=1) / counted


def answer_loss(logits, labels):
    """Cross-entropy of the answer tokens, averaged per sample, then over the batch: a 4-digit
    area answer weighs as much as a one-letter compass answer, so no task dominates."""
    return per_sample_answer_loss(logits, labels).mean()


class PromptAnswerData:
    """{prompt, answer} records, tokenized once; the first `lead_in` are a lead-in, or the
    records are `stages` (their samples in record order)."""

    def __init__(
        self, tokenizer, records: list[dict], lead_in: int = 0, stages: tuple[Stage, ...] = ()
    ):
        self.ids, self.answer_start = encode(tokenizer, records)
        self.pad_id = tokenizer.pad_token_id
        self.n_samples = len(records)
        self.lead_in, self.stages = lead_in, tuple(stages)
        lead_in_stages(self.n_samples, lead_in)  # checks that the lead-in leaves samples
        if stages and (lead_in or sum(s.samples for s in stages) != self.n_samples):
            raise ValueError(
                f"stages of {[s.samples for s in stages]} samples (and a lead-in of {lead_in}) "
                f"do not divide the {self.n_samples} records"
            )

    @property
    def fingerprint(self) -> str:
        """Identifies the data, so that a checkpoint of other data is not resumed."""
        parts = [self.ids, self.answer_start, self.lead_in]
        if self.stages:  # how many times each stage is seen is part of the run too
            parts.append([[s.samples, s.epochs] for s in self.stages])
        if any(s.restart_lr for s in self.stages):  # kept out otherwise: same fingerprints
            parts.append([k for k, s in enumerate(self.stages) if s.restart_lr])
        return hashlib.sha256(json.dumps(parts).encode()).hexdigest()[:16]

    def batch(self, indices: Sequence[int]) -> dict:
        input_ids, mask, labels = collate(
            [self.ids[i] for i in indices], [self.answer_start[i] for i in indices], self.pad_id
        )
        return {"input_ids": input_ids, "attention_mask": mask, "labels": labels}

    def losses(self, model, batch: dict, device) -> dict[str, torch.Tensor]:
        logits = model(
            input_ids=batch["input_ids"].to(device),
            attention_mask=batch["attention_mask"].to(device),
        ).logits
        return {"answer": answer_loss(logits, batch["labels"].to(device))}

    @staticmethod
    def tokens(batch: dict) -> int:
        return int(batch["attention_mask"].sum())
