"""What a batch is for the curriculum family: images and questions, through the model's
processor, with the loss on the answer tokens only. The shared loop (`ftdag.core.train`) trains
on it as it trains on exp3's prompt/answer records.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence

import torch

from ftdag.core.batches import IGNORE, answer_loss
from ftdag.core.vlm import IMAGE_PLACEHOLDER


class VisionQAData:
    """{image, question, answer} records. `image_of(path)` returns the (letterboxed) image of a
    record; `template` turns a question into the prompt text, e.g. "{question} Answer:"."""

    def __init__(
        self,
        processor,
        records: list[dict],
        image_of: Callable[[str], object],
        template: str = "{question}\n",
        lead_in: int = 0,
    ):
        self.processor, self.records, self.image_of = processor, records, image_of
        self.template, self.n_samples, self.lead_in = template, len(records), lead_in
        tokenizer = processor.tokenizer
        self.answer_ids = [
            tokenizer(r["answer"], add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
            for r in records
        ]

    @property
    def fingerprint(self) -> str:
        text = json.dumps([self.records, self.template, self.lead_in], sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def prompt(self, record: dict) -> str:
        return IMAGE_PLACEHOLDER + self.template.format(question=record["question"])

    def batch(self, indices: Sequence[int]) -> dict:
        records = [self.records[i] for i in indices]
        eos = self.processor.tokenizer.eos_token
        texts = [self.prompt(r) + r["answer"] + eos for r in records]
        inputs = self.processor(
            images=[self.image_of(r["image"]) for r in records],
            text=texts,
            padding=True,
            return_tensors="pt",
        )
        # Left padding: every sequence ends with its answer and <eos>.
        labels = torch.full_like(inputs["input_ids"], IGNORE)
        for row, i in enumerate(indices):
            answer = torch.tensor(self.answer_ids[i])
            if not torch.equal(inputs["input_ids"][row, -len(answer) :], answer):
                raise ValueError(f"record {i}: the answer is not at the end of its tokens")
            labels[row, -len(answer) :] = answer
        return {**inputs, "labels": labels}

    def losses(self, model, batch: dict, device) -> dict[str, torch.Tensor]:
        inputs = {k: v.to(device) for k, v in batch.items() if k != "labels"}
        logits = model(**inputs).logits
        return {"answer": answer_loss(logits, batch["labels"].to(device))}

    @staticmethod
    def tokens(batch: dict) -> int:
        return int(batch["attention_mask"].sum())
