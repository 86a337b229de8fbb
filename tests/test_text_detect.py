"""Language detection among the languages served (``server/text/detect.py``)."""

import random

import pytest

from server.text.detect import Detector
from training.corpus_sources import django_segments

DEMO = ["en", "fr", "de", "it", "zh", "nl", "ja", "ko", "af", "hy", "sw", "cy"]


def short_strings(code: str, limit: int, seed: int = 0) -> list[str]:
    """``limit`` short strings of Django's catalogs in ``code``, drawn with ``seed``: 2-8 words without digits
    (2-12 characters in Chinese and Japanese, which write no spaces)."""
    table, _ = django_segments(["en", "fr" if code == "en" else code])
    texts = sorted({entry[code] for entry in table.values() if code in entry})
    if code in ("zh", "ja"):
        texts = [t for t in texts if 2 <= len(t) <= 12]
    else:
        texts = [t for t in texts if 2 <= len(t.split()) <= 8 and not any(c.isdigit() for c in t)]
    random.Random(seed).shuffle(texts)
    return texts[:limit]


@pytest.fixture(scope="module")
def detector():
    return Detector(DEMO)


@pytest.mark.parametrize(
    "text,language",
    [
        ("삭제하시겠습니까?", "ko"),  # Hangul: only Korean among the candidates
        ("これを削除", "ja"),  # kana
        ("Բարև ձեզ", "hy"),  # Armenian letters
        ("検索", "ja"),  # 検 is the Japanese form (simplified Chinese writes 检)
        ("检索结果", "zh"),  # 检 and 结 are not in Japanese's character set
        ("ｶﾀｶﾅ", "ja"),  # half-width katakana
        ("データベース", "ja"),  # ー is a katakana-hiragana mark
        ("geometryタイプが不正です", "ja"),  # a Latin word inside Japanese
    ],
)
def test_the_writing_system_decides_where_it_can(detector, text, language):
    assert detector.detect(text)[0].language == language
    assert detector.detect(text)[0].confidence == 1.0


def test_ranked_guesses_are_probabilities_among_the_candidates(detector):
    guesses = detector.detect("Bonjour tout le monde, comment allez-vous ?")
    assert guesses[0].language == "fr" and guesses[0].confidence > 0.9
    assert len(guesses) == 3 and sum(g.confidence for g in guesses) <= 1.0001
    assert [g.confidence for g in guesses] == sorted((g.confidence for g in guesses), reverse=True)


def test_only_languages_served_are_answered():
    french = "Bonjour tout le monde, comment allez-vous ?"
    assert {g.language for g in Detector(["en", "de"]).detect(french)} <= {"en", "de"}
    assert [(g.language, g.confidence) for g in Detector(["fr"]).detect("Guten Morgen")] == [("fr", 1.0)]
    assert Detector([]).detect("Hello") == []
    assert Detector(DEMO).detect("Привет, как дела?") == []  # Cyrillic: no served language writes it


def test_a_language_outside_the_statistical_model_is_found_by_its_script():
    assert Detector(["en", "xyz_Armn"]).detect("Բարև ձեզ")[0].language == "xyz_Armn"


def test_two_served_codes_of_one_model_language_share_its_probability():
    guesses = Detector(["zh", "zh_Hans", "en"]).detect("人口和经济")
    assert {g.language for g in guesses[:2]} == {"zh", "zh_Hans"} and guesses[0].confidence == guesses[1].confidence
    both = Detector(["zh", "xyz_Hans"]).detect("人口和经济")  # one in the model, one only known by its script
    assert {g.language for g in both} == {"zh", "xyz_Hans"} and sum(g.confidence for g in both) <= 1.0001


@pytest.mark.parametrize("text", ["", "   ", "12345", "3.14 + 2", "?!", "😀"])
def test_text_without_letters_has_no_answer(detector, text):
    assert detector.detect(text) == []


def test_accuracy_on_short_strings_of_the_served_languages(detector):
    """At the level docs/text.md reports (92.8 % over 2,855 strings of 2-8 words); 40 strings a language here."""
    right = total = 0
    for code in DEMO:
        for text in short_strings(code, 40):
            guesses = detector.detect(text, top=1)
            right += bool(guesses) and guesses[0].language == code
            total += 1
    assert total >= 400 and right / total > 0.88
