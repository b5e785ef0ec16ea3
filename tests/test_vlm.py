"""The vision-language model layer: a tokenizer with the vision tokens, an image-and-text
processor without torchvision, a tiny Qwen2-VL, and their save/load round trip through
AutoModelForImageTextToText, AutoTokenizer and the processor's parts."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image
from transformers import AutoTokenizer

from ftdag.core.vlm import (
    IMAGE_PAD,
    IMAGE_PLACEHOLDER,
    VISION_TOKENS,
    build_processor,
    build_vlm,
    build_vlm_tokenizer,
    load_processor,
    load_vlm,
    save_vlm,
)

DIMS = {
    "hidden_size": 32,
    "intermediate_size": 64,
    "num_attention_heads": 4,
    "num_hidden_layers": 2,
    "vision_depth": 1,
}
RESOLUTION = 56  # 2 x 2 merged patches: 4 image tokens


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    torch.set_num_threads(1)
    tokenizer = build_vlm_tokenizer()
    processor = build_processor(tokenizer, RESOLUTION)
    model = build_vlm(tokenizer, seed=0, **DIMS)
    path = tmp_path_factory.mktemp("vlm") / "base"
    save_vlm(model, processor, path)
    return model, processor, path


def image(seed=0):
    pixels = np.random.default_rng(seed).integers(0, 256, (RESOLUTION, RESOLUTION, 3))
    return Image.fromarray(pixels.astype("uint8"))


def inputs(processor, text="how many?"):
    return processor(images=[image()], text=[IMAGE_PLACEHOLDER + text], return_tensors="pt")


def test_vision_tokens_are_single_special_tokens():
    tokenizer = build_vlm_tokenizer()
    ids = tokenizer(IMAGE_PLACEHOLDER + "ab", add_special_tokens=False)["input_ids"]
    assert ids[:3] == tokenizer.convert_tokens_to_ids([*VISION_TOKENS[:3]])
    assert len(ids) == 5 and len(set(ids)) == 5
    assert tokenizer.decode(ids, skip_special_tokens=True) == "ab"


def test_the_processor_expands_the_image_to_its_tokens(saved):
    _, processor, _ = saved
    batch = inputs(processor)
    image_tokens = int((batch["input_ids"] == processor.image_token_id).sum())
    assert image_tokens == (RESOLUTION // 28) ** 2
    assert batch["image_grid_thw"].tolist() == [[1, RESOLUTION // 14, RESOLUTION // 14]]
    with pytest.raises(ValueError, match="multiple of 28"):
        build_processor(build_vlm_tokenizer(), 50)


def test_model_tokenizer_and_processor_round_trip(saved):
    model, processor, path = saved
    config = json.loads((path / "config.json").read_text())
    tokenizer = AutoTokenizer.from_pretrained(path)
    assert config["image_token_id"] == tokenizer.convert_tokens_to_ids(IMAGE_PAD)
    assert tokenizer.padding_side == "left"
    # Recorded as a stock processor, for AutoProcessor where torchvision is installed.
    saved_processor = json.loads((path / "processor_config.json").read_text())
    assert saved_processor["processor_class"] == "Qwen2VLProcessor"

    reloaded = load_processor(path)
    before, after = inputs(processor), inputs(reloaded)
    assert before.keys() == after.keys()
    for key in before:
        assert torch.equal(before[key], after[key]), key
    loaded = load_vlm(path).eval()
    model.eval()
    with torch.no_grad():
        assert torch.equal(model(**before).logits, loaded(**after).logits)


def test_a_few_steps_learn_an_answer_about_an_image(saved):
    _, processor, path = saved
    model = load_vlm(path).train()
    batch = inputs(processor, "colour?=red")
    labels = torch.full_like(batch["input_ids"], -100)
    labels[0, -3:] = batch["input_ids"][0, -3:]  # the loss on the answer only
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
    losses = []
    for _ in range(15):
        loss = model(**batch, labels=labels).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.2 * losses[0], losses


def test_batched_answers_about_images_equal_one_at_a_time(saved):
    from ftdag.core.vlm import generate_vision_answers

    _, processor, path = saved
    model = load_vlm(path).eval()
    images = [image(seed) for seed in range(5)]
    prompts = [IMAGE_PLACEHOLDER + q for q in ("a?", "how many?", "b", "colour?", "where is it")]
    batched = generate_vision_answers(model, processor, images, prompts, batch_size=5)
    single = [
        generate_vision_answers(model, processor, [i], [p], batch_size=1)[0]
        for i, p in zip(images, prompts, strict=True)
    ]
    assert batched == single
    assert any(len(a) > 1 for a in batched)  # an untrained model rambles: a real comparison


def test_a_corpus_makes_its_words_single_tokens_and_survives_a_reload(tmp_path):
    corpus = ["What colour is the circle? red", "Is there any shape? yes"] * 3
    tokenizer = build_vlm_tokenizer(corpus)
    assert build_vlm_tokenizer(list(reversed(corpus))).get_vocab() == tokenizer.get_vocab()
    text = IMAGE_PLACEHOLDER + "What colour is the zebra?\nAnswer: red"
    tokens = tokenizer.convert_ids_to_tokens(tokenizer(text)["input_ids"])
    assert tokens[:3] == list(VISION_TOKENS[:1]) + [IMAGE_PAD, VISION_TOKENS[2]]
    assert tokens[3:14] == ["What", " ", "colour", " ", "is", " ", "the", " ", "z", "e", "b"]
    assert tokens[-1] == "red" and "Answer" not in tokenizer.get_vocab()  # unseen: characters
    assert (
        tokenizer.decode(tokenizer(text)["input_ids"], skip_special_tokens=True)
        == text[len(IMAGE_PLACEHOLDER) :]
    )
    model = build_vlm(tokenizer, seed=0, **DIMS)
    save_vlm(model, build_processor(tokenizer, RESOLUTION), tmp_path / "m")
    reloaded = load_processor(tmp_path / "m").tokenizer
    assert reloaded(text)["input_ids"] == tokenizer(text)["input_ids"]
    assert model.config.image_token_id == reloaded.convert_tokens_to_ids(IMAGE_PAD)
