"""``localisation``: software text from this machine's own gettext catalogs (``/usr/share/locale``, never trained
on), English to each demo language that has catalogs, through a real server with the demo model.

- Placeholders: messages with format directives, tags, URLs or paths, as a ``.pot`` (``c-format`` where a
  printf directive occurs, as xgettext marks them) through ``/translate_file``; the share of translated
  messages that keep every placeholder (``Syntax.intact``), the share left untranslated, and whether
  ``msgfmt -c`` accepts the file. Beside it, the library's ``translate()`` (no protection) on the same
  messages: how many keep their placeholders on their own, and chrF++ of both against the catalogs' own
  translations.
- Glossary: short catalog strings (1-2 words) as terms with the catalog's translation, in longer catalog
  sentences whose reference uses that translation; term success rate and chrF++ with the glossary and without,
  and sentences/s of both (ratio ``glossary_throughput_vs_plain``).
- Confidence: Spearman's rank correlation between ``confidence`` and sentence chrF++ per pair.

Figures are the demo model's: they say what the protection and constraints do, not how good a large model
would be. Ratios: ``placeholders_kept_share`` (must be 1.0), ``term_success_share``.
"""

from __future__ import annotations

import random
import re
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import polib
import torch
from sacrebleu.metrics import CHRF
from scipy.stats import spearmanr
from transformers import AutoTokenizer, M2M100ForConditionalGeneration

from bench.common import table
from bench.loadgen import DEMO_DIR, demo_args, device_args
from lslo.engine.generation import GenerationSettings, translate
from lslo.io.bundle import load_bundle
from server.launch import start_server
from server.text.placeholders import DEFAULT, PRINTF, syntax_for_flags

LOCALES = Path("/usr/share/locale")
LOCALE_OF = {"fr": "fr", "de": "de", "it": "it", "nl": "nl", "zh": "zh_CN", "ja": "ja", "ko": "ko"}
NAME_LISTS = ("iso_", "xkeyboard")
CHRF_PP = CHRF(word_order=2)


def catalog_pairs(locale: str) -> dict[str, str]:
    """English msgid -> translation of every singular message of the locale's catalogs (names lists aside)."""
    out: dict[str, str] = {}
    folder = LOCALES / locale / "LC_MESSAGES"
    for path in sorted(folder.glob("*.mo")) if folder.is_dir() else []:
        if path.name.startswith(NAME_LISTS):
            continue
        try:
            entries = polib.mofile(str(path))
        except (OSError, ValueError):
            continue
        for entry in entries:
            if (
                entry.msgid
                and not entry.msgid_plural
                and not entry.msgctxt
                and entry.msgstr.strip()
                and "\n" not in entry.msgid
                and 12 <= len(entry.msgid) <= 160
            ):
                out.setdefault(entry.msgid, entry.msgstr)
    return out


C_FORMAT = syntax_for_flags(["c-format"])


def flags_of(msgid: str) -> list[str]:
    """``c-format`` where a printf directive occurs (xgettext's rule for C sources)."""
    return ["c-format"] if any(kind == PRINTF for kind, _ in C_FORMAT.find(msgid)) else []


def chrf(hypotheses: list[str], references: list[str]) -> float:
    return CHRF_PP.corpus_score(hypotheses, [references]).score if hypotheses else float("nan")


def _pot(messages: list[str]) -> bytes:
    catalog = polib.POFile()
    catalog.metadata = {"Content-Type": "text/plain; charset=UTF-8", "Plural-Forms": "nplurals=2; plural=(n != 1);"}
    for msgid in messages:
        catalog.append(polib.POEntry(msgid=msgid, msgstr="", flags=flags_of(msgid)))
    return str(catalog).encode("utf-8")


def placeholders(url: str, library: Any, target: str, table_: dict[str, str], n: int, rng: random.Random) -> dict:
    with_ph = sorted(m for m in table_ if DEFAULT.find(m))
    messages = rng.sample(with_ph, min(n, len(with_ph)))
    response = httpx.post(
        url + "/translate_file",
        files={"file": ("bench.pot", _pot(messages))},
        data={"source": "en", "target": target},
        timeout=3600,
    )
    response.raise_for_status()
    written = httpx.get(response.json()["translatedFileUrl"], timeout=60).content
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "out.po"
        path.write_bytes(written)
        check = (
            subprocess.run(["msgfmt", "-c", "-o", "/dev/null", str(path)], capture_output=True).returncode == 0
            if shutil.which("msgfmt")
            else None
        )
        catalog = polib.pofile(str(path))
    served = {e.msgid: e.msgstr for e in catalog if e.msgid}
    done = [m for m in messages if served.get(m)]
    kept = [m for m in done if syntax_for_flags(flags_of(m)).intact(m, served[m])]
    raw = library(messages, target)
    raw_kept = [m for m, t in zip(messages, raw) if syntax_for_flags(flags_of(m)).intact(m, t)]
    return {
        "pair": f"en-{target}",
        "messages": len(messages),
        "translated": len(done),
        "kept": len(kept),
        "kept_share": len(kept) / max(len(done), 1),
        "untranslated_share": 1 - len(done) / max(len(messages), 1),
        "msgfmt_c": check,
        "library_kept_share": len(raw_kept) / max(len(messages), 1),
        "chrf_served": chrf([served[m] or m for m in messages], [table_[m] for m in messages]),
        "chrf_library": chrf(raw, [table_[m] for m in messages]),
    }


def _translate(url: str, texts: list[str], target: str, **extra: Any) -> list[dict]:
    out = []
    for start in range(0, len(texts), 16):
        response = httpx.post(
            url + "/translate",
            json={"q": texts[start : start + 16], "source": "en", "target": target, "confidence": True, **extra},
            timeout=600,
        )
        response.raise_for_status()
        body = response.json()
        out += [{"text": t, "confidence": c} for t, c in zip(body["translatedText"], body["confidence"])]
    return out


def glossary(url: str, target: str, table_: dict[str, str], n: int, rng: random.Random) -> dict | None:
    terms = {
        m: t
        for m, t in table_.items()
        if re.fullmatch(r"[A-Za-z]{4,}(?: [A-Za-z]{3,})?", m)
        and re.fullmatch(r"[^\W\d_][\w' -]{2,30}", t)
        and len(t.split()) <= 3
    }
    by_words = {term.lower(): (term, translation) for term, translation in terms.items()}
    cases = []
    for sentence, reference in table_.items():
        if DEFAULT.find(sentence) or len(sentence.split()) < 5:
            continue
        words = re.findall(r"[a-z]+", sentence.lower())
        for candidate in [" ".join(words[i : i + 2]) for i in range(len(words) - 1)] + words:  # longer first
            if candidate in by_words and by_words[candidate][1].lower() in reference.lower():
                cases.append((sentence, reference, *by_words[candidate]))
                break
    if len(cases) < 10:
        return None
    cases = rng.sample(cases, min(n, len(cases)))
    texts = [c[0] for c in cases]
    start = time.perf_counter()
    plain = _translate(url, texts, target)
    plain_s = time.perf_counter() - start
    start = time.perf_counter()
    forced = []
    for sentence, _, term, translation in cases:  # each sentence its own term
        forced += _translate(url, [sentence], target, glossary=[{"source": term, "target": translation}])
    forced_s = time.perf_counter() - start
    start = time.perf_counter()
    for sentence, _, _, _ in cases:  # the same one-sentence requests without a glossary: the fair baseline
        _translate(url, [sentence], target)
    single_s = time.perf_counter() - start

    def success(out: list[dict]) -> float:
        return sum(c[3].lower() in o["text"].lower() for c, o in zip(cases, out)) / len(cases)

    references = [c[1] for c in cases]
    return {
        "pair": f"en-{target}",
        "sentences": len(cases),
        "terms": len({c[2] for c in cases}),
        "success_plain": success(plain),
        "success_glossary": success(forced),
        "chrf_plain": chrf([o["text"] for o in plain], references),
        "chrf_glossary": chrf([o["text"] for o in forced], references),
        "sents_per_s_glossary": len(cases) / forced_s,
        "sents_per_s_plain": len(cases) / single_s,
        "sents_per_s_batched_plain": len(cases) / plain_s,
    }


def confidence(url: str, target: str, table_: dict[str, str], n: int, rng: random.Random) -> dict:
    plain = sorted(m for m in table_ if not DEFAULT.find(m) and len(m.split()) >= 3)
    texts = rng.sample(plain, min(n, len(plain)))
    out = _translate(url, texts, target)
    scored = [
        (o["confidence"], CHRF_PP.sentence_score(o["text"], [table_[t]]).score)
        for t, o in zip(texts, out)
        if o["confidence"] is not None
    ]
    rho = spearmanr([c for c, _ in scored], [s for _, s in scored]).statistic if len(scored) > 2 else float("nan")
    return {
        "pair": f"en-{target}",
        "sentences": len(scored),
        "spearman": float(rho),
        "mean_confidence": sum(c for c, _ in scored) / max(len(scored), 1),
        "chrf": chrf([o["text"] for o in out], [table_[t] for t in texts]),
    }


def run(device: torch.device, dtype: torch.dtype, quick: bool) -> dict[str, Any]:
    n = 30 if quick else 300
    targets = ["fr", "de"] if quick else list(LOCALE_OF)
    tables = {t: catalog_pairs(LOCALE_OF[t]) for t in targets}
    tables = {t: v for t, v in tables.items() if v}
    if not tables:
        print(f"no catalogs under {LOCALES}: nothing to measure")
        return {"skipped": "no catalogs"}
    model = M2M100ForConditionalGeneration.from_pretrained(DEMO_DIR / "base", dtype=dtype).to(device).eval()
    tokenizer = AutoTokenizer.from_pretrained(DEMO_DIR / "base")
    handle = load_bundle(model, DEMO_DIR / "bundle-paper")

    def library(texts: list[str], target: str) -> list[str]:
        out = translate(
            model,
            tokenizer,
            texts,
            ["en"] * len(texts),
            [target] * len(texts),
            GenerationSettings(num_beams=4, max_new_tokens=128),
            handle,
        )
        return [o[0] for o in out]

    server = start_server([*demo_args(), *device_args(device, dtype)])
    try:
        rng = random.Random(0)
        rows_ph = [placeholders(server.url, library, t, tables[t], n, rng) for t in tables]
        rows_gl = [r for r in (glossary(server.url, t, tables[t], n // 2, rng) for t in tables) if r]
        rows_cf = [confidence(server.url, t, tables[t], n, rng) for t in tables]
    finally:
        server.stop()
    print(
        table(
            rows_ph,
            [
                "pair",
                "messages",
                "translated",
                "kept_share",
                "untranslated_share",
                "msgfmt_c",
                "library_kept_share",
                "chrf_served",
                "chrf_library",
            ],
            "placeholders (.pot through the API)",
        )
    )
    print()
    print(
        table(
            rows_gl,
            [
                "pair",
                "sentences",
                "terms",
                "success_plain",
                "success_glossary",
                "chrf_plain",
                "chrf_glossary",
                "sents_per_s_plain",
                "sents_per_s_glossary",
            ],
            "glossary terms",
        )
    )
    print()
    print(table(rows_cf, ["pair", "sentences", "spearman", "mean_confidence", "chrf"], "confidence vs chrF++"))
    kept = sum(r["kept"] for r in rows_ph) / max(sum(r["translated"] for r in rows_ph), 1)
    success = sum(r["success_glossary"] * r["sentences"] for r in rows_gl) / max(
        sum(r["sentences"] for r in rows_gl), 1
    )
    throughput = sum(r["sents_per_s_glossary"] for r in rows_gl) / max(
        sum(r["sents_per_s_plain"] for r in rows_gl), 1e-9
    )
    ratios = {
        "placeholders_kept_share": kept,
        "term_success_share": success,
        "glossary_throughput_vs_plain": throughput,
    }
    print("\nratios:", {k: round(v, 3) for k, v in ratios.items()})
    return {"placeholders": rows_ph, "glossary": rows_gl, "confidence": rows_cf, "ratios": ratios}
