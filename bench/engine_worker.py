"""One engine of ``python -m bench engine`` in a process of its own: translates the workload file's rows
``--repeats`` times and prints one JSON line (sentences/s per repeat, the translations of the last one and, for
``lslo.engine``, its mean decoding step in the last repeat)."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch


def load_rows(path: Path) -> tuple[list[tuple[str, str, str]], dict]:
    payload = json.loads(path.read_text(encoding="utf-8"))
    return [tuple(r) for r in payload["rows"]], payload["settings"]


def run_ctranslate2(rows, settings, model_dir: str, compute_type: str, device: str, repeats: int):
    import ctranslate2
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(settings["base"])
    sources = []
    for text, src, _ in rows:
        tokenizer.src_lang = src
        sources.append(tokenizer.convert_ids_to_tokens(tokenizer(text)["input_ids"]))
    prefixes = [[tokenizer.convert_ids_to_tokens(tokenizer.get_lang_id(tgt))] for _, _, tgt in rows]
    translator = ctranslate2.Translator(
        model_dir, device=device, compute_type=compute_type, inter_threads=1, intra_threads=settings["threads"]
    )

    def once():
        return translator.translate_batch(
            sources,
            target_prefix=prefixes,
            beam_size=settings["beam"],
            max_batch_size=settings["batch"],
            max_decoding_length=settings["max_new"] + 1,
        )

    once()  # warm-up
    rates, out = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        out = once()
        rates.append(len(rows) / (time.perf_counter() - start))
    texts = [
        tokenizer.decode(tokenizer.convert_tokens_to_ids(o.hypotheses[0][1:]), skip_special_tokens=True) for o in out
    ]
    return rates, texts


def run_lslo(rows, settings, engine: str, device: str, repeats: int):
    from transformers import AutoTokenizer, M2M100ForConditionalGeneration

    from lslo.devices import DTYPES
    from lslo.engine import DecodingEngine
    from lslo.engine.generation import GenerationSettings, requests_for, translate_reference
    from lslo.io import load_bundle

    dtype = DTYPES[settings["dtype"]]
    tokenizer = AutoTokenizer.from_pretrained(settings["base"])
    model = M2M100ForConditionalGeneration.from_pretrained(settings["base"], dtype=dtype, use_safetensors=True)
    model = model.to(device).eval()
    lslo = load_bundle(model, settings["bundle"]) if "adapters" in engine else None
    gen = GenerationSettings(num_beams=settings["beam"], max_new_tokens=settings["max_new"], fallback_to_base=True)
    texts, srcs, tgts = [r[0] for r in rows], [r[1] for r in rows], [r[2] for r in rows]
    timing: dict[str, float] = {}  # the mean decoding step of the last repeat (the engine's)
    if engine.startswith("generate"):
        batch = settings["batch"]

        def once():
            out = []
            for i in range(0, len(rows), batch):
                out += translate_reference(
                    model, tokenizer, texts[i : i + batch], srcs[i : i + batch], tgts[i : i + batch], gen, lslo
                )
            return [o[0] for o in out]
    else:
        decoder = DecodingEngine(
            model,
            lslo,
            max_rows=settings["batch"] * settings["beam"],
            max_new_tokens=settings["max_new"],
            int8=engine.endswith("-int8"),
        )

        def once():
            requests = requests_for(tokenizer, texts, srcs, tgts, gen, int(model.config.decoder_start_token_id))
            ids = [decoder.submit(r) for r in requests]
            outputs: dict = {}
            started, steps = time.perf_counter(), 0
            while len(outputs) < len(ids):  # DecodingEngine.run, with its steps counted
                outputs.update((o.request_id, o) for o in decoder.step())
                steps += 1
            timing["step_ms"] = 1000 * (time.perf_counter() - started) / max(1, steps)
            return [tokenizer.decode(list(outputs[i].sequences[0]), skip_special_tokens=True).strip() for i in ids]

    with torch.inference_mode():
        once()
        rates, out = [], []
        for _ in range(repeats):
            if device.startswith("cuda"):
                torch.cuda.synchronize()
            start = time.perf_counter()
            out = once()
            if device.startswith("cuda"):
                torch.cuda.synchronize()
            rates.append(len(rows) / (time.perf_counter() - start))
    return rates, out, timing.get("step_ms")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("workload", type=Path)
    parser.add_argument("engine")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--ct2-model", default="")
    args = parser.parse_args(argv)
    rows, settings = load_rows(args.workload)
    torch.set_num_threads(settings["threads"])
    if args.engine.startswith("ct2"):
        rates, texts = run_ctranslate2(
            rows,
            settings,
            args.ct2_model,
            args.engine.split("-", 1)[1],
            "cuda" if args.device.startswith("cuda") else "cpu",
            args.repeats,
        )
        step_ms = None
    else:
        rates, texts, step_ms = run_lslo(rows, settings, args.engine, args.device, args.repeats)
    print(json.dumps({"engine": args.engine, "rates": rates, "texts": texts, "step_ms": step_ms}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
