"""A character-level tokenizer, built locally and saved so `AutoTokenizer.from_pretrained` loads it.

Vocabulary: three special tokens and the 95 printable ASCII characters (98, as in the original).
"""

from __future__ import annotations

import json
from pathlib import Path

from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers
from transformers import AutoTokenizer, PreTrainedTokenizerFast

PAD, BOS, EOS = "<pad>", "<bos>", "<eos>"
CHARACTERS = [chr(i) for i in range(32, 127)]


def build_tokenizer() -> PreTrainedTokenizerFast:
    vocab = {token: i for i, token in enumerate([PAD, BOS, EOS, *CHARACTERS])}
    core = Tokenizer(models.WordLevel(vocab=vocab, unk_token=PAD))
    core.pre_tokenizer = pre_tokenizers.Split(Regex("."), behavior="isolated")
    core.decoder = decoders.Fuse()
    # padding_side must be given to the constructor: only then does it survive a reload.
    # Left padding, because batched generation appends to the right end of every prompt.
    return PreTrainedTokenizerFast(
        tokenizer_object=core,
        bos_token=BOS,
        eos_token=EOS,
        pad_token=PAD,
        padding_side="left",
        model_max_length=256,
    )


def save_tokenizer(path) -> None:
    from ftdag.core.io import atomic_dir

    with atomic_dir(path) as tmp:
        build_tokenizer().save_pretrained(tmp)


def load_tokenizer(path) -> PreTrainedTokenizerFast:
    """The tokenizer saved at `path` (its own folder or a model's), or a hub id's.

    A locally built tokenizer is loaded as what it was saved as: from a model's folder,
    AutoTokenizer would go by the model type (qwen2) and build a Qwen2Tokenizer around the
    same vocabulary, which drops the spaces between words."""
    config = Path(path) / "tokenizer_config.json"
    if config.is_file():
        saved_as = json.loads(config.read_text()).get("tokenizer_class")
        if saved_as in ("TokenizersBackend", "PreTrainedTokenizerFast"):
            return PreTrainedTokenizerFast.from_pretrained(path)
    return AutoTokenizer.from_pretrained(path)
