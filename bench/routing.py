"""How to route a mixed batch through per-language adapters: three implementations of one adapted linear,
timed side by side (interleaved, medians) on decoding-step and prefill shapes.

    python -m bench.routing [--json FILE]

- ``packed``: what ``lslo`` does. Every language's A in one bank (R = sum of ranks, 48 for 2;2;8 over
  lang12); ``h = x A^T`` for all R columns, a per-row 0/1 coefficient mask, ``y += h B^T``. Two dense
  matmuls whatever the mix of languages, but R/r times the FLOPs of one language's adapter.
- ``gather``: ranks padded to the largest (8), A and B gathered per row, two batched matmuls.
  Per-row FLOPs of one language, plus the copies of the gathered factors.
- ``grouped``: rows grouped by language, one small LoRA per group (what a per-adapter loop such as PEFT's
  per-sample adapters does).

All three give the same output (checked here against the plain per-row loop).
"""

from __future__ import annotations

import argparse
import random
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from bench.common import interleaved, machine, median, table, write_json

RANKS = [2] * 8 + [8] * 4  # 2;2;8 over lang12: 4 High, 4 Medium at rank 2, 4 Very-low at rank 8


def factors(d_in: int, d_out: int, seed: int = 0):
    gen = torch.Generator().manual_seed(seed)
    A = [torch.randn(r, d_in, generator=gen) * 0.02 for r in RANKS]
    B = [torch.randn(d_out, r, generator=gen) * 0.02 for r in RANKS]
    return A, B


def implementations(W: torch.Tensor, A: list[torch.Tensor], B: list[torch.Tensor], langs: torch.Tensor):
    rmax, n_lang = max(RANKS), len(RANKS)
    packed_A, packed_B = torch.cat(A), torch.cat(B, dim=1)  # (R, in), (out, R)
    columns = torch.cat([torch.full((r,), i) for i, r in enumerate(RANKS)])
    coef = (langs[:, None] == columns[None, :]).float()  # (rows, R)
    pad_A = torch.zeros(n_lang, rmax, W.shape[1])
    pad_B = torch.zeros(n_lang, W.shape[0], rmax)
    for i, r in enumerate(RANKS):
        pad_A[i, :r], pad_B[i, :, :r] = A[i], B[i]
    groups = [(lang, (langs == lang).nonzero().squeeze(1)) for lang in langs.unique().tolist()]

    def packed(x):  # x: (rows, T, in)
        y = F.linear(x, W)
        h = F.linear(x, packed_A).mul_(coef[:, None, :])  # (rows, T, R)
        y.view(-1, y.shape[-1]).addmm_(h.view(-1, h.shape[-1]), packed_B.t())
        return y

    def gather(x):
        y = F.linear(x, W)
        h = torch.bmm(x, pad_A[langs].transpose(1, 2))  # (rows, T, rmax)
        return y.baddbmm_(h, pad_B[langs].transpose(1, 2))  # (rows, T, out)

    def grouped(x):
        y = F.linear(x, W)
        for lang, idx in groups:
            xs = x[idx]
            y[idx] += F.linear(F.linear(xs, A[lang]), B[lang])
        return y

    return {"packed": packed, "gather": gather, "grouped": grouped}


def reference(x, W, A, B, langs):
    return torch.stack(
        [F.linear(x[i], W) + F.linear(F.linear(x[i], A[lang]), B[lang]) for i, lang in enumerate(langs.tolist())]
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.routing", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--repeats", type=int, default=15)
    args = parser.parse_args(argv)
    rows: list[dict[str, Any]] = []
    ratios: dict[str, float] = {}
    rng = random.Random(0)
    with torch.inference_mode():
        for d in (256, 512, 1024):
            W = torch.randn(d, d) * 0.02
            A, B = factors(d, d)
            for n_rows, tokens, shape in ((32, 1, "decode step"), (160, 1, "decode step, beam 5"), (32, 24, "prefill")):
                langs = torch.tensor([rng.randrange(len(RANKS)) for _ in range(n_rows)])
                x = torch.randn(n_rows, tokens, d)
                impls = implementations(W, A, B, langs)
                want = reference(x, W, A, B, langs)
                for name, fn in impls.items():
                    torch.testing.assert_close(fn(x), want, rtol=1e-4, atol=1e-5, msg=name)
                base = lambda x=x, W=W: F.linear(x, W)  # noqa: E731
                calls = {name: (lambda fn=fn, x=x: [fn(x) for _ in range(20)]) for name, fn in impls.items()}
                calls["base"] = lambda x=x, base=base: [base() for _ in range(20)]
                times = interleaved(calls, args.repeats, torch.device("cpu"))
                us = {k: median(v) / 20 * 1e6 for k, v in times.items()}
                rows.append(
                    {
                        "d": d,
                        "shape": shape,
                        "rows x tokens": f"{n_rows} x {tokens}",
                        "base us": us["base"],
                        "packed us": us["packed"],
                        "gather us": us["gather"],
                        "grouped us": us["grouped"],
                        "packed/base": us["base"] / us["packed"],
                        "gather/base": us["base"] / us["gather"],
                        "grouped/base": us["base"] / us["grouped"],
                    }
                )
                ratios[f"packed_vs_gather[d{d},{shape}]"] = us["gather"] / us["packed"]
                ratios[f"packed_vs_grouped[d{d},{shape}]"] = us["grouped"] / us["packed"]
    print(
        table(
            rows,
            [
                "d",
                "shape",
                "rows x tokens",
                "base us",
                "packed us",
                "gather us",
                "grouped us",
                "packed/base",
                "gather/base",
                "grouped/base",
            ],
            "one adapted d x d linear, 2;2;8 over 12 languages, random language per row (x/base: throughput "
            "relative to the bare linear)",
        )
    )
    write_json(
        args.json,
        "routing",
        {
            "machine": machine(torch.device("cpu")),
            "rows": rows,
            "ratios": ratios,
            "params": {"ranks": RANKS, "repeats": args.repeats},
        },
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
