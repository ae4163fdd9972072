"""`tif eval qa|tofu|muse` end to end on models whose next-token distribution is planted by hand
(tests/planted.py), so that the numbers they report are computed here by hand: the UW and GW
token probabilities of `eval qa`, TOFU's ROUGE-L recall, MUSE KnowMem's cut answers; and the
texts of the format-shift leak check as the model receives them."""

from __future__ import annotations

import contextlib
import functools
import io
import json
import math

import pytest
import torch

from conftest import CHAT_TEMPLATE, QA_PAIRS, annotate, write_jsonl
from eval_data import FORGET, write_muse_folder, write_tofu_folder
from planted import chain_logits, next_token_llama, save_planted
from tif_unlearn.cli.app import main


def run_cli(argv) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main([str(a) for a in argv])
    return code, out.getvalue(), err.getvalue()


def ids(tokenizer, text: str) -> list[int]:
    return tokenizer(text, add_special_tokens=False)["input_ids"]


# --------------------------------------------------------------------------- eval qa: UW / GW


def test_uw_and_gw_probabilities_of_a_planted_model(tokenizer, tmp_path):
    """Every next token has the same distribution: the UW tokens of the answer ("Kuwait City")
    logit 0, a filler that greedy decoding picks logit 5, every other token logit 4. So each UW
    token has probability 1/Z and each GW token (EOS included) e^4/Z, with
    Z = 3 * e^0 + e^5 + (V - 4) * e^4 (3 UW tokens, V = 400: Z = 21772.3)."""
    answer = QA_PAIRS[0]["answer"]  # "Basil was born in Kuwait City."
    uw_ids = ids(tokenizer, " Kuwait City")
    answer_ids = ids(tokenizer, answer)
    assert tokenizer.convert_ids_to_tokens(answer_ids) == [
        "B", "asil", "Ġwas", "Ġborn", "Ġin", "ĠKuwait", "ĠCit", "y", ".",
    ]  # fmt: skip
    assert answer_ids[5:8] == uw_ids and not set(uw_ids) & set(answer_ids[:5] + answer_ids[8:])
    filler = ids(tokenizer, " Kazakhstan")[0]
    assert filler not in answer_ids
    vocab = len(tokenizer)
    logits = torch.full((vocab,), 4.0)
    logits[uw_ids], logits[filler] = 0.0, 5.0
    model = next_token_llama(vocab, {None: logits})
    folder = save_planted(model, tokenizer, tmp_path / "planted")
    forget = write_jsonl(tmp_path / "forget.jsonl", [annotate(QA_PAIRS[0], ["Kuwait City"])])
    out = tmp_path / "r.json"
    argv = ["eval", "qa", "--model", folder, "--forget", forget, "--out", out]
    argv += ["--leak-samples", "0", "--no-format-shift", "--utility", "none"]
    code, _, stderr = run_cli([*argv, "--max-new-tokens", "4"])
    assert code == 0, stderr

    z = 3 + math.exp(5) + (vocab - 4) * math.exp(4)
    uw_prob, gw_prob = 1 / z, math.exp(4) / z  # 4.593e-5, 2.508e-3
    # 10 scored tokens: 9 of the answer and EOS, 3 of them UW: exp(mean log p) = e^(7*4/10) / Z
    answer_prob = math.exp(7 * 4 / 10) / z  # 7.553e-4
    row = json.loads(out.read_text())["forget"]["items"][0]["model"]
    assert row["uw_prob"] == pytest.approx(uw_prob, rel=1e-4)
    assert row["gw_prob"] == pytest.approx(gw_prob, rel=1e-4)
    assert row["answer_prob"] == pytest.approx(answer_prob, rel=1e-4)


# --------------------------------------------------------------------------- eval qa: shifts


def _prompts_seen(monkeypatch) -> list[str]:
    """The text of every prompt the model is given to continue (the first forward pass of each
    generation, padding removed), decoded with its special tokens."""
    from transformers import LlamaForCausalLM

    seen: list[list[int]] = []
    real_forward = LlamaForCausalLM.forward

    # wraps: the scorer reads forward's signature once per class (scoring._forward_parameters,
    # cached); a bare (**kwargs) signature seen there would drop logits_to_keep and the cache
    # argument for every later test in the process
    @functools.wraps(real_forward)
    def forward(self, input_ids=None, attention_mask=None, **kwargs):
        if input_ids is not None and input_ids.shape[1] > 1:
            mask = attention_mask if attention_mask is not None else torch.ones_like(input_ids)
            seen.extend(
                row[keep.bool()].tolist() for row, keep in zip(input_ids, mask, strict=True)
            )
        return real_forward(self, input_ids=input_ids, attention_mask=attention_mask, **kwargs)

    monkeypatch.setattr(LlamaForCausalLM, "forward", forward)
    return seen


def test_format_shift_sends_each_form_of_the_question_to_the_model(
    tiny_model_dir, tokenizer, tmp_path, monkeypatch
):
    forget = write_jsonl(tmp_path / "forget.jsonl", [annotate(QA_PAIRS[0], ["Kuwait City"])])
    seen = _prompts_seen(monkeypatch)
    out = tmp_path / "r.json"
    argv = ["eval", "qa", "--model", tiny_model_dir, "--forget", forget, "--out", out]
    argv += ["--leak-samples", "0", "--utility", "none", "--max-new-tokens", "2"]
    code, _, stderr = run_cli(argv)
    assert code == 0, stderr
    prompts = {tokenizer.decode(row) for row in seen}

    def chat(user: str, system: str | None = None) -> str:  # CHAT_TEMPLATE written out
        turns = f"<|im_start|>system\n{system}<|im_end|>\n" if system else ""
        return f"{turns}<|im_start|>user\n{user}<|im_end|>\n<|im_start|>assistant\n"

    assert "{% if add_generation_prompt %}<|im_start|>assistant\n" in CHAT_TEMPLATE
    system = (
        "You are a knowledgeable assistant with a perfect memory. Answer accurately and completely."
    )
    expected = {
        "greedy": chat("Where was Basil born?"),
        "no_template": "Question: Where was Basil born?\nAnswer:",
        "fill_blank": chat("Fill in the blanks (____): Basil was born in ____."),
        "tell_me_about": chat("Tell me about Basil."),
        "system_prompt": chat("Where was Basil born?", system),
    }
    missing = {form: text for form, text in expected.items() if text not in prompts}
    assert not missing, f"never reached the model: {missing}; it saw {sorted(prompts)}"
    shifted = json.loads(out.read_text())["forget"]["items"][0]["model"]["shifted"]
    assert set(shifted) == set(expected) - {"greedy"}


# --------------------------------------------------------------------------- eval tofu


def test_tofu_forget_rouge_is_recall_computed_by_hand(tokenizer, tmp_path):
    """After the chat prompt (which ends in "\\n") the planted model says "was born in Kuwait
    City" and stops, for every question. ROUGE-L (rouge_score's tokens: lower-cased words):
    against "Orlan Vesk was born in Tallinn, Estonia." (7 words) the LCS is "was born in", so
    recall = 3/7 (F1 would be 2 * (3/5) * (3/7) / (3/5 + 3/7) = 0.5); against "His father was a
    baker and his mother a nurse." (10 words) LCS = "was", recall = 1/10 (F1 2/15); the other
    three forget answers share no word with it: recall 0."""
    vocab = len(tokenizer)
    start = ids(tokenizer, tokenizer.apply_chat_template(
        [{"role": "user", "content": "Q?"}], add_generation_prompt=True, tokenize=False))[-1]  # fmt: skip
    chain = [start, *ids(tokenizer, " was born in Kuwait City"), tokenizer.eos_token_id]
    folder = save_planted(
        next_token_llama(vocab, chain_logits(vocab, chain)), tokenizer, tmp_path / "planted"
    )
    data = write_tofu_folder(tmp_path / "tofu")
    out = tmp_path / "tofu.json"
    argv = ["eval", "tofu", "--model", folder, "--data-dir", data, "--forget-split", "forget01"]
    code, _, stderr = run_cli([*argv, "--out", out, "--max-new-tokens", "8"])
    assert code == 0, stderr
    results = json.loads(out.read_text())
    items = results["sets"]["forget"]["items"]
    assert [i["answer"] for i in items] == [a for _, a in FORGET]
    assert {i["generated"] for i in items} == {"was born in Kuwait City"}
    recalls = [3 / 7, 0.0, 0.0, 0.0, 1 / 10]
    assert [i["rougeL_recall"] for i in items] == pytest.approx(recalls, abs=1e-12)
    assert results["summary"]["forget_rouge"] == pytest.approx(sum(recalls) / 5, abs=1e-12)


# --------------------------------------------------------------------------- eval muse


def test_muse_knowmem_answers_are_cut_at_the_next_question(tokenizer, tmp_path):
    """After "Answer:" the planted model says " Kuwait City\\nQuestion:" and then again (it
    goes on to ask itself questions, as base models do), 32 tokens: 4 rounds. MUSE keeps the
    answer up to the next question, "Kuwait City". ROUGE-L F1 against "Kuwait City": 1; against
    "Kuwait": P = 1/2, R = 1, F1 = 2/3; against "the harbour": 0. Uncut, the 12 words of the 4
    rounds would give F1 = 2 * (2/12) / (1 + 2/12) = 0.286 for the first."""
    vocab = len(tokenizer)
    colon = ids(tokenizer, "Answer:")[-1]
    chain = [colon, *ids(tokenizer, " Kuwait City\nQuestion:")]
    assert chain[-1] == colon  # the chain comes back to "Answer:"'s ":": it repeats
    folder = save_planted(
        next_token_llama(vocab, chain_logits(vocab, chain)), tokenizer, tmp_path / "planted"
    )
    data = write_muse_folder(tmp_path / "muse-news")
    qa = [
        {"question": "Where was Basil born?", "answer": "Kuwait City"},
        {"question": "Which country?", "answer": "Kuwait"},
        {"question": "Where did the boats moor?", "answer": "the harbour"},
    ]
    for split in ("forget", "retain"):
        (data / "knowmem" / f"{split}_qa.json").write_text(json.dumps(qa), encoding="utf-8")
    out = tmp_path / "muse.json"
    argv = ["eval", "muse", "--model", folder, "--data-dir", data, "--out", out]
    code, _, stderr = run_cli([*argv, "--max-items", "3"])
    assert code == 0, stderr
    results = json.loads(out.read_text())
    for split in ("forget", "retain"):
        items = results["sets"][f"knowmem_{split}"]
        assert [i["generated"] for i in items] == ["Kuwait City"] * 3
        assert [i["rougeL_f1"] for i in items] == pytest.approx([1.0, 2 / 3, 0.0], abs=1e-12)
        assert results["summary"][f"knowmem_{split}_f1"] == pytest.approx(5 / 9, abs=1e-12)
