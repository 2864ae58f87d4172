"""Checkpoints: one safetensors file per checkpoint, written atomically, loaded without unpickling.

A checkpoint holds every tensor (model weights, optimizer and auxiliary states, RNG states) in the
safetensors body and everything else (config, epoch, the structure of nested states) as JSON in the
safetensors metadata under the key ``bireid``. Nested states such as ``optimizer.state_dict()`` are
flattened: tensors become entries ``<prefix>/<path>`` and the JSON skeleton keeps ``{"__tensor__": key}``
in their place, so loading rebuilds them exactly with no pickle involved.

This module is file code only (it knows no model, method or config); building the model a checkpoint
describes is ``bireid.factory.load_model``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, safe_open, save_file

from .fileio import atomic_write

__all__ = ["CheckpointError", "atomic_write", "check_state_compatible", "read_checkpoint", "save_checkpoint"]

FORMAT = "bireid-checkpoint"
FORMAT_VERSION = 1


class CheckpointError(ValueError):
    """A checkpoint is missing, unreadable, from a newer format, or does not fit the model."""


# ------------------------------------------------------------------------------------------- flattening
def flatten_state(obj: Any, prefix: str, tensors: dict[str, torch.Tensor]) -> Any:
    """Replace tensors (and numpy arrays) in a nested structure by references into ``tensors``."""
    if isinstance(obj, torch.Tensor):
        key = prefix
        tensors[key] = obj.detach().cpu().contiguous()
        return {"__tensor__": key}
    if isinstance(obj, np.ndarray):
        key = prefix
        tensors[key] = torch.from_numpy(np.ascontiguousarray(obj))
        return {"__ndarray__": key}
    if isinstance(obj, dict):
        out = {}
        for k, v in obj.items():
            # JSON keys are strings; remember int keys (optimizer state is keyed by param index).
            sk = f"__int__{k}" if isinstance(k, int) else str(k)
            out[sk] = flatten_state(v, f"{prefix}/{sk}", tensors)
        return out
    if isinstance(obj, (list, tuple)):
        items = [flatten_state(v, f"{prefix}/{i}", tensors) for i, v in enumerate(obj)]
        return {"__tuple__": items} if isinstance(obj, tuple) else items
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (np.floating,)):
        return float(obj)
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    raise TypeError(f"cannot store a {type(obj).__name__} at '{prefix}' in a checkpoint")


def unflatten_state(obj: Any, tensors: dict[str, torch.Tensor]) -> Any:
    if isinstance(obj, dict):
        if "__tensor__" in obj:
            return tensors[obj["__tensor__"]]
        if "__ndarray__" in obj:
            return tensors[obj["__ndarray__"]].numpy()
        if "__tuple__" in obj:
            return tuple(unflatten_state(v, tensors) for v in obj["__tuple__"])
        return {(int(k[7:]) if k.startswith("__int__") else k): unflatten_state(v, tensors) for k, v in obj.items()}
    if isinstance(obj, list):
        return [unflatten_state(v, tensors) for v in obj]
    return obj


def save_checkpoint(path: str | Path, model_state: dict[str, torch.Tensor], meta: dict[str, Any],
                    states: dict[str, Any] | None = None) -> None:
    """Save model weights (``model/<key>``), nested ``states`` (optimizer, scheduler, ...) and JSON ``meta``."""
    tensors: dict[str, torch.Tensor] = {}
    for k, v in model_state.items():
        tensors[f"model/{k}"] = v.detach().cpu().contiguous()
    skeleton = flatten_state(states or {}, "state", tensors)
    # safetensors refuses tensors that share memory; clone any that alias another.
    seen: dict[tuple[int, int], str] = {}
    for k, t in list(tensors.items()):
        if t.numel() == 0:
            continue
        ident = (t.untyped_storage().data_ptr(), t.storage_offset())
        if ident in seen:
            tensors[k] = t.clone()
        seen[ident] = k
    header = {"format": FORMAT, "version": FORMAT_VERSION, "meta": meta, "states": skeleton}
    atomic_write(path, lambda tmp: save_file(tensors, tmp, metadata={"bireid": json.dumps(header)}))


def read_checkpoint(path: str | Path) -> tuple[dict[str, torch.Tensor], dict[str, Any], dict[str, Any]]:
    """Return (model_state, meta, states) of a checkpoint, validating its header."""
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"checkpoint not found: {path}")
    if path.is_dir():
        raise CheckpointError(f"{path} is a folder, not a checkpoint file (expected e.g. {path}/model.safetensors)")
    try:
        with safe_open(str(path), framework="pt") as f:
            raw = (f.metadata() or {}).get("bireid")
        tensors = load_file(str(path))
    except (SafetensorError, OSError, ValueError, RuntimeError) as e:
        raise CheckpointError(f"{path} is not a readable safetensors checkpoint (truncated, corrupt or another kind "
                              f"of file): {e}") from None
    if raw is None:
        raise CheckpointError(f"{path} is a safetensors file but not a bireid checkpoint (no 'bireid' metadata)")
    try:
        header = json.loads(raw)
    except json.JSONDecodeError as e:
        raise CheckpointError(f"{path}: corrupted checkpoint metadata: {e}") from None
    if header.get("format") != FORMAT:
        raise CheckpointError(f"{path}: unknown checkpoint format {header.get('format')!r}")
    if int(header.get("version", 0)) > FORMAT_VERSION:
        raise CheckpointError(f"{path}: checkpoint format version {header['version']} is newer than this bireid "
                              f"supports ({FORMAT_VERSION}); upgrade bireid")
    model_state = {k[6:]: v for k, v in tensors.items() if k.startswith("model/")}
    try:
        states = unflatten_state(header.get("states", {}), tensors)
    except KeyError as e:
        raise CheckpointError(f"{path}: corrupted checkpoint, missing tensor {e}") from None
    return model_state, header.get("meta", {}), states


# ------------------------------------------------------------------------------------------- model fit
def check_state_compatible(model: torch.nn.Module, state: dict[str, torch.Tensor], source: str = "checkpoint") -> None:
    """Raise CheckpointError naming missing, unexpected and shape-mismatched keys."""
    own = model.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    shapes = [f"{k}: checkpoint {tuple(state[k].shape)} vs model {tuple(own[k].shape)}"
              for k in own if k in state and tuple(state[k].shape) != tuple(own[k].shape)]
    if missing or unexpected or shapes:
        parts = []
        for label, items in (("missing in checkpoint", missing), ("unexpected in checkpoint", unexpected),
                             ("shape mismatch", shapes)):
            if items:
                more = f" (+{len(items) - 5} more)" if len(items) > 5 else ""
                parts.append(f"{label}: {', '.join(items[:5])}{more}")
        raise CheckpointError(f"{source} does not fit this model (another architecture or method?); "
                              + "; ".join(parts))
