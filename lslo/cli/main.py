"""``python -m lslo``: parameter accounting (``params``), a short library demo (``demo``), and publishing
adapters into a shared bundle (``bundle-put``, ``bundle-remove``) the way ``PUT /adapters/{lang}?persist=true``
does, for pipelines that publish without going through a server."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from lslo.adapters.config import LSLoConfig
from lslo.adapters.params import count_parameters
from lslo.errors import ConfigError
from lslo.languages.tables import TIER_NAMES
from lslo.presets import MODEL_PRESETS, model_config


def _params(args: argparse.Namespace) -> int:
    try:
        config = LSLoConfig.from_strings(
            args.languages,
            args.ranks,
            tiers=args.tiers,
            modules=args.modules,
            fc_mode=args.fc_mode,
            weight_learning=args.weight_learning,
        )
        mconfig = model_config(args.model)
    except (ConfigError, FileNotFoundError, ValueError, TypeError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    count = count_parameters(mconfig, config)
    if args.json:
        print(
            json.dumps(
                {
                    "total": count.total,
                    "per_language": count.per_language,
                    "model": args.model,
                    "base_parameters": count.base_total,
                    "fc_mode": config.fc_mode,
                    "modules": config.modules.names(),
                    "ranks": config.ranks,
                    "tiers": {s.code: s.tier for s in config.languages},
                    "adapted_modules_per_language": count.modules_per_language,
                }
            )
        )
        return 0
    d = mconfig
    print(
        f"model {args.model}: d_model {d.d_model}, {d.encoder_layers}+{d.decoder_layers} layers, "
        f"ffn {d.encoder_ffn_dim}, {count.base_total / 1e6:.1f}M parameters"
    )
    print(
        f"LSLo: fc mode {config.fc_mode}, modules {','.join(config.modules.names())} "
        f"({count.modules_per_language} adapted linears per language)\n"
    )
    print(f"{'language':<10}{'tier':<13}{'rank':>5}{'parameters':>14}")
    for spec in config.languages:
        tier = f"{spec.tier} ({TIER_NAMES[spec.tier]})" if spec.tier else "-"
        print(f"{spec.code:<10}{tier:<13}{spec.rank:>5}{count.per_language[spec.code]:>14,}")
    print(
        f"{'total':<28}{count.total:>14,}  ({count.total / 1e6:.2f}M, "
        f"{100 * count.fraction_of_base():.2f}% of the base model)"
    )
    return 0


def _demo(args: argparse.Namespace) -> int:
    from lslo.cli.demo import run_demo

    run_demo(seed=args.seed)
    return 0


def _bundle_put(args: argparse.Namespace) -> int:
    from lslo.errors import AdapterFileError
    from lslo.io.adapter_file import parse_language_file
    from lslo.io.bundle_store import BundleWriteError, persist_language

    try:
        data = args.file.read_bytes()
        adapter = parse_language_file(data, args.file)
        code = args.language or adapter.language
        if adapter.language != code:
            raise AdapterFileError(args.file, f"holds the adapter of {adapter.language!r}, not {code!r}")
        manifest = persist_language(args.bundle, code, data, adapter, args.tier)
    except (AdapterFileError, BundleWriteError, OSError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(
        f"{code}: {manifest.languages[code]['file']} (sha256 {adapter.sha256[:12]}…), bundle revision "
        f"{manifest.revision}"
    )
    return 0


def _bundle_remove(args: argparse.Namespace) -> int:
    from lslo.io.bundle_store import BundleWriteError, unpersist_language

    try:
        removed = unpersist_language(args.bundle, args.language)
    except (BundleWriteError, TimeoutError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    if not removed:
        print(f"error: the bundle has no {args.language!r}", file=sys.stderr)
        return 1
    print(f"{args.language}: removed")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lslo", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("params", help="count trainable LSLo parameters without allocating weights")
    p.add_argument(
        "--model",
        default="m2m124-615m",
        help=f"preset ({', '.join(MODEL_PRESETS)}) or a path to a config.json / model directory",
    )
    p.add_argument("--languages", default="lang12", help="lang12, lang30 or a comma list of codes")
    p.add_argument(
        "--ranks",
        default="2;2;8",
        help="tier pattern (2;2;8 = H;M;V, 2;2;8;8 = H;M;L;V), one rank for all, or code=rank,...",
    )
    p.add_argument("--tiers", default=None, help="tier assignment like 'H:en,fr;M:zh;V:oc' (default: lang30 table)")
    p.add_argument(
        "--modules",
        default="all",
        help="all, fc, attn or a comma list (q,k,v,c-q,c-k,c-v,fc1,fc2; enc./dec. prefixes select one stack)",
    )
    p.add_argument(
        "--fc-mode",
        default="full",
        choices=["full", "square"],
        help="full: whole fc1/fc2 matrices (default); square: released code's d x d slice "
        "(matches the paper's #Params)",
    )
    p.add_argument("--weight-learning", action="store_true", help="count both source- and target-indexed adapters")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=_params)

    d = sub.add_parser("demo", help="a one-minute tour of the library on a tiny random model")
    d.add_argument("--seed", type=int, default=0)
    d.set_defaults(func=_demo)

    b = sub.add_parser(
        "bundle-put",
        help="write one adapter file into a bundle (atomically, under the bundle's "
        "lock); replicas following the bundle serve it at their next poll",
    )
    b.add_argument("bundle", type=Path, help="bundle directory (an empty one becomes a bundle)")
    b.add_argument("file", type=Path, help="the language's .safetensors adapter file")
    b.add_argument("--language", default=None, help="its code (default: the one the file records)")
    b.add_argument("--tier", default=None, help="resource tier to record (default: the bundle's, if any)")
    b.set_defaults(func=_bundle_put)

    r = sub.add_parser("bundle-remove", help="take one language out of a bundle")
    r.add_argument("bundle", type=Path)
    r.add_argument("language")
    r.set_defaults(func=_bundle_remove)

    args = parser.parse_args(argv)
    return int(args.func(args))
