"""The shared loop trains a tiny vision-language model on scene questions: what a batch is
(images and questions through the processor, loss on the answer) is the loop's parameter."""

from __future__ import annotations

import numpy as np
import torch

from ftdag.core.batches import IGNORE
from ftdag.core.train import TrainConfig, train
from ftdag.core.vlm import build_processor, build_vlm, build_vlm_tokenizer
from ftdag.curriculum.batches import VisionQAData
from ftdag.curriculum.scenes import generate_scene, letterbox, questions, render

RESOLUTION = 56


def scene_records(n_scenes: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    images, records = {}, []
    for i in range(n_scenes):
        scene = generate_scene(rng)
        images[f"scene{i}"] = letterbox(render(scene), RESOLUTION)
        for q in questions(scene, rng):
            if q["stage"] == 1:
                records.append({"image": f"scene{i}", **q})
    return images, records


def test_a_batch_labels_only_the_answer_and_the_loop_learns_stage_1(tmp_path):
    torch.set_num_threads(1)
    images, records = scene_records(24)
    tokenizer = build_vlm_tokenizer()
    processor = build_processor(tokenizer, RESOLUTION)
    data = VisionQAData(processor, records, images.__getitem__)
    batch = data.batch([0, 1, 2])
    for row in range(3):
        labelled = batch["labels"][row][batch["labels"][row] != IGNORE].tolist()
        answer = tokenizer.decode(labelled[:-1])
        assert answer == records[row]["answer"] and labelled[-1] == tokenizer.eos_token_id
    assert batch["pixel_values"].shape[0] == 3 * (RESOLUTION // 14) ** 2

    model = build_vlm(
        tokenizer,
        hidden_size=32,
        intermediate_size=64,
        num_attention_heads=4,
        num_hidden_layers=2,
        vision_depth=1,
        seed=0,
    )
    config = TrainConfig(epochs=6, batch_size=8, lr=5e-3, seed=0)
    stats = train(model, data, config, tmp_path / "c.pt", progress=False)
    losses = stats["loss_curve"]
    assert stats["steps"] == 6 * -(-len(records) // 8)
    assert np.mean(losses[-3:]) < 0.5 * np.mean(losses[:3]), losses
