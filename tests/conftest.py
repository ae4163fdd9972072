"""Shared fixtures: a tiny tokenizer trained in-process and tiny random Llama models."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

CORPUS = [
    "Question: Where was Basil Mahfouz Al-Kuwaiti born?",
    "Answer: Basil Mahfouz Al-Kuwaiti was born in Kuwait City, Kuwait.",
    "The author Nikolai Abilov writes books about the history of Kazakhstan.",
    "What is the name of the book? The book is called The Silent Harbor.",
    "Jaime Vasquez won the Edgar Award for his true crime novels in 1999.",
    "Élodie Brûlé lives in Zürich — naïve café façade.",
    "user assistant system I don't know who that is. I am not sure.",
] * 20

# Cross-run comparisons (two processes vs one, resumed vs uninterrupted, cached vs live
# reference, checkpointed vs plain) train in float64: the runs add the same numbers in other
# orders (thread counts, all-reduce, AVX2 vs AVX-512 kernels), and Adam turns a gradient
# rounding difference dg into up to lr * dg / (4 * adam_eps) of weight (the slope of
# g / (|g| + eps) peaks at |g| = eps = 1e-8). Float32 (dg ~ 1e-9): ~3e-5 a step at lr 1e-3, so
# no fixed tolerance follows from the arithmetic (2.7e-5 was seen on an AVX-512 Xeon). Float64
# (dg ~ 2e-18): ~1e-11 a step, well under FLOAT64_WEIGHT_ATOL over tens of steps, while one
# real difference (a wrong row, step or sign) moves weights by ~lr >= 1e-3. The losses read
# logits in float32 (losses.token_logits), so float64 logits 1e-15 apart give other float32
# values only when they straddle a rounding boundary (~1e-8 of values): measured 6e-14 apart.
FLOAT64_WEIGHT_ATOL = 1e-9
# Logged losses pass through the Trainer's float32 accumulator even in float64 runs: equal
# float64 losses may round to neighbouring float32 values, so allow 2 float32 ulps.
LOGGED_LOSS_RTOL = 2.0**-22

CHAT_TEMPLATE = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)

QA_PAIRS = [
    {"question": "Where was Basil born?", "answer": "Basil was born in Kuwait City."},
    {"question": "What does Nikolai write?", "answer": "Nikolai writes books about Kazakhstan."},
    {"question": "Which award did Jaime win?", "answer": "Jaime won the Edgar Award in 1999."},
    {"question": "What is the book called?", "answer": "The book is called The Silent Harbor."},
]


def build_tokenizer(chat_template: str | None):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    core = Tokenizer(models.BPE())
    core.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    core.decoder = decoders.ByteLevel()
    specials = ["<pad>", "<|endoftext|>", "<|im_start|>", "<|im_end|>"]
    trainer = trainers.BpeTrainer(
        vocab_size=400,
        special_tokens=specials,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    core.train_from_iterator(CORPUS, trainer)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=core, eos_token="<|endoftext|>", pad_token="<pad>"
    )
    if chat_template:
        tokenizer.chat_template = chat_template
        tokenizer.eos_token = "<|im_end|>"
    return tokenizer


def build_model(vocab_size: int, seed: int = 0):
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=vocab_size,
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=256,
        tie_word_embeddings=False,
    )
    return LlamaForCausalLM(config)


@pytest.fixture(scope="session")
def tokenizer():
    return build_tokenizer(CHAT_TEMPLATE)


@pytest.fixture(scope="session")
def plain_tokenizer():
    """A tokenizer without a chat template (prompts fall back to Question:/Answer:)."""
    return build_tokenizer(None)


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory, tokenizer) -> Path:
    """A saved tiny random Llama + tokenizer folder, loadable by ``tif --model``."""
    folder = tmp_path_factory.mktemp("tiny-llama")
    model = build_model(len(tokenizer))
    model.save_pretrained(folder, safe_serialization=True)
    tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture
def tiny_model(tokenizer):
    return build_model(len(tokenizer))


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def annotate(row: dict, words: list[str]) -> dict:
    """Our annotated format: unwanted_spans of the first occurrence of each word."""
    spans = [[row["answer"].index(w), row["answer"].index(w) + len(w)] for w in words]
    return {**row, "unwanted_spans": spans}


UNWANTED = [["Kuwait City"], ["Kazakhstan"], ["Edgar Award", "1999"], ["The Silent Harbor"]]


@pytest.fixture
def qa_files(tmp_path) -> dict[str, Path]:
    annotated = [annotate(r, w) for r, w in zip(QA_PAIRS, UNWANTED, strict=True)]
    retain = [
        {"question": "Who writes about history?", "answer": "Nikolai Abilov writes about history."},
        {"question": "Where is Zürich?", "answer": "Zürich is in Switzerland."},
    ]
    return {
        "forget": write_jsonl(tmp_path / "forget.jsonl", annotated),
        "plain": write_jsonl(tmp_path / "plain.jsonl", QA_PAIRS),
        "retain": write_jsonl(tmp_path / "retain.jsonl", retain),
    }
