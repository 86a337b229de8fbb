"""``python -m bench <suite> [--quick] [--device cpu|cuda] [--json FILE]``"""

from __future__ import annotations

import argparse
import importlib
import sys
import time
from pathlib import Path

import torch

from bench.common import machine, write_json
from lslo.devices import DTYPES, resolve_device, weights_dtype

SUITES = {
    "engine": "bench.suites.engine",
    "localisation": "bench.suites.localisation",
    "overhead": "bench.suites.overhead",
    "peft": "bench.suites.peft_compare",
    "server": "bench.suites.server_load",
    "swap": "bench.suites.swap",
    "train": "bench.suites.train",
    "startup": "bench.suites.startup",
    "transport": "bench.suites.transport",
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("suite", choices=[*SUITES, "all"])
    parser.add_argument("--quick", action="store_true", help="short runs (under two minutes each on 2 CPU cores)")
    parser.add_argument("--device", default="cpu", help="auto, cpu, cuda or cuda:N")
    parser.add_argument(
        "--dtype",
        default="auto",
        choices=["auto", "fp32", "fp16", "bf16"],
        help="inference dtype (auto: fp32 on CPU, bf16 on CUDA where supported, else fp16; "
        "an explicit one is used as given, on the CPU too)",
    )
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    parser.add_argument(
        "--json",
        type=Path,
        default=None,
        help="write raw figures and ratios here (with 'all': a directory, one file per suite)",
    )
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        device = resolve_device(args.device)
    except ValueError as err:
        parser.error(str(err))
    dtype = weights_dtype("auto", device) if args.dtype == "auto" else DTYPES[args.dtype]
    suites = list(SUITES) if args.suite == "all" else [args.suite]
    for name in suites:
        module = importlib.import_module(SUITES[name])
        print(f"\n### {name}{' (quick)' if args.quick else ''} on {device}, {str(dtype).split('.')[-1]}\n")
        start = time.perf_counter()
        result = module.run(device, dtype, args.quick)
        seconds = time.perf_counter() - start
        print(f"({seconds:.0f}s)")
        target = args.json / f"{name}.json" if args.json and args.suite == "all" else args.json
        write_json(
            target,
            name,
            {
                "quick": args.quick,
                "seconds": seconds,
                "machine": machine(device),
                "dtype": str(dtype).split(".")[-1],
                **result,
            },
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
