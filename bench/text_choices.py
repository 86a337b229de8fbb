"""``python -m bench.text_choices segmenters|detectors``: how the sentence segmenter and the language detector
were chosen, re-runnable.

Both are measured on real text that ships offline: the translated messages of Django's gettext catalogs.

- Segmenters: paragraphs of 3-6 single-sentence messages of one language, joined as the language writes them
  (a space; nothing for Chinese and Japanese). A segmenter should find exactly the joins. Reported: paragraphs
  split exactly right, and precision / recall of the boundaries it finds.
- Detectors: short messages (2-8 words; 2-12 characters for Chinese and Japanese) of the served languages,
  each detector restricted to those languages (the service only ever offers languages it can translate).
"""

from __future__ import annotations

import argparse
import gettext
import random
import re
import time
import unicodedata
from collections.abc import Callable, Sequence
from pathlib import Path

DJANGO_LOCALES = {"zh": "zh_Hans", "no": "nb"}
UNSPACED = {"zh", "ja"}
TERMINAL = re.compile(r"[.!?。！？]$")
# A sentence break inside a message: a terminal mark, then a capital (or, in scripts without case, anything);
# a mark followed by a lower-case word is an abbreviation ("e.g. a", "z. B. die") and stays inside a sentence.
INNER_BREAK = re.compile(r"[.!?]\s+[\"“‘'(¿¡«]?(?:[^\W\d_](?<![a-zà-ÿα-ωа-я]))|[。！？]\S")
SKIP = re.compile(r"%\(|%[sdrif]|\{|\}|<|>|https?:|\\n|\n|\t|_")
DEMO_LANGUAGES = ["en", "fr", "de", "it", "zh", "nl", "ja", "ko", "af", "hy", "sw", "cy"]
MORE_SCRIPTS = ["ru", "uk", "el", "ar", "fa", "he", "hi", "th", "es", "pt", "pl", "tr", "vi", "id"]


def _norm(text: str) -> str:
    return " ".join(unicodedata.normalize("NFC", text).split())


def catalog_messages(code: str) -> list[tuple[str, str]]:
    """(English msgid, translation) of every usable message of Django's catalogs for ``code``."""
    import django

    root = Path(django.__file__).parent
    out: dict[str, str] = {}
    locale = "fr" if code == "en" else DJANGO_LOCALES.get(code, code)  # English: the msgids of a catalog
    for mo in sorted(root.glob(f"**/locale/{locale}/LC_MESSAGES/*.mo")):
        with mo.open("rb") as f:
            catalog = gettext.GNUTranslations(f)._catalog  # type: ignore[attr-defined]
        for msgid, text in catalog.items():
            if isinstance(msgid, str) and msgid and isinstance(text, str) and text.strip():
                source = msgid.split("\x04")[-1]
                if not SKIP.search(source) and not SKIP.search(text):
                    out.setdefault(_norm(source), _norm(text))
    if code == "en":
        return [(s, s) for s in out]
    return sorted(out.items())


def single_sentences(code: str) -> list[str]:
    """Messages that are one sentence: one terminal mark, at the end, in the English source and here."""
    return [
        text
        for source, text in catalog_messages(code)
        if TERMINAL.search(source)
        and not INNER_BREAK.search(source)
        and TERMINAL.search(text)
        and not INNER_BREAK.search(text)
        and len(text) >= 8
    ]


def paragraphs(code: str, n: int, seed: int = 0) -> list[list[str]]:
    sentences = single_sentences(code)
    rng = random.Random(seed)
    return [rng.sample(sentences, rng.randint(3, 6)) for _ in range(n)] if len(sentences) >= 6 else []


# Paragraphs with the traps catalogs lack: abbreviations, decimals, ellipses, quotes, initials, URLs, list
# numbers. Each is a list of its sentences (joined with a space, or nothing for zh / ja).
HARD: dict[str, list[list[str]]] = {
    "en": [
        ["Dr. Smith arrived at 5 p.m. on Monday.", "He paid $3.50 for a coffee, i.e. too much."],
        ["Version 2.1 is out.", "See www.example.com for details, e.g. the release notes."],
        ["Wait... what happened?", "Nobody knows."],
        ['She said "Stop!" and left.', "The U.S. team won."],
        ["J. R. R. Tolkien wrote it in 1937.", "It sold well."],
    ],
    "fr": [
        ["M. Dupont est arrivé à 17 h.", "Il a payé 3,50 €, c.-à-d. trop cher."],
        ["Voir p. 12 de la doc.", "C'est clair, non ?"],
        ["« Arrête ! » a-t-il crié.", "Puis il est parti."],
    ],
    "de": [
        ["Das kostet ca. 5 Euro, z. B. im Laden.", "Danach gehen wir heim."],
        ["Dr. Müller kommt am 3. Mai.", "Er bleibt bis Freitag."],
        ["Version 2.5 ist da.", "Bitte aktualisieren!"],
    ],
    "it": [
        ["Il sig. Rossi è arrivato alle 17.", "Ha pagato 3,50 euro, ecc."],
        ["Vedi pag. 12 del manuale.", "È chiaro?"],
    ],
    "nl": [["Dhr. Jansen komt om 5 uur, d.w.z. straks.", "Wacht op hem."], ["Zie blz. 4.", "Klaar!"]],
    "es": [["El Sr. García llegó a las 5.", "¿Dónde está ahora?"], ["Cuesta 3,50 €, p. ej. en la tienda.", "Vale."]],
    "ru": [["Д-р Иванов приехал в 5 ч.", "Он заплатил 3,5 руб., т. е. дорого."], ["См. стр. 12.", "Всё ясно?"]],
    "ja": [
        ["バージョン2.1が出ました。", "詳細はwww.example.comを見てください。"],
        ["「止まれ！」と彼は言った。", "そして去った。"],
    ],
    "zh": [["版本2.1已发布。", "详情请访问www.example.com。"], ["他说：“停下！”", "然后离开了。"]],
    "ko": [
        ["버전 2.1이 나왔습니다.", "자세한 내용은 www.example.com을 보세요."],
        ['그는 "멈춰!"라고 말했다.', "그리고 떠났다."],
    ],
}


def _boundaries(pieces: Sequence[str]) -> set[int]:
    """Character offsets (in the text with white space removed) where a piece ends, the last one excluded."""
    ends, total = set(), 0
    for piece in pieces:
        total += len("".join(piece.split()))
        ends.add(total)
    ends.discard(total)
    return ends


def _segmenters() -> dict[str, Callable[[str, str], list[str] | None]]:
    import pysbd
    import sentencex

    cache: dict[str, object] = {}

    def with_pysbd(code: str, text: str) -> list[str] | None:
        if code not in cache:
            try:
                cache[code] = pysbd.Segmenter(language=code, clean=False)
            except ValueError:
                cache[code] = None
        seg = cache[code]
        return None if seg is None else seg.segment(text)  # type: ignore[attr-defined]

    def regex(code: str, text: str) -> list[str]:
        return [p for p in re.split(r"(?<=[.!?。！？])\s*", text) if p]

    from server.text.segment import sentences

    return {
        "sentencex": lambda code, text: list(sentencex.segment(code, text)),
        "pysbd": with_pysbd,
        "regex baseline": regex,
        "served (sentencex + zh/ja rule)": lambda code, text: sentences(text, code),
    }


def compare_segmenters(languages: Sequence[str], n: int) -> None:
    segmenters = _segmenters()
    print("Paragraphs of catalog messages:\n")
    score_segmenters(segmenters, {code: paragraphs(code, n) for code in languages})
    print("\nParagraphs with abbreviations, decimals, ellipses, quotes and URLs (hand-written):\n")
    score_segmenters(segmenters, {code: HARD[code] for code in languages if code in HARD})


def score_segmenters(
    segmenters: dict[str, Callable[[str, str], list[str] | None]], cases_by_language: dict[str, list[list[str]]]
) -> None:
    print(f"| language | paragraphs | {' | '.join(f'{name} exact / P / R' for name in segmenters)} |")
    print("|---|---:|" + "---|" * len(segmenters))
    totals = {name: [0, 0, 0, 0, 0] for name in segmenters}  # exact, paragraphs, true, found, right
    for code, cases in cases_by_language.items():
        if not cases:
            continue
        cells = []
        for name, segment in segmenters.items():
            exact = found = right = truth = 0
            supported = True
            for sentences in cases:
                text = ("" if code in UNSPACED else " ").join(sentences)
                pieces = segment(code, text)
                if pieces is None:
                    supported = False
                    break
                want, got = _boundaries(sentences), _boundaries(pieces)
                exact += want == got
                truth, found, right = truth + len(want), found + len(got), right + len(want & got)
            if not supported:
                cells.append("not supported")
                continue
            t = totals[name]
            t[0], t[1], t[2], t[3], t[4] = t[0] + exact, t[1] + len(cases), t[2] + truth, t[3] + found, t[4] + right
            cells.append(
                f"{100 * exact / len(cases):.0f} % / {100 * right / max(found, 1):.1f} / "
                f"{100 * right / max(truth, 1):.1f}"
            )
        print(f"| {code} | {len(cases)} | {' | '.join(cells)} |")
    cells = [
        f"{100 * t[0] / max(t[1], 1):.0f} % / {100 * t[4] / max(t[3], 1):.1f} / {100 * t[4] / max(t[2], 1):.1f}"
        f" ({t[1]} paragraphs)"
        for t in totals.values()
    ]
    print(f"| all supported | | {' | '.join(cells)} |")


def short_strings(code: str, limit: int, seed: int = 0) -> list[str]:
    texts = [text for _, text in catalog_messages(code)]
    if code in UNSPACED:
        texts = [t for t in texts if 2 <= len(t) <= 12]
    else:
        texts = [t for t in texts if 2 <= len(t.split()) <= 8 and not any(c.isdigit() for c in t)]
    random.Random(seed).shuffle(texts)
    return texts[:limit]


def _detectors(languages: Sequence[str]) -> dict[str, Callable[[str], str]]:
    import langdetect
    import py3langid
    from langdetect import DetectorFactory
    from lingua import IsoCode639_1, LanguageDetectorBuilder

    identifier = py3langid.langid.LanguageIdentifier.from_model_file(py3langid.langid.MODEL_FILE, norm_probs=True)
    identifier.set_languages(list(languages))
    lingua = (
        LanguageDetectorBuilder.from_iso_codes_639_1(*[IsoCode639_1.from_str(c) for c in languages])
        .with_preloaded_language_models()
        .build()
    )
    DetectorFactory.seed = 0
    alias = {"zh-cn": "zh", "zh-tw": "zh"}

    def with_langdetect(text: str) -> str:
        try:
            ranked = [(alias.get(p.lang, p.lang), p.prob) for p in langdetect.detect_langs(text)]
        except langdetect.lang_detect_exception.LangDetectException:
            return "?"
        allowed = [lang for lang, _ in ranked if lang in languages]
        return allowed[0] if allowed else "?"

    def with_lingua(text: str) -> str:
        found = lingua.detect_language_of(text)
        return found.iso_code_639_1.name.lower() if found else "?"

    from server.text.detect import Detector

    ours = Detector(languages)

    def with_script_then_py3langid(text: str) -> str:
        found = ours.detect(text, top=1)
        return found[0].language if found else "?"

    return {
        "py3langid": lambda text: identifier.classify(text)[0],
        "langdetect": with_langdetect,
        "lingua": with_lingua,
        "script, then py3langid (served)": with_script_then_py3langid,
    }


def compare_detectors(languages: Sequence[str], n: int) -> None:
    detectors = _detectors(languages)
    print(f"| language | strings | {' | '.join(detectors)} |")
    print("|---|---:|" + "---:|" * len(detectors))
    right = {name: 0 for name in detectors}
    seconds = {name: 0.0 for name in detectors}
    total = 0
    for code in languages:
        strings = short_strings(code, n)
        cells = []
        for name, detect in detectors.items():
            started = time.perf_counter()
            hits = sum(detect(s) == code for s in strings)
            seconds[name] += time.perf_counter() - started
            right[name] += hits
            cells.append(f"{100 * hits / max(len(strings), 1):.1f} %")
        total += len(strings)
        print(f"| {code} | {len(strings)} | {' | '.join(cells)} |")
    print(f"| all | {total} | {' | '.join(f'**{100 * right[k] / total:.1f} %**' for k in detectors)} |")
    print(f"| ms per string | | {' | '.join(f'{1000 * seconds[k] / total:.2f}' for k in detectors)} |")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.text_choices", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("what", choices=["segmenters", "detectors"])
    parser.add_argument("--languages", default=",".join(DEMO_LANGUAGES + MORE_SCRIPTS))
    parser.add_argument("-n", type=int, default=200, help="paragraphs / strings per language")
    args = parser.parse_args(argv)
    languages = [c.strip() for c in args.languages.split(",") if c.strip()]
    if args.what == "segmenters":
        compare_segmenters(languages, args.n)
    else:
        compare_detectors(languages, args.n)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
