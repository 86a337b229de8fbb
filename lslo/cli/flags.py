"""Pydantic settings models as command-line flags, and their validation errors as plain sentences.

Shared by ``python -m training`` (one settings model per command) and ``python -m server`` (``ServerSettings``):
each field is a flag (``prune_start`` <-> ``--prune-start``) whose default stays ``None``, so that only the
flags a user gives override a config file or ``LSLO_`` environment variables.
"""

from __future__ import annotations

import argparse
import types
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Literal, Union, get_args, get_origin

from pydantic import BaseModel, ValidationError
from pydantic_core import PydanticUndefined


def _base_type(annotation: Any) -> Any:
    """``int | None`` -> ``int``; a union of several types -> ``str`` (parsed by pydantic afterwards)."""
    if get_origin(annotation) in (Union, types.UnionType):
        args = [a for a in get_args(annotation) if a is not type(None)]
        return _base_type(args[0]) if len(args) == 1 else str
    return annotation


def _shown_default(field: Any) -> str | None:
    """The default as ``--help`` shows it, or None when there is nothing useful to show."""
    if field.is_required():
        return None
    default = field.get_default(call_default_factory=True)
    if default is None or default is PydanticUndefined or default in ([], {}, ""):
        return None
    if hasattr(default, "get_secret_value"):
        return None
    return str(default)


def add_arguments(parser: argparse.ArgumentParser, model: type[BaseModel], config_file: bool = True) -> None:
    """One flag per field of ``model``; defaults stay None so that only given flags override other sources."""
    if config_file:
        parser.add_argument("--config", type=Path, help="YAML file with any of these options (flags override it)")
    for name, field in model.model_fields.items():
        flag = "--" + (field.alias or name).replace("_", "-")
        kind = _base_type(field.annotation)
        default = _shown_default(field)
        help_text = (field.description or "") + (f" [default: {default}]" if default is not None else "")
        if field.is_required():
            help_text += " [required]"
        help_text = help_text.replace("%", "%%")
        if kind is bool:
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, default=None, help=help_text)
        elif get_origin(kind) is Literal:
            parser.add_argument(flag, choices=[str(c) for c in get_args(kind)], default=None, help=help_text)
        else:
            caster = {int: int, float: float, Path: Path}.get(kind, str)
            parser.add_argument(flag, type=caster, default=None, help=help_text)


def validation_problems(
    errors: ValidationError | Iterable[dict[str, Any]], *, as_flags: bool = False, values: bool = False
) -> list[str]:
    """One sentence per pydantic error.

    ``as_flags``: name fields as command-line flags (``--prune-start``), as a CLI user types them; otherwise
    as the dotted location in a request body (``q.0``). ``values``: append the offending input.
    """
    items = errors.errors() if isinstance(errors, ValidationError) else list(errors)
    out = []
    for e in items:
        where = ".".join(str(p) for p in e["loc"] if p != "body") or ("options" if as_flags else "body")
        name = "--" + where.replace("_", "-") if as_flags else where
        if e["type"] == "missing":
            out.append(f"{name} is required" if as_flags else f"{name}: missing")
        elif e["type"] == "extra_forbidden" and as_flags:
            out.append(f"unknown option {where!r} in the config file")
        else:
            shown = f" (got {e.get('input')!r})" if values else ""
            out.append(f"{name}: {e['msg']}{shown}")
    return out
