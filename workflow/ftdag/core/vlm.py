"""Vision-language models: a tiny Qwen2-VL built from config dimensions (the embedded default),
or a checkpoint by hub id or local path (Qwen2-VL-7B, Qwen3-VL-8B at real scale). Both are
saved with `save_pretrained` and loaded with `AutoModelForImageTextToText.from_pretrained`.

Without torchvision (none for this CPU), the stock Qwen-VL processor cannot be built: its video
processor needs torchvision even for images alone. `ImageTextProcessor` is Qwen2-VL's
processor without the video part, over `Qwen2VLImageProcessorPil`; `load_processor` builds it
from a saved folder's parts. The folder is saved as a stock `Qwen2VLProcessor`, so that where
torchvision is installed `AutoProcessor` loads it as it loads a hub checkpoint.

The locally built tokenizer is character-level, plus the vision tokens whose ids the model
config's `*_token_id` fields name.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

import torch
from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import (
    AutoModelForImageTextToText,
    AutoTokenizer,
    PreTrainedTokenizerFast,
    Qwen2VLConfig,
    Qwen2VLForConditionalGeneration,
    Qwen2VLImageProcessorPil,
    Qwen2VLProcessor,
)
from transformers.processing_utils import ProcessorMixin

from ftdag.core.io import atomic_dir
from ftdag.core.tokenizer import BOS, CHARACTERS, EOS, PAD

VISION_START, IMAGE_PAD, VISION_END, VIDEO_PAD = (
    "<|vision_start|>",
    "<|image_pad|>",
    "<|vision_end|>",
    "<|video_pad|>",
)
VISION_TOKENS = (VISION_START, IMAGE_PAD, VISION_END, VIDEO_PAD)
IMAGE_PLACEHOLDER = VISION_START + IMAGE_PAD + VISION_END  # the processor expands IMAGE_PAD
PATCH, MERGE = 14, 2  # Qwen2-VL: 14-pixel patches, 2x2 merged into one token


def build_vlm_tokenizer(corpus: Iterable[str] = (), max_vocab: int = 2000):
    """Characters (as the exp3 tokenizer), a newline and the vision tokens; with a `corpus`,
    also the words of that text as single tokens (BPE merges within words, learnt from it):
    a question of 30 characters is then 12 tokens, which a tiny model reads more easily and
    trains on faster. Words it never saw fall back to characters."""
    specials = [PAD, BOS, EOS, *VISION_TOKENS]
    core = Tokenizer(models.BPE(unk_token=PAD))
    # Vision tokens whole, words whole (merges stay inside them), everything else alone.
    core.pre_tokenizer = pre_tokenizers.Split(
        Regex(r"<\|[a-z_]+\|>|[A-Za-z]+|."), behavior="isolated"
    )
    core.decoder = decoders.Fuse()
    trainer = trainers.BpeTrainer(
        vocab_size=max_vocab,
        special_tokens=specials,
        initial_alphabet=[*CHARACTERS, "\n"],
        show_progress=False,
    )
    core.train_from_iterator(sorted(corpus), trainer)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=core,
        bos_token=BOS,
        eos_token=EOS,
        pad_token=PAD,
        padding_side="left",  # given here, it survives a reload; generation appends right
        model_max_length=4096,
        extra_special_tokens={
            "image_token": IMAGE_PAD,
            "video_token": VIDEO_PAD,
            "vision_start_token": VISION_START,
            "vision_end_token": VISION_END,
        },
    )
    tokenizer.add_special_tokens({"additional_special_tokens": list(VISION_TOKENS)})
    return tokenizer


class ImageTextProcessor(Qwen2VLProcessor):
    """Qwen2-VL's processor for images and text, without the video processor (torchvision)."""

    def __init__(self, image_processor=None, tokenizer=None, chat_template=None, **kwargs):
        self.image_token = getattr(tokenizer, "image_token", None) or IMAGE_PAD
        self.video_token = getattr(tokenizer, "video_token", None) or VIDEO_PAD
        self.image_token_id = tokenizer.convert_tokens_to_ids(self.image_token)
        self.video_token_id = tokenizer.convert_tokens_to_ids(self.video_token)
        ProcessorMixin.__init__(self, image_processor, tokenizer, chat_template=chat_template)


def build_processor(tokenizer, resolution: int) -> ImageTextProcessor:
    """A processor that turns a `resolution` x `resolution` image (letterboxed beforehand) into
    (resolution / 28)^2 image tokens: min and max pixels are both that square."""
    if resolution % (PATCH * MERGE):
        raise ValueError(f"resolution {resolution} must be a multiple of {PATCH * MERGE}")
    pixels = resolution * resolution
    image_processor = Qwen2VLImageProcessorPil(
        size={"shortest_edge": pixels, "longest_edge": pixels},
        patch_size=PATCH,
        merge_size=MERGE,
        temporal_patch_size=2,
    )
    return ImageTextProcessor(image_processor=image_processor, tokenizer=tokenizer)


def build_vlm(
    tokenizer,
    hidden_size: int,
    intermediate_size: int,
    num_attention_heads: int,
    num_hidden_layers: int,
    vision_depth: int,
    seed: int,
) -> Qwen2VLForConditionalGeneration:
    """A fresh tiny Qwen2-VL; its weights depend only on the dims and the seed. The vision
    tower's width is the text width (Qwen2-VL merges into the text hidden size)."""
    head_dim = hidden_size // num_attention_heads
    if hidden_size % num_attention_heads or head_dim % 8:
        raise ValueError(
            f"hidden_size {hidden_size} / num_attention_heads {num_attention_heads} must give a "
            "head size divisible by 8 (three multimodal rotary sections)"
        )
    half = head_dim // 2  # mrope_section: temporal, height, width; they sum to head_dim / 2
    section = [half - 2 * (half // 4), half // 4, half // 4]
    ids = {name: tokenizer.convert_tokens_to_ids(token) for name, token in _TOKEN_IDS.items()}
    config = Qwen2VLConfig(
        text_config={
            "vocab_size": len(tokenizer),
            "hidden_size": hidden_size,
            "intermediate_size": intermediate_size,
            "num_hidden_layers": num_hidden_layers,
            "num_attention_heads": num_attention_heads,
            "num_key_value_heads": num_attention_heads,
            "max_position_embeddings": 4096,
            "rope_scaling": {"type": "mrope", "mrope_section": section},
            "tie_word_embeddings": True,
            "bos_token_id": tokenizer.bos_token_id,
            "eos_token_id": tokenizer.eos_token_id,
            "pad_token_id": tokenizer.pad_token_id,
        },
        vision_config={
            "depth": vision_depth,
            "embed_dim": hidden_size,
            "hidden_size": hidden_size,
            "num_heads": num_attention_heads,
            "mlp_ratio": 2,
            "patch_size": PATCH,
            "spatial_merge_size": MERGE,
            "temporal_patch_size": 2,
            "in_channels": 3,
        },
        tie_word_embeddings=True,
        **ids,
    )
    torch.manual_seed(seed)
    return Qwen2VLForConditionalGeneration(config)


_TOKEN_IDS = {
    "image_token_id": IMAGE_PAD,
    "video_token_id": VIDEO_PAD,
    "vision_start_token_id": VISION_START,
    "vision_end_token_id": VISION_END,
}


# The stock processor class of each model type, what AutoProcessor builds where torchvision is
# installed; `ImageTextProcessor` stands in for it here.
STOCK_PROCESSORS = {
    "qwen2_vl": "Qwen2VLProcessor",
    "qwen2_5_vl": "Qwen2_5_VLProcessor",
    "qwen3_vl": "Qwen3VLProcessor",
}


def save_vlm(model, processor, path) -> None:
    """Model, tokenizer and processor in one folder, atomically. The processor is recorded
    as the model type's stock processor (what AutoProcessor loads where torchvision is
    installed)."""
    with atomic_dir(path) as tmp:
        model.save_pretrained(tmp)
        processor.save_pretrained(tmp)
        config_path = Path(tmp) / "processor_config.json"
        config = json.loads(config_path.read_text())
        config["processor_class"] = STOCK_PROCESSORS.get(
            model.config.model_type, Qwen2VLProcessor.__name__
        )
        config_path.write_text(json.dumps(config, indent=2) + "\n")


def load_vlm(path, device: str = "cpu", dtype=torch.float32):
    """A saved model folder or a hub id, as any image-text-to-text checkpoint."""
    return AutoModelForImageTextToText.from_pretrained(path, dtype=dtype).to(device)


def load_processor(path) -> ImageTextProcessor:
    """The processor of a saved folder or hub id, from its parts (no torchvision needed)."""
    tokenizer = AutoTokenizer.from_pretrained(path, padding_side="left")
    image_processor = Qwen2VLImageProcessorPil.from_pretrained(path)
    return ImageTextProcessor(image_processor=image_processor, tokenizer=tokenizer)


@torch.inference_mode()
def generate_vision_answers(
    model,
    processor,
    images: list,
    prompts: list[str],
    batch_size: int = 32,
    max_new_tokens: int = 8,
) -> list[str]:
    """Greedy answers to image + prompt pairs, many per forward pass (left padding). Uses
    `model.generate`, which computes Qwen-VL's multimodal rotary positions."""
    if len(images) != len(prompts):
        raise ValueError(f"{len(images)} images but {len(prompts)} prompts")
    device = next(model.parameters()).device
    tokenizer = processor.tokenizer
    answers: list[str] = []
    for start in range(0, len(prompts), batch_size):
        inputs = processor(
            images=images[start : start + batch_size],
            text=prompts[start : start + batch_size],
            padding=True,
            return_tensors="pt",
        ).to(device)
        output = model.generate(
            **inputs,
            max_new_tokens=max_new_tokens,
            do_sample=False,
            pad_token_id=tokenizer.pad_token_id,
            eos_token_id=tokenizer.eos_token_id,
        )
        new_tokens = output[:, inputs["input_ids"].shape[1] :]
        answers += tokenizer.batch_decode(new_tokens, skip_special_tokens=True)
    return answers
