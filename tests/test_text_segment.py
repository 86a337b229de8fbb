"""Segmentation into model rows and reassembly (``server/text/segment.py``): nothing lost, structure kept."""

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from server.text.segment import segment, split_long, unspaced


def fits_chars(limit):
    return lambda text: len(text) <= limit


def identity(text, language="en", limit=60):
    layout = segment(text, language, fits_chars(limit))
    return layout, layout.assemble(layout.rows, language)


def test_paragraphs_lines_indentation_and_list_markers_are_kept():
    text = (
        "Enter a valid address. This field is required.\n\n"
        "  - First item here.\n  - Second item: a, b.\n\n1. One.\n2) Two!\n\t(iv) Roman.\n"
    )
    layout, back = identity(text)
    assert back == text
    assert layout.rows == [
        "Enter a valid address.",
        "This field is required.",
        "First item here.",
        "Second item: a, b.",
        "One.",
        "Two!",
        "Roman.",
    ]
    upper = layout.assemble([r.upper() for r in layout.rows], "fr")
    assert upper.count("\n") == text.count("\n") and upper.count("\n\n") == 2 and "  - FIRST ITEM HERE." in upper


def test_text_without_letters_is_kept_and_sent_nowhere():
    for text in ["", "   ", "\n\t \n", "...!!!", "12,345.67 + 8 = ?", "— * —", "😀🎉"]:
        layout, back = identity(text)
        assert layout.rows == [] and back == text


def test_a_long_sentence_is_cut_at_clauses_then_words_and_nothing_is_lost():
    sentence = (
        "The committee met on Monday, reviewed the budget in detail; then, after a long debate about "
        "priorities, it adjourned without any decision at all."
    )
    parts = split_long(sentence, fits_chars(50))
    assert "".join(parts) == sentence and all(len(p) <= 50 for p in parts)
    assert parts[0].rstrip().endswith(",")  # the first cut is a clause boundary
    layout, back = identity(sentence, limit=50)
    assert back == sentence and len(layout.rows) == len(parts)


def test_a_2000_character_word_is_cut_into_windows():
    word = "x" * 2000
    layout, back = identity(word, limit=300)
    assert [len(r) for r in layout.rows] == [300] * 6 + [200]
    assert back == word and layout.assemble(layout.rows, "fr") == word  # rejoined as it was cut: no spaces added


def test_scripts_without_spaces():
    text = "これはペンです。geometryタイプが不正です。本当？"
    layout = segment(text, "ja", fits_chars(100))
    assert layout.rows == ["これはペンです。", "geometryタイプが不正です。", "本当？"]
    assert layout.assemble(["This is a pen.", "Bad type.", "Really?"], "en") == "This is a pen. Bad type. Really?"
    english = segment("This is a pen. Bad type.", "en", fits_chars(100))
    assert english.assemble(["这是一支笔。", "类型错误。"], "zh") == "这是一支笔。类型错误。"
    assert unspaced("zho_Hans") and unspaced("ja") and not unspaced("eng_Latn") and not unspaced("ko")


def test_mixed_scripts_in_one_paragraph_stay_in_order():
    text = "Hello world. Привет мир! 你好世界。 שלום עולם."
    layout, back = identity(text)
    assert back == text and len(layout.rows) == 4


# Ordinary words only: a segmenter may rightly read "a." or "etc." as abbreviations.
WORDS = ["house", "river", "green", "walks", "slowly", "under", "bright", "window", "table", "city", "rain"]
SENTENCE = st.builds(
    lambda first, rest, end: " ".join([first.title(), *rest]) + end,
    st.sampled_from(WORDS),
    st.lists(st.sampled_from(WORDS), max_size=6),
    st.sampled_from([".", "!", "?"]),
)
LINE = st.tuples(st.sampled_from(["", "- ", "  * ", "1. ", "\t"]), st.lists(SENTENCE, min_size=1, max_size=4))


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(LINE, st.sampled_from(["\n", "\n\n", "\r\n", "\n\n\n"])), min_size=1, max_size=6))
def test_any_text_of_lines_and_sentences_comes_back_exactly(lines):
    text = "".join(lead + " ".join(sentences) + sep for (lead, sentences), sep in lines)
    layout, back = identity(text, limit=40)
    assert back == text
    assert all(len(row) <= 40 and row == row.strip() for row in layout.rows)
    sentences = [s for (_, ss), _ in lines for s in ss]
    if all(len(s) <= 40 for s in sentences):
        assert layout.rows == sentences  # one row per sentence


@pytest.mark.parametrize("gap", ["  ", "\u3000", " \t "])
def test_spaces_between_sentences_stay_unless_the_target_spaces_sentences_otherwise(gap):
    layout = segment(f"One. Two.{gap}Three.", "en", fits_chars(100))
    assert layout.assemble(["Un.", "Deux.", "Trois."], "fr") == f"Un. Deux.{gap}Trois."  # as they were
    assert re.fullmatch(r"一。二。三。", layout.assemble(["一。", "二。", "三。"], "zh"))  # Chinese uses none


def test_odd_white_space_and_things_that_look_like_list_markers():
    for text in ["\xa0Hello\xa0", "\tTabbed.\r\nNext line.\u2028Third.", "A. Smith said hello.", "mild. weather"]:
        assert identity(text)[1] == text
    assert segment("A. Smith said hello.", "en", fits_chars(100)).rows[0].startswith("A.")
    assert segment("mild. weather", "en", fits_chars(100)).rows[0].startswith("mild")
    assert segment("iv. Fourth point.", "en", fits_chars(100)).rows == ["Fourth point."]


def test_a_segmenter_panic_keeps_the_line_whole():
    # sentencex's Rust core panicked on a capital, a narrow no-break space and a full stop (French typography).
    layout, back = identity("Vitamine C\u202f. Prenez-en.", "fr")
    assert back == "Vitamine C\u202f. Prenez-en." and layout.rows
