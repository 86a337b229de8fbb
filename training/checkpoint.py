"""Training checkpoints for exact resume, in safetensors + JSON (nothing is pickled).

``<out>/checkpoint/`` holds ``state.safetensors`` -- trainable parameters, pruning masks, optimizer state
tensors, every rank's RNG state -- and ``state.json`` -- position (epoch, step in epoch, global step), the
grad scaler's scalars, and the settings the run was started with. The directory is replaced atomically.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from safetensors.torch import load_file, save_file
from torch import nn

from training.distributed import DistInfo

CHECKPOINT_DIR = "checkpoint"


@dataclass
class Position:
    epoch: int = 1  # the epoch to run next (1-based)
    step_in_epoch: int = 0  # optimizer steps already done in that epoch
    global_step: int = 0


def trainable_named(model: nn.Module) -> dict[str, nn.Parameter]:
    return {n: p for n, p in model.named_parameters() if p.requires_grad}


def mask_buffers(model: nn.Module) -> dict[str, torch.Tensor]:
    return {n: b for n, b in model.named_buffers() if n.endswith("prune_mask") and b is not None}


def trained_state(model: nn.Module) -> dict[str, torch.Tensor]:
    """Trainable parameters (``param.*``) and pruning masks (``mask.*``) on the CPU: what a run changes."""
    tensors = {f"param.{n}": p.detach().cpu().clone().contiguous() for n, p in trainable_named(model).items()}
    tensors.update({f"mask.{n}": m.cpu().clone().contiguous() for n, m in mask_buffers(model).items()})
    return tensors


def restore_trained(model: nn.Module, tensors: dict[str, torch.Tensor], where: Path) -> None:
    """Put ``trained_state`` tensors back into ``model`` (parameters copied in place, masks re-attached)."""
    named = trainable_named(model)
    missing = [n for n in named if f"param.{n}" not in tensors]
    if missing:
        raise RuntimeError(
            f"{where} lacks {len(missing)} parameters (e.g. {missing[0]}): it was written by a different configuration"
        )
    device_of = {n: p.device for n, p in named.items()}
    with torch.no_grad():
        for name, param in named.items():
            param.copy_(tensors[f"param.{name}"])
        for key, value in tensors.items():
            if key.startswith("mask."):
                module_path, _, buffer = key[len("mask.") :].rpartition(".")
                module = model.get_submodule(module_path)
                setattr(module, buffer, value.to(device_of.get(f"{module_path}.lora_B", value.device)))


def _gather_rng(info: DistInfo) -> list[torch.Tensor]:
    state = torch.get_rng_state()
    if not info.enabled:
        return [state]
    states: list[Any] = [None] * info.world_size
    dist.all_gather_object(states, state)
    return states


def save_checkpoint(
    out_dir: Path,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    position: Position,
    settings: dict[str, Any],
    info: DistInfo,
    scaler: torch.amp.GradScaler | None = None,
) -> None:
    rng_states = _gather_rng(info)  # every rank takes part
    if not info.is_main:
        return
    tensors: dict[str, torch.Tensor] = {}
    named = trainable_named(model)
    for name, param in named.items():
        tensors[f"param.{name}"] = param.detach().cpu().contiguous()
        for key, value in optimizer.state.get(param, {}).items():
            if torch.is_tensor(value):
                tensors[f"optim.{name}.{key}"] = value.detach().cpu().contiguous()
    for name, mask in mask_buffers(model).items():
        tensors[f"mask.{name}"] = mask.cpu().contiguous()
    for rank, state in enumerate(rng_states):
        tensors[f"rng.cpu.{rank}"] = state
    if torch.cuda.is_available():
        tensors["rng.cuda.0"] = torch.cuda.get_rng_state()
    meta = {
        "position": asdict(position),
        "scaler": scaler.state_dict() if scaler is not None and scaler.is_enabled() else None,
        "settings": settings,
        "world_size": info.world_size,
    }
    target = out_dir / CHECKPOINT_DIR
    tmp = out_dir / f".{CHECKPOINT_DIR}.tmp"
    old = out_dir / f".{CHECKPOINT_DIR}.old"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    save_file(tensors, str(tmp / "state.safetensors"))
    (tmp / "state.json").write_text(json.dumps(meta, indent=1, default=str), encoding="utf-8")
    if target.exists():
        shutil.rmtree(old, ignore_errors=True)
        target.rename(old)
    tmp.rename(target)
    shutil.rmtree(old, ignore_errors=True)


def checkpoint_exists(out_dir: Path) -> bool:
    return (out_dir / CHECKPOINT_DIR / "state.json").is_file()


def load_checkpoint(
    out_dir: Path,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    info: DistInfo,
    scaler: torch.amp.GradScaler | None = None,
) -> tuple[Position, dict[str, Any]]:
    """Restore parameters, masks, optimizer state and RNG; returns the position and the saved settings."""
    folder = out_dir / CHECKPOINT_DIR
    meta = json.loads((folder / "state.json").read_text(encoding="utf-8"))
    tensors = load_file(str(folder / "state.safetensors"))
    restore_trained(model, tensors, folder)
    named = trainable_named(model)
    state: dict[int, dict[str, Any]] = {}
    index = {id(p): i for i, p in enumerate(p for g in optimizer.param_groups for p in g["params"])}
    for name, param in named.items():
        entries = {
            k.split(".")[-1]: v
            for k, v in tensors.items()
            if k.startswith(f"optim.{name}.") and k[len(f"optim.{name}.") :].count(".") == 0
        }
        if entries and id(param) in index:
            state[index[id(param)]] = {k: v.to(param.device) if v.dim() > 0 else v for k, v in entries.items()}
    if state:
        optimizer.load_state_dict({"state": state, "param_groups": optimizer.state_dict()["param_groups"]})
    rng = tensors.get(f"rng.cpu.{info.rank}")
    if rng is not None and meta.get("world_size") == info.world_size:
        torch.set_rng_state(rng)
    if "rng.cuda.0" in tensors and torch.cuda.is_available():
        torch.cuda.set_rng_state(tensors["rng.cuda.0"])
    if scaler is not None and meta.get("scaler"):
        scaler.load_state_dict(meta["scaler"])
    return Position(**meta["position"]), meta.get("settings", {})
