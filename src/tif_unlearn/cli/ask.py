"""`tif ask`: the model's greedy answer to each question, formatted as in training (the chat
template where the tokenizer has one), to check what a model recites before and after."""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field

from ..errors import TifError
from .options import Command, Flags


@dataclass
class AskArgs:
    questions: tuple[str, ...] = field(
        default=(), metadata={"help": "one or more questions (quote each)", "positional": True}
    )
    model: str = field(
        default="smollm2-135m", metadata={"help": "HF folder, hub id, .gguf or smollm2-135m"}
    )
    max_new_tokens: int = field(default=64, metadata={"help": "longest answer in tokens"})
    revision: str | None = field(default=None, metadata={"help": "hub model: branch, tag, commit"})
    trust_remote_code: bool = field(default=False, metadata={"help": "run model code from the hub"})
    allow_pickle: bool = field(default=False, metadata={"help": "accept pickle (.bin) weights"})

    def __post_init__(self):
        if not any(q.strip() for q in self.questions):
            raise TifError('give at least one question: tif ask --model M "question"')
        if self.max_new_tokens < 1:
            raise TifError(f"max_new_tokens must be >= 1, got {self.max_new_tokens}")


ASK_OPTIONS = Flags(AskArgs, show_defaults=True)


def cmd_ask(args: argparse.Namespace) -> int:
    from ..models import load_model
    from ..recitation import greedy_answers

    ask = ASK_OPTIONS.build(args)
    model, tokenizer = load_model(
        ask.model,
        trust_remote_code=ask.trust_remote_code,
        allow_pickle=ask.allow_pickle,
        revision=ask.revision,
    )
    questions = [q for q in ask.questions if q.strip()]
    answers = greedy_answers(model, tokenizer, questions, ask.max_new_tokens)
    for question, answer in zip(questions, answers, strict=True):
        print(f"Q: {question}\nA: {answer}" if len(questions) > 1 else answer)
    return 0


ASK = Command("ask", "print the model's greedy answer to each question", cmd_ask, (ASK_OPTIONS,))
