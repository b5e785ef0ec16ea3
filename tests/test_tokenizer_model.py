"""The character tokenizer and the tiny causal LM: both save and reload through the standard
Hugging Face entry points (`AutoTokenizer`, `from_pretrained`) with nothing lost."""

import pytest
import torch
from transformers import AutoTokenizer

from finetune_helpers import TINY_DIMS
from ftdag.core.model import build_model, count_parameters, load_model, save_model
from ftdag.core.tokenizer import BOS, EOS, PAD, build_tokenizer, load_tokenizer, save_tokenizer

TINY = {**TINY_DIMS}
TASK_STRINGS = [
    "dist(12,45)=57",
    "triarea(118,86,109)=7",
    "angle(1,2,3)=180",
    "compass(9,10)=NW",
    "inside(103;118,49,47,133)=T",
    "perim(1,2,3,4)=40",
    "cross(1,2;3,4)=F",
]


@pytest.fixture(scope="module")
def tokenizer():
    return build_tokenizer()


@pytest.fixture(scope="module")
def saved_tokenizer(tmp_path_factory):
    path = tmp_path_factory.mktemp("tok") / "tokenizer"
    save_tokenizer(path)
    return path


def test_vocabulary(tokenizer):
    assert len(tokenizer) == 98  # 3 special tokens + 95 printable ASCII characters
    assert tokenizer.pad_token == PAD and tokenizer.bos_token == BOS and tokenizer.eos_token == EOS
    special = {tokenizer.pad_token_id, tokenizer.bos_token_id, tokenizer.eos_token_id}
    assert len(special) == 3
    ids = {tokenizer.convert_tokens_to_ids(chr(i)) for i in range(32, 127)}
    assert len(ids) == 95 and not ids & special


@pytest.mark.parametrize("text", TASK_STRINGS)
def test_one_token_per_character_and_decode_round_trip(tokenizer, text):
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    assert len(ids) == len(text)
    assert tokenizer.pad_token_id not in ids  # no character fell back to the unknown token
    assert tokenizer.decode(ids) == text
    assert [tokenizer.convert_ids_to_tokens(i) for i in ids] == list(text)


def test_reload_with_auto_tokenizer_gives_same_ids(tokenizer, saved_tokenizer):
    reloaded = AutoTokenizer.from_pretrained(saved_tokenizer)
    assert len(reloaded) == 98
    for text in TASK_STRINGS:
        assert reloaded(text)["input_ids"] == tokenizer(text)["input_ids"]
        assert reloaded.decode(reloaded(text, add_special_tokens=False)["input_ids"]) == text
    assert reloaded.pad_token_id == tokenizer.pad_token_id
    assert reloaded.bos_token_id == tokenizer.bos_token_id
    assert reloaded.eos_token_id == tokenizer.eos_token_id
    assert load_tokenizer(saved_tokenizer)("dist(")["input_ids"] == tokenizer("dist(")["input_ids"]


def test_left_padding_survives_reload(saved_tokenizer):
    reloaded = AutoTokenizer.from_pretrained(saved_tokenizer)
    assert reloaded.padding_side == "left"
    batch = reloaded(["ab", "abcd"], padding=True, add_special_tokens=False, return_tensors="pt")
    pad = reloaded.pad_token_id
    assert batch["input_ids"][0, :2].tolist() == [pad, pad]  # padding on the left
    assert (
        batch["input_ids"][0, 2:].tolist() == reloaded("ab", add_special_tokens=False)["input_ids"]
    )
    assert batch["attention_mask"].tolist() == [[0, 0, 1, 1], [1, 1, 1, 1]]


def test_save_tokenizer_is_atomic(tmp_path):
    save_tokenizer(tmp_path / "tokenizer")
    assert [p.name for p in tmp_path.iterdir()] == ["tokenizer"]


# --- model ----------------------------------------------------------------------------------


def _batch(tokenizer):
    texts = TASK_STRINGS[:4]
    return tokenizer(texts, padding=True, return_tensors="pt")


def test_model_size_follows_the_arch(tokenizer):
    model = build_model(tokenizer, seed=0, **TINY)
    assert model.config.vocab_size == 98
    assert model.config.hidden_size == 32
    assert model.config.num_hidden_layers == 1
    wider = build_model(tokenizer, seed=0, **{**TINY, "hidden_size": 64})
    assert count_parameters(wider) > count_parameters(model)


def test_model_weights_depend_on_seed(tokenizer):
    a = build_model(tokenizer, seed=0, **TINY).state_dict()
    b = build_model(tokenizer, seed=0, **TINY).state_dict()
    c = build_model(tokenizer, seed=1, **TINY).state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not all(torch.equal(a[k], c[k]) for k in a)


def test_save_and_load_model_gives_identical_logits(tokenizer, tmp_path):
    model = build_model(tokenizer, seed=0, **TINY).eval()
    batch = _batch(tokenizer)
    with torch.no_grad():
        expected = model(**batch).logits
    out = tmp_path / "model"
    save_model(model, tokenizer, out)
    loaded = load_model(out).eval()
    with torch.no_grad():
        actual = loaded(**batch).logits
    assert actual.shape == (4, batch["input_ids"].shape[1], 98)
    assert torch.equal(actual, expected)
    state, loaded_state = model.state_dict(), loaded.state_dict()
    assert set(state) == set(loaded_state)
    assert all(torch.equal(state[k], loaded_state[k]) for k in state)
    # the tokenizer travels with the model
    assert load_tokenizer(out)("dist(")["input_ids"] == tokenizer("dist(")["input_ids"]
    assert load_tokenizer(out).padding_side == "left"


def test_save_model_is_atomic(tokenizer, tmp_path):
    model = build_model(tokenizer, seed=0, **TINY)
    out = tmp_path / "model"
    save_model(model, tokenizer, out)
    assert [p.name for p in tmp_path.iterdir()] == ["model"]  # no temporary folder beside it
    assert (out / "config.json").exists()

    # saving again replaces the old folder's content entirely
    (out / "stale.txt").write_text("old")
    save_model(build_model(tokenizer, seed=1, **TINY), tokenizer, out)
    assert [p.name for p in tmp_path.iterdir()] == ["model"]
    assert not (out / "stale.txt").exists()
    reloaded = load_model(out).state_dict()
    fresh = build_model(tokenizer, seed=1, **TINY).state_dict()
    assert all(torch.equal(reloaded[k], fresh[k]) for k in fresh)


def test_failed_save_leaves_nothing(tokenizer, tmp_path, monkeypatch):
    model = build_model(tokenizer, seed=0, **TINY)

    def broken(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(model, "save_pretrained", broken)
    with pytest.raises(OSError, match="disk full"):
        save_model(model, tokenizer, tmp_path / "model")
    assert list(tmp_path.iterdir()) == []


def test_failed_save_keeps_the_previous_output(tokenizer, tmp_path, monkeypatch):
    out = tmp_path / "model"
    save_model(build_model(tokenizer, seed=0, **TINY), tokenizer, out)
    before = sorted(p.name for p in out.iterdir())
    model = build_model(tokenizer, seed=1, **TINY)
    monkeypatch.setattr(model, "save_pretrained", lambda *a, **k: (_ for _ in ()).throw(OSError()))
    with pytest.raises(OSError):
        save_model(model, tokenizer, out)
    assert [p.name for p in tmp_path.iterdir()] == ["model"]
    assert sorted(p.name for p in out.iterdir()) == before


def test_a_tokenizer_loaded_from_a_model_folder_keeps_the_spaces(tmp_path):
    # From a model's folder, AutoTokenizer goes by the model type and built a Qwen2Tokenizer
    # that dropped the spaces between words: "52 m in cm" trained with them, evaluated without.
    tokenizer = build_tokenizer()
    save_model(build_model(tokenizer, seed=0, **TINY), tokenizer, tmp_path / "model")
    text = "52 m in cm: 5200"
    loaded = load_tokenizer(tmp_path / "model")
    assert loaded(text)["input_ids"] == tokenizer(text)["input_ids"]
    assert loaded.decode(loaded(text)["input_ids"], skip_special_tokens=True) == text
    assert loaded.padding_side == "left"
