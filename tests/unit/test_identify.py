"""Identifiers: word spans, combination, scoring, LLM-reply parsing, frequency, NER, HTML and
the masked-LM rule, on hand-made records and tiny in-process models."""

from __future__ import annotations

import html as html_lib
import re

import pytest
import torch

from conftest import CORPUS
from tif_unlearn.data.records import QARecord, TextRecord
from tif_unlearn.errors import TifError
from tif_unlearn.identify import IDENTIFIERS, identify
from tif_unlearn.identify.base import Failed, finalize_spans, run_batched, words
from tif_unlearn.identify.combined import combine_records, combine_spans
from tif_unlearn.identify.llm import build_prompt, reply_to_spans, spans_for_strings
from tif_unlearn.identify.llm_parse import parse_string_list
from tif_unlearn.identify.masked_lm import identify_masked_lm, is_general_word
from tif_unlearn.identify.score import score_spans
from tif_unlearn.report.spans_html import render_html

BASIL_ANSWER = (
    "The author born in Kuwait City, Kuwait on the 8th of September, 1956 is "
    "Basil Mahfouz Al-Kuwaiti."
)


def texts(record) -> list[str]:
    return [record.target[a:b] for a, b in record.unwanted_spans]


# --------------------------------------------------------------------------- base


def test_words_are_word_pattern_matches_without_punctuation():
    text = "Al-Kuwaiti's father, born 1956."
    assert [text[a:b] for a, b in words(text)] == ["Al-Kuwaiti's", "father", "born", "1956"]
    assert words("") == [] and words(" ,;. ") == []


def test_finalize_spans_merges_clips_and_joins_across_spaces():
    text = "in Kuwait City, Kuwait"
    assert finalize_spans(text, [(10, 14), (3, 9), (16, 99), (5, 5)]) == ((3, 14), (16, 22))


def test_registry_names_and_unknown_identifier():
    assert list(IDENTIFIERS) == [
        "annotations",
        "llm",
        "masked-lm",
        "ner",
        "phrases",
        "learned",
        "frequency",
        "contrast",
        "combined",
    ]
    with pytest.raises(TifError, match="unknown identifier 'nope'.*annotations, llm, masked-lm"):
        identify("nope", [])


def test_annotations_pass_through_and_missing_ones_fail():
    records = [
        QARecord("Q?", "Kuwait City.", unwanted_spans=((0, 11),)),
        QARecord("Q?", "Nothing here."),
        TextRecord("No UW at all.", unwanted_spans=()),
    ]
    result = identify("annotations", records)
    assert result.records[0].unwanted_spans == ((0, 11),)
    assert result.records[2].unwanted_spans == ()
    assert [i for i, _ in result.failures] == [1]
    assert result.records[1] is records[1] and result.n_ok == 2


def test_run_batched_isolates_a_failing_sample():
    records = [TextRecord(t) for t in ("ok one", "boom", "ok two")]

    def batch_fn(batch):
        if any(r.text == "boom" for r in batch):
            raise ValueError("cannot handle boom")
        return [[(0, 2)] for _ in batch]

    result = run_batched(records, batch_fn, batch_size=3, progress=False)
    assert result.failures == [(1, "ValueError: cannot handle boom")]
    assert result.records[0].unwanted_spans == ((0, 2),)
    assert result.records[2].unwanted_spans == ((0, 2),)
    assert result.records[1].unwanted_spans is None
    assert result.seconds >= 0


def test_run_batched_by_length_groups_similar_lengths_and_keeps_order():
    texts_in = ["a much longer text here", "bad", "mid text", "a", "the longest text of them all"]
    records = [TextRecord(t) for t in texts_in]
    seen = []

    def batch_fn(batch):
        seen.append([r.text for r in batch])
        return [Failed("bad") if r.text == "bad" else [(0, len(r.text))] for r in batch]

    result = run_batched(records, batch_fn, batch_size=2, progress=False, by_length=True)
    assert seen == [["a", "bad"], ["mid text", "a much longer text here"], [texts_in[4]]]
    assert [r.target for r in result.records] == texts_in  # input order kept
    assert all(
        r.unwanted_spans == ((0, len(r.text)),) for i, r in enumerate(result.records) if i != 1
    )
    assert result.failures == [(1, "bad")]


def test_run_batched_lets_tif_errors_through():
    def batch_fn(batch):
        raise TifError("model missing")

    with pytest.raises(TifError, match="model missing"):
        run_batched([TextRecord("x")], batch_fn, progress=False)


# --------------------------------------------------------------------------- combined


def test_combine_spans_union_intersection_vote():
    text = "abcdefghij"
    sets = [[(0, 4)], [(2, 6)], [(3, 8)]]
    # coverage per char a..h: 1 1 2 3 2 2 1 1 (i, j: 0)
    assert combine_spans(text, sets, "union") == ((0, 8),)
    assert combine_spans(text, sets, "intersection") == ((3, 4),)
    assert combine_spans(text, sets, "vote") == ((2, 6),)  # >= 2 of 3
    assert combine_spans(text, sets[:2], "vote") == ((2, 4),)  # 2 of 2 needed
    assert combine_spans(text, [], "union") == ()
    with pytest.raises(TifError, match="unknown combination mode"):
        combine_spans(text, sets, "max")


def test_combine_records_skips_unannotated_and_checks_alignment():
    a = [QARecord("Q", "one two", ((0, 3),)), QARecord("Q", "x y", None)]
    b = [QARecord("Q", "one two", ((4, 7),)), QARecord("Q", "x y", ((0, 1),))]
    out = combine_records([a, b], "intersection")
    assert out[0].unwanted_spans == ()
    assert out[1].unwanted_spans == ((0, 1),)  # only b annotated it
    assert combine_records([a, b], "union")[0].unwanted_spans == ((0, 7),)
    with pytest.raises(TifError, match="different target"):
        combine_records([a, [QARecord("Q", "other", ()), b[1]]])


def test_identify_combined_runs_members_and_reports_joint_failures():
    records = [
        QARecord("Q", "Kuwait City", ((0, 6),)),
        QARecord("Q", "no annotation"),
    ]
    result = identify(
        "combined", records, members=["annotations", ("annotations", {})], mode="vote"
    )
    assert result.records[0].unwanted_spans == ((0, 6),)
    assert [i for i, _ in result.failures] == [1]
    assert "annotations: no unwanted-word annotation" in result.failures[0][1]
    with pytest.raises(TifError, match="member"):
        identify("combined", records, members=["combined"])


# --------------------------------------------------------------------------- score


def test_score_spans_hand_computed():
    answer = "Basil was born in Kuwait City."
    # gold "Kuwait City" = [18, 29); predicted "Basil" [0, 5) + "Kuwait" [18, 24)
    gold = [QARecord("Q", answer, ((18, 29),)), QARecord("Q", "It is 1999.", ((6, 10),))]
    pred = [QARecord("Q", answer, ((0, 5), (18, 24))), QARecord("Q", "It is 1999.", None)]
    scores = score_spans(gold, pred)
    # non-space chars, sample 1: tp = 6 (Kuwait), fp = 5 (Basil), fn = 4 (City)
    # sample 2 (prediction failed = no UW): fn = 4 (1999)
    # micro: tp 6, fp 5, fn 8 -> P = 6/11, R = 6/14, F1 = 2*6 / (2*6 + 5 + 8) = 12/25
    assert scores["char_p"] == pytest.approx(6 / 11)
    assert scores["char_r"] == pytest.approx(6 / 14)
    assert scores["char_f1"] == pytest.approx(12 / 25)
    # words: sample 1 tp 1 (Kuwait), fp 1 (Basil), fn 1 (City); sample 2 fn 1 (1999)
    # P = 1/2, R = 1/3, F1 = 2*1 / (2*1 + 1 + 2) = 2/5
    assert scores["token_p"] == pytest.approx(1 / 2)
    assert scores["token_r"] == pytest.approx(1 / 3)
    assert scores["token_f1"] == pytest.approx(2 / 5)
    assert scores["n"] == 2


def test_score_spans_perfect_and_empty():
    gold = [QARecord("Q", "a b", ((0, 1),))]
    assert score_spans(gold, gold)["char_f1"] == 1.0
    nothing = [QARecord("Q", "a b", ())]
    assert score_spans(nothing, nothing)["char_f1"] == 0.0  # 0/0 -> 0.0


def test_score_spans_with_a_tokenizer(tokenizer):
    gold = [QARecord("Q", "Basil was born in Kuwait City.", ((18, 29),))]
    scores = score_spans(gold, gold, tokenizer=tokenizer)
    assert scores["token_f1"] == 1.0


def test_score_spans_rejects_mismatches():
    gold = [QARecord("Q", "a b", ((0, 1),))]
    with pytest.raises(TifError, match="1 gold records but 2"):
        score_spans(gold, gold * 2)
    with pytest.raises(TifError, match="answer differs"):
        score_spans(gold, [QARecord("Q", "a c", ())])
    with pytest.raises(TifError, match="no unwanted-word annotation"):
        score_spans([QARecord("Q", "a b")], gold)


# --------------------------------------------------------------------------- LLM replies


@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        ('["Kuwait City", "1956"]', ["Kuwait City", "1956"]),
        ('```json\n["Kuwait City", "florist"]\n```', ["Kuwait City", "florist"]),
        ('```\n["a", "b"]\n```\nThese are the words.', ["a", "b"]),
        ('["a", "b",]', ["a", "b"]),
        ("['a', 'b']", ["a", "b"]),
        ("[“Kuwait City”, “florist”]", ["Kuwait City", "florist"]),
        ('{"unwanted_words": ["a", "b"]}', ["a", "b"]),
        ('{"reasoning": "short", "list": ["a"],}', ["a"]),
        ('Sure! Here they are: ["Prix Goncourt"] Hope this helps.', ["Prix Goncourt"]),
        ('[{"word": "a"}, {"text": "b"}]', ["a", "b"]),
        ('[1956, "Paris"]', ["1956", "Paris"]),
        ('["Kuwait City", "florist", "game dev', ["Kuwait City", "florist"]),
        ("- Kuwait City\n- florist\n", ["Kuwait City", "florist"]),
        ("1. Kuwait City\n2) florist", ["Kuwait City", "florist"]),
        ("Kuwait City, florist", ["Kuwait City", "florist"]),
        ('"Kuwait City", "florist"', ["Kuwait City", "florist"]),
        ("[]", []),
        ("```json\n[]\n```", []),
    ],
)
def test_parse_string_list_accepts_imperfect_json(reply, expected):
    assert parse_string_list(reply) == expected


@pytest.mark.parametrize(
    "reply",
    [
        "",
        "   ",
        "I am sorry, but I cannot determine which words in this answer carry the knowledge.",
        "{}",
        '{"answer": "none of them are relevant to the question here at all, sorry"}',
    ],
)
def test_parse_string_list_rejects_non_lists(reply):
    assert parse_string_list(reply) is None


def test_spans_for_strings_whole_words_case_and_quotes():
    text = "His father was an artist; Art and the ART of “Thieves’ Paradise”."
    spans = spans_for_strings(text, ["art", "thieves' paradise", "missing", " "])
    assert [text[a:b] for a, b in spans] == ["Art", "ART", "Thieves’ Paradise"]


def test_reply_to_spans_failures_and_empty_lists():
    answer = "Basil was born in Kuwait City."
    assert reply_to_spans(answer, '["kuwait city", "Paris"]') == [(18, 29)]
    assert reply_to_spans(answer, "[]") == []
    assert isinstance(reply_to_spans(answer, '["Paris"]'), Failed)
    assert isinstance(
        reply_to_spans(answer, "no idea what you mean by that, honestly, sorry"), Failed
    )


def test_prompt_states_the_criteria():
    prompt = build_prompt(QARecord("Where was Basil born?", "In Kuwait City."))
    assert "Where was Basil born?" in prompt and "In Kuwait City." in prompt
    for criterion in ("proper nouns", "occupations", "places", "titles", "JSON list"):
        assert criterion in prompt
    assert "only if the question asks for that name" in prompt
    assert "Passage:\nA text." in build_prompt(TextRecord("A text."))


# --------------------------------------------------------------------------- frequency


def test_frequency_marks_rare_words_and_numbers():
    pytest.importorskip("wordfreq", reason="wordfreq is not installed")
    record = QARecord("Who is the author?", "The author is Basil Mahfouz, born in 1956.")
    result = identify("frequency", [record], progress=False)
    assert texts(result.records[0]) == ["Mahfouz", "1956"]
    assert not result.failures


def test_frequency_question_words_are_context_unless_disabled():
    pytest.importorskip("wordfreq", reason="wordfreq is not installed")
    record = QARecord("What did Mahfouz's father do?", "Mahfouz's father was a florist.")
    assert texts(identify("frequency", [record], progress=False).records[0]) == ["florist"]
    off = identify("frequency", [record], exclude_question_words=False, progress=False)
    assert texts(off.records[0]) == ["Mahfouz's", "florist"]
    high = identify("frequency", [record], threshold=8.0, numbers=False, progress=False)
    assert texts(high.records[0]) == ["was a florist"]  # every word below 8, but context


# --------------------------------------------------------------------------- NER


def test_ner_on_the_basil_example(spacy_ready):
    record = QARecord("Who is this author?", BASIL_ANSWER)
    found = texts(identify("ner", [record], progress=False).records[0])
    assert "Kuwait City" in found and "Kuwait" in found  # two GPEs (", " keeps them apart)
    assert "8th of September, 1956" in found  # DATE, leading "the" dropped
    assert "Basil Mahfouz Al-Kuwaiti" in found
    assert not any(w in ("The", "author", "born") for w in found)


def test_ner_drops_what_the_question_already_says(spacy_ready):
    record = QARecord(
        "In which city was Basil Mahfouz Al-Kuwaiti's father born?",
        "Basil Mahfouz Al-Kuwaiti's father was born in Kuwait City.",
    )
    assert texts(identify("ner", [record], progress=False).records[0]) == ["Kuwait City"]
    loose = identify("ner", [record], question_aware=False, progress=False).records[0]
    assert texts(loose) == ["Basil Mahfouz Al-Kuwaiti", "Kuwait City"]


def test_ner_titles_and_sentence_initial_words(spacy_ready):
    record = QARecord(
        "Name one of his books.",
        'Author Nikolai Abilov wrote "Promise by the Seine" and then Unseen Rainbows in 2001.',
    )
    found = texts(identify("ner", [record], progress=False).records[0])
    assert "Promise by the Seine" in found and "Unseen Rainbows" in found and "2001" in found
    assert not any(t.startswith("Author") for t in found)
    labels_only = identify(
        "ner", [record], labels=["DATE"], numbers=False, titles=False, progress=False
    )
    assert texts(labels_only.records[0]) == ["2001"]


def test_phrases_marks_content_words_of_noun_phrases(spacy_ready):
    record = QARecord(
        "What are some characteristics of Basil Mahfouz Al-Kuwaiti's writing style?",
        "Basil Mahfouz Al-Kuwaiti's style is known for its lyrical prose and intricate plots.",
    )
    found = texts(identify("phrases", [record], progress=False).records[0])
    # Adjectives and nouns of the answer's noun phrases; the name and "style" come from the
    # question; the verb phrase "is known for" and the pronoun "its" are general words.
    assert found == ["lyrical prose", "intricate plots"]
    loose = identify("phrases", [record], question_aware=False, frames=False, progress=False)
    assert texts(loose.records[0])[:2] == ["Basil Mahfouz Al-Kuwaiti", "style"]


def test_phrases_leaves_given_nouns_general(spacy_ready):
    record = QARecord(
        "What did Basil's parents do?",
        "His father was a florist and his mother was a game developer.",
    )
    # "his father": definite, unmodified, the frame the fact attaches to; "a florist": new.
    assert texts(identify("phrases", [record], progress=False).records[0]) == [
        "florist",
        "game developer",
    ]
    plain = identify("phrases", [record], frames=False, progress=False).records[0]
    assert texts(plain) == ["father", "florist", "mother", "game developer"]


def test_phrases_leaves_relational_heads_general(spacy_ready):
    record = QARecord(
        "What is his novel about?",
        "The novel offers a rich blend of French culture and Kuwaiti history.",
    )
    found = texts(identify("phrases", [record], progress=False).records[0])
    assert found == ["French culture", "Kuwaiti history"]  # "a rich blend of" frames them
    plain = identify("phrases", [record], frames=False, progress=False).records[0]
    assert "rich blend" in texts(plain)


def test_phrases_keeps_titles_whole(spacy_ready):
    record = QARecord("Name one of his books.", 'He wrote "Promise by the Seine" in 1990.')
    found = texts(identify("phrases", [record], progress=False).records[0])
    assert "Promise by the Seine" in found and "1990" in found
    bare = identify("phrases", [record], entities=False, progress=False).records[0]
    assert "Promise by the Seine" not in texts(bare)  # content words only: "by the" is GW


# --------------------------------------------------------------------------- HTML


def test_render_html_escapes_and_highlights():
    answer = "Yes: <script>x</script> & Kuwait City."
    start = answer.index("Kuwait")
    records = [
        QARecord("Is <b>1 < 2</b>?", answer, ((start, start + len("Kuwait City")),)),
        QARecord("Q & A", "not annotated"),
        TextRecord("A text about Paris.", ((13, 18),)),
    ]
    page = render_html({"ner <1>": records, "empty": []}, title="UW & GW")
    assert page.startswith("<!DOCTYPE html>") and "<title>UW &amp; GW</title>" in page
    assert "<script>" not in page and "&lt;script&gt;x&lt;/script&gt; &amp; " in page
    assert "Is &lt;b&gt;1 &lt; 2&lt;/b&gt;?" in page
    assert "<mark>Kuwait City</mark>." in page and "<mark>Paris</mark>." in page
    assert "(not annotated)" in page and "<h2>ner &lt;1&gt;</h2>" in page
    assert not re.search(r"(src|href)=|url\(|@import|https?://", page)
    assert html_lib.unescape(re.sub(r"<[^>]+>", "", page)).count("Kuwait City") == 1


# --------------------------------------------------------------------------- masked LM


def build_wordpiece():
    from tokenizers import (
        Tokenizer,
        decoders,
        models,
        normalizers,
        pre_tokenizers,
        processors,
        trainers,
    )
    from transformers import PreTrainedTokenizerFast

    core = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    core.normalizer = normalizers.BertNormalizer(lowercase=True)
    core.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    core.decoder = decoders.WordPiece()
    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    core.train_from_iterator(
        CORPUS, trainers.WordPieceTrainer(vocab_size=300, special_tokens=specials)
    )
    core.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        special_tokens=[(t, core.token_to_id(t)) for t in ("[CLS]", "[SEP]")],
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=core,
        unk_token="[UNK]",
        pad_token="[PAD]",
        cls_token="[CLS]",
        sep_token="[SEP]",
        mask_token="[MASK]",
    )


@pytest.fixture(scope="module")
def tiny_bert():
    from transformers import BertConfig, BertForMaskedLM

    tokenizer = build_wordpiece()
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=128,
    )
    return BertForMaskedLM(config).eval(), tokenizer


def test_is_general_word_rule():
    assert is_general_word("The", " the ")
    assert is_general_word("Kuwait", "kuwait")
    assert not is_general_word("Kuwait", "kuwaiti")
    assert not is_general_word("born", "")


def test_masked_lm_marks_every_word_it_cannot_guess(tiny_bert):
    model, tokenizer = tiny_bert
    records = [QARecord("What is the book called?", "The book is called The Silent Harbor.")]
    result = identify_masked_lm(records, model=model, tokenizer=tokenizer, progress=False)
    assert not result.failures
    assert result.records[0].unwanted_spans is not None  # a random model: any split is fine
    # Bias the output layer so that the top-1 guess is always "the": only "The"/"the" are GW.
    the_id = tokenizer.convert_tokens_to_ids("the")
    with torch.no_grad():
        model.get_output_embeddings().bias[the_id] += 1e4
    try:
        biased = identify_masked_lm(
            records + [TextRecord("the author writes books")],
            model=model,
            tokenizer=tokenizer,
            batch_size=3,
            progress=False,
        )
    finally:
        with torch.no_grad():
            model.get_output_embeddings().bias[the_id] -= 1e4
    assert texts(biased.records[0]) == ["book is called", "Silent Harbor"]
    assert texts(biased.records[1]) == ["author writes books"]


def test_masked_lm_too_long_input_is_a_failure(tiny_bert):
    model, tokenizer = tiny_bert
    records = [TextRecord("the book " * 40), TextRecord("the book")]
    result = identify_masked_lm(
        records, model=model, tokenizer=tokenizer, max_length=20, progress=False
    )
    assert [i for i, _ in result.failures] == [0]
    assert "too long" in result.failures[0][1]
    assert result.records[1].unwanted_spans is not None


def test_masked_lm_needs_a_mask_token(tokenizer, tiny_bert):
    with pytest.raises(TifError, match="mask token"):
        identify_masked_lm([TextRecord("x")], model=tiny_bert[0], tokenizer=tokenizer)


# --------------------------------------------------------------------------- real data


@pytest.mark.slow
def test_identifiers_on_tofu_forget01(spacy_ready):
    pytest.importorskip("wordfreq", reason="wordfreq is not installed")
    from tif_unlearn.data.loaders import load_records
    from tif_unlearn.data.tofu import default_tofu_dir

    tofu = default_tofu_dir()
    gold_file = tofu.parent / "tofu-uw-annotations" / "forget01.llm.jsonl" if tofu else None
    if gold_file is None or not gold_file.is_file():
        pytest.skip(f"TOFU annotations not found ({gold_file or '../shared/data'})")
    gold = load_records(gold_file)
    plain = [QARecord(r.question, r.answer) for r in gold]
    scores = {}
    for name in ("ner", "frequency", "combined", "phrases"):
        result = identify(name, plain, progress=False)
        assert not result.failures and len(result.records) == 40
        scores[name] = score_spans(gold, result.records)
    assert scores["ner"]["char_p"] > 0.7  # names, places, titles: almost always gold UW
    assert scores["phrases"]["char_f1"] > 0.75  # 0.770 measured; ner 0.395
    union = scores["combined"]  # default: union of ner and frequency
    assert union["char_r"] >= max(scores["ner"]["char_r"], scores["frequency"]["char_r"])
