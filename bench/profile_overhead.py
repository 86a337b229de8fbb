"""Where LSLo's generation overhead goes: a torch.profiler breakdown of one greedy ``generate()`` on a
mixed-pair batch, base model versus LSLo, by operator (CPU self time and call counts).

    python -m bench.profile_overhead [--size demo|mid] [--batch 32] [--new-tokens 32] [--top 12]

The overhead suite reports the ratio; this shows why it is what it is: on a small model, each decoding step
runs tiny matmuls (rows x 1 token), and the adapter's extra kernels per adapted linear cost about as much
in dispatch as they do in arithmetic.
"""

from __future__ import annotations

import argparse
from collections import defaultdict
from typing import Any

import torch
from torch.profiler import ProfilerActivity, profile

from bench.common import table
from bench.suites.overhead import generate_fn
from bench.workloads import build, mixed_batch
from lslo.adapters.layer import LSLoLinear


def op_stats(fn) -> tuple[dict[str, dict[str, float]], float]:
    """Per operator: self CPU milliseconds and calls; and the total self CPU milliseconds."""
    fn()  # warm-up
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        fn()
    stats: dict[str, dict[str, float]] = defaultdict(lambda: {"ms": 0.0, "calls": 0})
    for event in prof.key_averages():
        stats[event.key]["ms"] += event.self_cpu_time_total / 1000
        stats[event.key]["calls"] += event.count
    return dict(stats), sum(s["ms"] for s in stats.values())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.profile_overhead",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--size", default="demo", choices=["demo", "mid"])
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--new-tokens", type=int, default=32)
    parser.add_argument("--top", type=int, default=12)
    args = parser.parse_args(argv)
    work = build(args.size, torch.device("cpu"), torch.float32)
    batch = mixed_batch(work, args.batch, 24, seed=args.batch, device=torch.device("cpu"))
    base, base_total = op_stats(generate_fn(work.base, batch, 1, args.new_tokens))
    lslo, lslo_total = op_stats(generate_fn(work.model, batch, 1, args.new_tokens, work.lslo))
    rows: list[dict[str, Any]] = []
    for op in sorted(set(base) | set(lslo), key=lambda k: -(lslo.get(k, {}).get("ms", 0))):
        b, s = base.get(op, {"ms": 0.0, "calls": 0}), lslo.get(op, {"ms": 0.0, "calls": 0})
        rows.append(
            {
                "operator": op,
                "base ms": b["ms"],
                "lslo ms": s["ms"],
                "extra ms": s["ms"] - b["ms"],
                "base calls": int(b["calls"]),
                "lslo calls": int(s["calls"]),
            }
        )
    rows = sorted(rows, key=lambda r: -abs(r["extra ms"]))[: args.top]
    print(
        table(
            rows,
            ["operator", "base ms", "lslo ms", "extra ms", "base calls", "lslo calls"],
            f"{args.size} model, greedy, batch {args.batch}, {args.new_tokens} new tokens: operators by extra "
            "self CPU time (profiled run)",
        )
    )
    calls_base = sum(int(v["calls"]) for v in base.values())
    calls_lslo = sum(int(v["calls"]) for v in lslo.values())
    modules = sum(isinstance(m, LSLoLinear) for m in work.model.modules())
    print(
        f"\ntotal self CPU: base {base_total:.0f} ms, lslo {lslo_total:.0f} ms "
        f"(ratio {base_total / lslo_total:.3f}); operator calls: base {calls_base:,}, lslo {calls_lslo:,}; "
        f"LSLo modules: {modules}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
