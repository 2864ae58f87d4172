"""Export a trained PyTorch model (re-ID, image or point-cloud classifier) to the torch-free ``.bnn`` format (and to
ONNX).

The model is traced with ``torch.fx`` (eval mode) with the building blocks (convs, BatchNorm, (R)PReLU,
pooling, linear) as leaves, so any backbone composed of them exports, whatever its block structure. Each
graph node maps to a runtime primitive; BatchNorm and the binary weight scale alpha fold into a per-channel
``scale``/``bias`` and the following residual add / activation fuse into the conv's epilogue.
"""

from __future__ import annotations

import operator
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.fx as fx
import torch.nn as nn
import torch.nn.functional as F

from ..images import IMAGENET_MEAN, IMAGENET_STD
from ..nn import BinaryConv2d, GlobalMaxPool, PooledConv2d, RPReLU, is_binary_conv
from ..runtime.format import write_bnn
from ..runtime.ops import pack_weight_signs

_LEAVES = (nn.Conv2d, nn.BatchNorm2d, nn.BatchNorm1d, nn.PReLU, RPReLU, nn.ReLU, nn.Hardtanh, nn.MaxPool2d,
           nn.AvgPool2d, nn.AdaptiveAvgPool2d, nn.Linear, nn.Identity, nn.Flatten, nn.Dropout, GlobalMaxPool)


# The pooling functions a traced forward may call (``F.avg_pool2d`` is the ATen op itself; ``torch`` has no
# ``avg_pool2d``, so naming one there would fail on every unmatched function node).
_AVG_POOLS = (F.avg_pool2d,)
_MAX_POOLS = (F.max_pool2d, torch.max_pool2d)


class ExportError(ValueError):
    """The model contains something the ``.bnn`` runtime cannot execute (the message names it)."""


class _Tracer(fx.Tracer):
    def is_leaf_module(self, m: nn.Module, qualname: str) -> bool:
        return isinstance(m, _LEAVES) or super().is_leaf_module(m, qualname)


def _np(t: torch.Tensor | None) -> np.ndarray | None:
    return None if t is None else t.detach().to("cpu", torch.float64).numpy()


@dataclass
class _Prim:
    kind: str                   # conv | affine | add | act | clamp | maxpool | avgpool | gap | gmp | linear | upsample
    ins: list[str]
    out: str
    attrs: dict[str, Any] = field(default_factory=dict)


def _square(v: Any, what: str, name: str) -> int:
    if isinstance(v, int):
        return v
    if len(v) != 2 or v[0] != v[1]:
        raise ExportError(f"{name}: non-square {what} {tuple(v)} is not supported by the .bnn runtime")
    return int(v[0])


class _Builder:
    def __init__(self, model: nn.Module):
        self.mods = dict(model.named_modules())
        self.prims: list[_Prim] = []
        self.chan: dict[str, int] = {}
        self.rank: dict[str, int] = {}  # 4 (NCHW) or 2 (N, C)

    def emit(self, kind: str, ins: list[str], out: str, chan: int, rank: int, **attrs: Any) -> None:
        self.prims.append(_Prim(kind, ins, out, attrs))
        self.chan[out], self.rank[out] = chan, rank

    # ---- modules
    def module(self, name: str, m: nn.Module, x: str, out: str) -> str | None:
        c, r = self.chan[x], self.rank[x]
        if isinstance(m, (nn.Identity, nn.Dropout)):
            return x
        if isinstance(m, nn.Flatten):
            if r == 2:
                return x
            raise ExportError(f"{name}: flatten of a 4-D map is only supported after global pooling")
        if isinstance(m, nn.Conv2d):
            self.conv(name, m, x, out)
        elif isinstance(m, (nn.BatchNorm2d, nn.BatchNorm1d)):
            if m.running_mean is None or m.running_var is None:
                raise ExportError(f"{name}: BatchNorm without running statistics cannot be folded")
            inv = 1.0 / np.sqrt(_np(m.running_var) + m.eps)
            g = _np(m.weight) if m.affine else np.ones_like(inv)
            b = _np(m.bias) if m.affine else np.zeros_like(inv)
            s = g * inv
            self.emit("affine", [x], out, c, r, scale=s, bias=b - _np(m.running_mean) * s)
        elif isinstance(m, nn.PReLU):
            slope = np.broadcast_to(_np(m.weight), (c,)).copy()
            self.emit("act", [x], out, c, r, slope=slope, shift_in=None, shift_out=None)
        elif isinstance(m, RPReLU):
            self.emit("act", [x], out, c, r, slope=_np(m.slope), shift_in=-_np(m.shift_in), shift_out=_np(m.shift_out))
        elif isinstance(m, nn.ReLU):
            self.emit("act", [x], out, c, r, slope=np.zeros(c), shift_in=None, shift_out=None)
        elif isinstance(m, nn.Hardtanh):
            self.emit("clamp", [x], out, c, r, lo=float(m.min_val), hi=float(m.max_val))
        elif isinstance(m, (nn.MaxPool2d, nn.AvgPool2d)):
            self.pool(name, "maxpool" if isinstance(m, nn.MaxPool2d) else "avgpool", x, out, m.kernel_size,
                      m.stride, m.padding, m.ceil_mode, getattr(m, "count_include_pad", True),
                      getattr(m, "dilation", 1), getattr(m, "divisor_override", None))
        elif isinstance(m, GlobalMaxPool):
            if r != 4:
                raise ExportError(f"{name}: global max pooling needs a 4-D input")
            # max(x) - shift: the runtime's global max pool, then a per-channel bias (max commutes with the shift).
            self.emit("gmp", [x], f"{out}__max" if m.shift else out, c, 4)
            if m.shift:
                self.emit("affine", [f"{out}__max"], out, c, 4, scale=None, bias=np.full(c, -m.shift))
        elif isinstance(m, nn.AdaptiveAvgPool2d):
            osz = m.output_size
            if osz not in (1, (1, 1)):
                raise ExportError(f"{name}: AdaptiveAvgPool2d({osz}) is not supported (only output size 1)")
            self.emit("gap", [x], out, c, 2)  # followed by flatten in practice; (N, C, 1, 1) treated as (N, C)
        elif isinstance(m, nn.Linear):
            if r != 2:
                raise ExportError(f"{name}: Linear on a 4-D tensor is not supported")
            self.emit("linear", [x], out, m.out_features, 2, weight=_np(m.weight), bias=_np(m.bias))
        else:
            raise ExportError(f"{name}: module {type(m).__name__} is not supported by the .bnn runtime")
        return out

    def pool(self, name, kind, x, out, k, s, p, ceil, cip, dil=1, div=None) -> None:
        k = _square(k, "kernel", name)
        s = k if s is None or s == [] or s == () else _square(s, "stride", name)
        p = _square(p, "padding", name)
        if _square(dil, "dilation", name) != 1 or div is not None:
            raise ExportError(f"{name}: pooling with dilation or divisor_override is not supported")
        if self.rank[x] != 4:
            raise ExportError(f"{name}: pooling needs a 4-D input")
        self.emit(kind, [x], out, self.chan[x], 4, k=k, stride=s, pad=p, ceil_mode=bool(ceil),
                  count_include_pad=bool(cip))

    def conv(self, name: str, m: nn.Conv2d, x: str, out: str) -> None:
        if m.groups != 1 or _square(m.dilation, "dilation", name) != 1:
            raise ExportError(f"{name}: grouped or dilated convolutions are not supported")
        if m.padding_mode != "zeros" or isinstance(m.padding, str):
            raise ExportError(f"{name}: padding mode {m.padding_mode!r}/{m.padding!r} is not supported")
        k = _square(m.kernel_size, "kernel", name)
        s = _square(m.stride, "stride", name)
        p = _square(m.padding, "padding", name)
        src = x
        if type(m) is PooledConv2d:  # avg-pool, then a 1x1 conv
            if m.pool_stride > 1:
                src = f"{out}__pool"
                self.emit("avgpool", [x], src, self.chan[x], 4, k=m.pool_stride, stride=m.pool_stride, pad=0,
                          ceil_mode=True, count_include_pad=False)
        elif type(m) not in (nn.Conv2d, BinaryConv2d):
            raise ExportError(f"{name}: conv subclass {type(m).__name__} is not supported")
        attrs: dict[str, Any] = dict(cin=m.in_channels, cout=m.out_channels, k=k, stride=s, pad=p)
        scale = None
        if is_binary_conv(m, fully=True):
            w = m.binary_weight().detach().cpu()
            if not torch.all(w.abs() == 1):
                raise ExportError(f"{name}: binary_weight() is not +-1")
            a = m.weight_scale()
            scale = None if a is None else _np(a).reshape(-1)
            thr = getattr(m.act_binarizer, "threshold", None)
            attrs.update(binary=True, pad_value=int(m.pad_value), thresh=_np(thr),
                         wbits=pack_weight_signs((w < 0).permute(0, 2, 3, 1).numpy()))
        elif is_binary_conv(m) and m.binarize_acts:
            raise ExportError(f"{name}: binary activations with real weights (binarize_weights=False) cannot be "
                              "exported; finish the binary-weight training step first")
        else:
            w = m.effective_weight() if is_binary_conv(m) else m.weight
            attrs.update(binary=False, weight=_np(w).transpose(0, 2, 3, 1))
        self.emit("conv", [src], out, m.out_channels, 4, **attrs)
        bias = _np(m.bias) if m.bias is not None else None
        if scale is not None or bias is not None:
            self.prims[-1].out = f"{out}__raw"
            self.chan[f"{out}__raw"] = m.out_channels
            self.emit("affine", [f"{out}__raw"], out, m.out_channels, 4, scale=scale, bias=bias)

    # ---- functions / methods
    def function(self, node: fx.Node, args: list, out: str) -> str | None:
        t = node.target
        if t in (operator.add, torch.add) or (node.op == "call_method" and t == "add"):
            a, b = args[0], args[1]
            if not (isinstance(a, str) and isinstance(b, str)) or node.kwargs.get("alpha", 1) != 1:
                raise ExportError(f"{node.name}: only tensor + tensor additions are supported")
            if self.chan[a] != self.chan[b] or self.rank[a] != self.rank[b]:
                raise ExportError(f"{node.name}: addition of tensors with different shapes")
            self.emit("add", [a, b], out, self.chan[a], self.rank[a])
            return out
        if t in (F.relu, torch.relu) or (node.op == "call_method" and t == "relu"):
            c = self.chan[args[0]]
            self.emit("act", [args[0]], out, c, self.rank[args[0]], slope=np.zeros(c), shift_in=None, shift_out=None)
            return out
        if t in (torch.flatten,) or (node.op == "call_method" and t in ("flatten", "view", "reshape", "squeeze")):
            if self.rank[args[0]] == 2:
                return args[0]
            raise ExportError(f"{node.name}: {t} of a 4-D map is only supported after global pooling")
        if t in (F.adaptive_avg_pool2d, torch.nn.functional.adaptive_avg_pool2d):
            osz = args[1] if len(args) > 1 else node.kwargs.get("output_size")
            if osz not in (1, (1, 1), [1, 1]):
                raise ExportError(f"{node.name}: adaptive_avg_pool2d to {osz} is not supported (only 1)")
            self.emit("gap", [args[0]], out, self.chan[args[0]], 2)
            return out
        if t is F.interpolate:
            return self.upsample(node, args, out)
        if t in _AVG_POOLS or t in _MAX_POOLS:
            kw = dict(node.kwargs)
            is_max = t in _MAX_POOLS
            names = ["input", "kernel_size", "stride", "padding", "ceil_mode", "count_include_pad"]
            if is_max:
                names = ["input", "kernel_size", "stride", "padding", "dilation", "ceil_mode"]
            for i, v in enumerate(args[1:], 1):
                kw[names[i]] = v
            self.pool(node.name, "maxpool" if is_max else "avgpool", args[0], out, kw["kernel_size"],
                      kw.get("stride"), kw.get("padding", 0), kw.get("ceil_mode", False),
                      kw.get("count_include_pad", True), kw.get("dilation", 1), kw.get("divisor_override"))
            return out
        raise ExportError(f"{node.name}: operation {getattr(t, '__name__', t)!s} is not supported by the .bnn runtime")

    def upsample(self, node: fx.Node, args: list, out: str) -> str:
        x = args[0]
        if self.rank[x] != 4:
            raise ExportError(f"{node.name}: upsampling needs a 4-D input")
        self.emit("upsample", [x], out, self.chan[x], 4, scale=_upsample_factor(node, args))
        return out


def _upsample_factor(node: fx.Node, args: list) -> int:
    kw = dict(zip(("input", "size", "scale_factor", "mode", "align_corners"), args))
    kw.update(node.kwargs)
    f = kw.get("scale_factor")
    f = f[0] if isinstance(f, (tuple, list)) and len(set(f)) == 1 else f
    if kw.get("mode", "nearest") != "nearest" or kw.get("size") is not None or float(f or 0) != int(f or 0) or not f:
        raise ExportError(f"{node.name}: only nearest upsampling by an integer scale_factor is supported")
    return int(f)


def _fuse(prims: list[_Prim], output: str) -> list[tuple[_Prim, dict[str, Any] | None]]:
    """Group each conv (or standalone pointwise op) with the chain of per-channel ops that follow it."""
    users: dict[str, list[int]] = {}
    producer: dict[str, int] = {"input": -1}
    for i, p in enumerate(prims):
        producer[p.out] = i
        for n in p.ins:
            users.setdefault(n, []).append(i)
    pointwise = ("affine", "add", "act", "clamp")
    done: set[int] = set()
    groups: list[tuple[_Prim, dict[str, Any] | None]] = []
    for i, p in enumerate(prims):
        if i in done:
            continue
        done.add(i)
        g: dict[str, Any] = {"scale": None, "bias": None, "residual": None, "act": None, "act_first": False,
                             "clamp": None}
        if p.kind == "conv":
            main = _Prim("conv", p.ins, p.out, p.attrs)
        elif p.kind in pointwise:
            main = _Prim("pointwise", [p.ins[0]], p.out, {})
            if not _absorb(g, p, p.ins[0], producer, i):
                raise AssertionError(p.kind)  # an empty epilogue takes any single op
        else:
            groups.append((p, None))
            continue
        cur = p.out
        while cur != output and len(users.get(cur, [])) == 1:
            j = users[cur][0]
            q = prims[j]
            if j in done or q.kind not in pointwise:
                break
            g2 = dict(g)
            if not _absorb(g2, q, cur, producer, i):
                break
            g = g2
            done.add(j)
            cur = q.out
        main.out = cur
        groups.append((main, g))
    return groups


def _absorb(g: dict[str, Any], q: _Prim, cur: str, producer: dict[str, int], start: int) -> bool:
    """Try to append pointwise op ``q`` (whose main input is ``cur``) to epilogue ``g``; mutates g if ok."""
    if g["clamp"] is not None:
        return False
    if q.kind == "affine":
        if g["residual"] is not None or g["act"] is not None:
            return False
        s1, b1 = g["scale"], g["bias"]
        s2, b2 = q.attrs["scale"], q.attrs["bias"]
        if s2 is not None:
            g["scale"] = s2 if s1 is None else s1 * s2
            b1 = None if b1 is None else b1 * s2
        if b2 is not None:
            g["bias"] = b2 if b1 is None else b1 + b2
        else:
            g["bias"] = b1
        return True
    if q.kind == "add":
        if g["residual"] is not None:
            return False
        other = q.ins[1] if q.ins[0] == cur else q.ins[0]
        if other == cur or producer.get(other, 1 << 60) >= start:
            return False  # x + x, or an operand computed after the group starts
        g["residual"] = other
        g["act_first"] = g["act"] is not None
        return True
    if q.kind == "act":
        if g["act"] is not None:
            return False
        g["act"] = q.attrs
        return True
    if q.kind == "clamp":
        g["clamp"] = (q.attrs["lo"], q.attrs["hi"])
        return True
    return False


def _f32(a: np.ndarray | None) -> np.ndarray | None:
    return None if a is None else np.ascontiguousarray(a, dtype=np.float32)


def build_graph(model: nn.Module) -> tuple[list[dict[str, Any]], dict[str, np.ndarray], str, int]:
    """Trace ``model`` (eval mode) and return (JSON nodes, blobs, output tensor name, feature dim)."""
    was_training = model.training
    model.eval()
    try:
        try:
            graph = _Tracer().trace(model)
        except Exception as e:  # fx raises many types; the message names the construct
            raise ExportError(f"cannot trace {type(model).__name__} with torch.fx: {e}") from e
        b = _Builder(model)
        env: dict[str, Any] = {}
        output = None
        in_ch = None
        for m in model.modules():
            if isinstance(m, nn.Conv2d):
                in_ch = m.in_channels
                break
        with torch.no_grad():
            for node in graph.nodes:
                if node.op == "placeholder":
                    if "input" in env.values():
                        raise ExportError("models with more than one input are not supported")
                    env[node.name] = "input"
                    b.chan["input"], b.rank["input"] = in_ch or 3, 4
                    continue
                if node.op == "output":
                    output = fx.node.map_arg(node.args[0], lambda n: env[n.name])
                    break
                if node.op == "get_attr":
                    raise ExportError(f"{node.target}: direct use of a parameter/buffer in forward is not supported")
                args = [fx.node.map_arg(a, lambda n: env[n.name]) for a in node.args]
                if node.op == "call_module":
                    env[node.name] = b.module(node.target, b.mods[node.target], args[0], node.name)
                elif node.op == "call_function" and node.target is operator.getitem:
                    env[node.name] = args[0][args[1]]  # indexing a Python list/tuple of tensors
                else:
                    env[node.name] = b.function(node, args, node.name)
        if not isinstance(output, str):
            raise ExportError("the model's eval-mode output must be a single feature tensor")
        if b.rank[output] not in (2, 4):
            raise ExportError("the model's eval-mode output must be a 2-D (N, D) feature tensor or a 4-D map")
        # Dead code (e.g. unused stage maps) is dropped: keep only what the output depends on.
        needed = {output}
        for p in reversed(b.prims):
            if p.out in needed:
                needed.update(p.ins)
        b.prims = [p for p in b.prims if p.out in needed]
        fused = _fuse(b.prims, output)
        nodes: list[dict[str, Any]] = []
        blobs: dict[str, np.ndarray] = {}

        def blob(key: str, arr: np.ndarray | None, dtype=np.float32) -> str | None:
            if arr is None:
                return None
            blobs[key] = np.ascontiguousarray(arr, dtype=dtype)
            return key

        for p, g in fused:
            n: dict[str, Any] = {"op": p.kind, "inputs": p.ins, "output": p.out}
            a = p.attrs
            if p.kind == "conv":
                n.update(binary=a["binary"], cin=a["cin"], cout=a["cout"], k=a["k"], stride=a["stride"], pad=a["pad"])
                if a["binary"]:
                    n["pad_value"] = a["pad_value"]
                    n["weight"] = blob(f"{p.out}.weight", a["wbits"], np.uint64)
                    n["thresh"] = blob(f"{p.out}.thresh", a["thresh"])
                else:
                    n["weight"] = blob(f"{p.out}.weight", a["weight"])
            elif p.kind == "pointwise":
                n["channels"] = b.chan[p.ins[0]]
            elif p.kind in ("maxpool", "avgpool"):
                n.update(k=a["k"], stride=a["stride"], pad=a["pad"], ceil_mode=a["ceil_mode"],
                         count_include_pad=a["count_include_pad"])
            elif p.kind == "upsample":
                n["scale"] = a["scale"]
            elif p.kind == "linear":
                n["out_features"] = int(a["weight"].shape[0])
                n["weight"] = blob(f"{p.out}.weight", a["weight"])
                n["bias"] = blob(f"{p.out}.bias", a["bias"])
            if g is not None:
                n["scale"] = blob(f"{p.out}.scale", g["scale"])
                n["bias"] = blob(f"{p.out}.bias", g["bias"])
                n["residual"] = g["residual"]
                act = g["act"]
                n["act"] = None if act is None else {
                    "slope": blob(f"{p.out}.slope", act["slope"]),
                    "shift_in": blob(f"{p.out}.shift_in", act["shift_in"]),
                    "shift_out": blob(f"{p.out}.shift_out", act["shift_out"])}
                n["act_first"] = g["act_first"]
                n["clamp"] = list(g["clamp"]) if g["clamp"] is not None else None
            nodes.append(n)
        return nodes, blobs, output, b.chan[output]
    finally:
        model.train(was_training)


def export_bnn(model: nn.Module, path: str | os.PathLike, input_size: tuple[int, int] = (256, 128),
               mean: tuple[float, ...] = IMAGENET_MEAN, std: tuple[float, ...] = IMAGENET_STD,
               name: str | None = None, extra: dict[str, Any] | None = None) -> Path:
    """Write ``model`` (a ReIDModel or any traceable feature extractor) to ``path`` as a ``.bnn`` file.

    ``input_size`` (H, W), ``mean`` and ``std`` are stored so that the runtime can preprocess images.
    Raises :class:`ExportError` naming the first unsupported operation."""
    nodes, blobs, output, dim = build_graph(model)
    h, w = (int(v) for v in input_size)
    model_meta: dict[str, Any] = {"name": name or type(model).__name__, "input_size": [h, w],
                                  "in_channels": len(mean), "mean": [float(v) for v in mean],
                                  "std": [float(v) for v in std], "feat_dim": int(dim),
                                  "binary_convs": sum(1 for n in nodes if n["op"] == "conv" and n["binary"])}
    if extra:
        model_meta["extra"] = extra
    doc = {"format": "bireid.bnn", "model": model_meta, "nodes": nodes, "output": output}
    path = Path(path)
    write_bnn(path, doc, blobs)
    return path
