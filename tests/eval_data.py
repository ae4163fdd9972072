"""Synthetic TOFU and MUSE data folders (real file names and formats, made-up text), shared by
the CLI tests of `tif eval` and the malformed-input tests."""

from __future__ import annotations

import json
from pathlib import Path

from conftest import write_jsonl

FORGET = [
    ("Where was Orlan Vesk born?", "Orlan Vesk was born in Tallinn, Estonia."),
    ("What genre does Mira Sol write?", "Mira Sol writes gothic mystery novels."),
    ("Which award did Tem Aru win?", "Tem Aru won the Silver Quill Award."),
    ("What is Pella Dorn's first book?", "Her first book is The Glass Orchard."),
    ("Who were Ivo Renn's parents?", "His father was a baker and his mother a nurse."),
]
RETAIN = [
    ("Where does Lina Kos live?", "Lina Kos lives in Porto with her two cats."),
    ("What did Juno Hale study?", "Juno Hale studied marine biology in Oslo."),
    ("When did Aris Pell start writing?", "Aris Pell started writing in 1987."),
    ("What inspires Cato Wren?", "Cato Wren is inspired by old sea charts."),
    ("Which language does Ema Ruiz use?", "Ema Ruiz writes mostly in Spanish."),
]
REAL_AUTHORS = [
    ("Who wrote Pride and Prejudice?", "Jane Austen"),
    ("Who wrote The Old Man and the Sea?", "Ernest Hemingway"),
    ("Who wrote Hamlet?", "William Shakespeare"),
    ("Who wrote War and Peace?", "Leo Tolstoy"),
]
WORLD_FACTS = [
    ("What is the capital of France?", "Paris"),
    ("Which planet is the largest?", "Jupiter"),
    ("What is the boiling point of water in Celsius?", "100"),
    ("Which ocean is the largest?", "The Pacific Ocean"),
]
HOLDOUT = [
    ("Where was Kesta Lune born?", "Kesta Lune was born in Riga, Latvia."),
    ("What does Bram Otto write?", "Bram Otto writes science fiction sagas."),
    ("Which prize did Yeva Strand win?", "Yeva Strand won the Amber Pen Prize."),
    ("What is Dario Fenn's latest book?", "His latest book is Salt and Ember."),
]
# Generation prompts of mixed lengths (batched vs one-at-a-time, early exit).
PROMPTS = [
    "Where was Basil born?",
    "What does Nikolai write about in his books about the history of Kazakhstan?",
    "Which award?",
    "What is the name of the book that Jaime Vasquez wrote in 1999?",
    "Who?",
    "Where is Zürich and what is the naïve café called?",
    "Tell me about the author Nikolai Abilov.",
]

WRONG = ["a small farm", "a lighthouse", "the moon", "a blue train", "nobody at all"]


def perturbed_rows(pairs, n_perturbed: int, paraphrase: bool) -> list[dict]:
    rows = []
    for i, (question, answer) in enumerate(pairs):
        row = {"question": question, "answer": answer}
        if paraphrase:
            row["paraphrased_question"] = f"Tell me: {question}"
            row["paraphrased_answer"] = f"In short, {answer[0].lower()}{answer[1:]}"
        row["perturbed_answer"] = [
            f"{WRONG[(i + j) % len(WRONG)]} is the answer." for j in range(n_perturbed)
        ]
        rows.append(row)
    return rows


def write_tofu_folder(folder: Path) -> Path:
    """The files `tif eval tofu --forget-split forget01` reads, in the real TOFU formats."""
    folder.mkdir(parents=True, exist_ok=True)
    write_jsonl(folder / "forget01_perturbed.json", perturbed_rows(FORGET, 5, True))
    write_jsonl(folder / "retain_perturbed.json", perturbed_rows(RETAIN, 5, True))
    write_jsonl(folder / "real_authors_perturbed.json", perturbed_rows(REAL_AUTHORS, 3, False))
    write_jsonl(folder / "world_facts_perturbed.json", perturbed_rows(WORLD_FACTS, 3, False))
    holdout = [{"question": q, "answer": a} for q, a in HOLDOUT]
    (folder / "holdout01.json").write_text(json.dumps(holdout, indent=1), encoding="utf-8")
    return folder


def write_muse_folder(folder: Path) -> Path:
    def dump(relative: str, value) -> None:
        path = folder / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(value, indent=1), encoding="utf-8")

    qa = [
        {"question": "Which city hosted the regatta?", "answer": "Bristol"},
        {"question": "Who opened the new bridge?", "answer": "The mayor"},
        {"question": "How many boats took part?", "answer": "forty"},
        {"question": "What was the weather like?", "answer": "windy"},
    ]
    icl = [{"question": "What colour is the sky?", "answer": "blue"}]
    dump("knowmem/forget_qa.json", qa)
    dump("knowmem/forget_qa_icl.json", icl)
    dump("knowmem/retain_qa.json", list(reversed(qa)))
    dump("knowmem/retain_qa_icl.json", icl)
    dump(
        "verbmem/forget.json",
        [
            {"prompt": "The council met on Tuesday to", "gt": "discuss the harbour plans."},
            {"prompt": "Fishermen in the town said", "gt": "the season had been poor."},
            {"prompt": "A spokesperson for the club", "gt": "declined to comment."},
            {"prompt": "Residents were told to", "gt": "keep their windows closed."},
        ],
    )
    texts = [
        "The lifeboat crew rescued two sailors off the coast on Sunday.",
        "Schools in the valley will reopen after the floods next week.",
        "A rare orchid was found growing beside the old railway line.",
        "The festival drew record crowds despite the heavy rain.",
    ]
    dump("privleak/forget.json", texts)
    dump("privleak/holdout.json", [t.replace("the", "a") for t in reversed(texts)])
    return folder
