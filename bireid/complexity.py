"""FLOPs / BOPs / OPs / storage accounting of a built model (the BNN community convention).

Measured on the model actually built: forward hooks on every ``nn.Conv2d`` (``BinaryConv2d`` included) and
``nn.Linear`` record the shapes of one forward pass. Conventions (``../shared/notes/method.md``):

- per layer, MACs = Cin / groups * Cout * k^2 * Hout * Wout (Linear: in * out per output row); counted per
  image; a multiply-accumulate counts as one FLOP (the convention behind the ResNet-18 "1.814e9 FLOPs");
- a layer is *binary* only when it is a ``BinaryConv2d`` with both ``binarize_acts`` and
  ``binarize_weights``; its MACs are BOPs, every other layer's MACs are FLOPs;
- OPs = FLOPs + BOPs / 64; speedup = float FLOPs / OPs, where float FLOPs = total MACs (the same
  architecture with every layer real);
- BatchNorm, PReLU / RPReLU, pooling, additions and the binarization itself are not counted;
- storage = 32 bits per real parameter + 1 bit per binary weight; by default only conv / linear weights and
  biases are counted (BatchNorm, PReLU, RSign thresholds and scale factors excluded; they fold into per-
  channel affine terms at deployment). ``include_bn=True`` adds every other parameter at 32 bits, in both
  the float and the binary figure. The paper's 11.75x storage saving excludes BN;
- a Linear layer the forward pass never runs (a ReIDModel's classifier in eval mode) is still counted, from
  its weight shape with one output row: the paper's accounting includes the classification FC layers.

Reference figures reproduced by the tests (ResNet-18, 224x224, real stem + FC-1000): float 1.814e9 FLOPs;
all other convs binary incl. the 1x1 downsamples: BOPs 1.696e9, FLOPs 1.185e8, OPs 1.450e8, 12.51x; Bi-Real
(real avg-pool + 1x1 downsamples, counted as FLOPs): 1.64e8 OPs, 11.06x; ResNet-34: 1.93e8 OPs, 18.99x.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
import torch.nn as nn

from .nn import is_binary_conv


@dataclass
class LayerCost:
    name: str
    kind: str  # "real" | "binary"
    module: str
    in_shape: tuple[int, ...]
    out_shape: tuple[int, ...]
    kernel: tuple[int, int] | None
    macs: int
    params: int
    bits: int
    note: str = ""


@dataclass
class ComplexityReport:
    """Per-layer rows and totals; see the module docstring for the conventions."""

    input_size: tuple[int, int]
    layers: list[LayerCost] = field(default_factory=list)
    other_params: int = 0  # parameters outside conv / linear layers (BN, PReLU, scales, thresholds)
    include_bn: bool = False

    @property
    def float_flops(self) -> int:
        """MACs of the same architecture with every layer real."""
        return sum(r.macs for r in self.layers)

    @property
    def bops(self) -> int:
        return sum(r.macs for r in self.layers if r.kind == "binary")

    @property
    def flops(self) -> int:
        return sum(r.macs for r in self.layers if r.kind == "real")

    @property
    def ops(self) -> float:
        return self.flops + self.bops / 64

    @property
    def speedup(self) -> float:
        return self.float_flops / self.ops if self.ops else math.inf

    @property
    def params(self) -> int:
        return sum(r.params for r in self.layers) + (self.other_params if self.include_bn else 0)

    @property
    def binary_params(self) -> int:
        return sum(r.params for r in self.layers if r.kind == "binary")

    @property
    def float_bits(self) -> int:
        return 32 * self.params

    @property
    def binary_bits(self) -> int:
        return sum(r.bits for r in self.layers) + (32 * self.other_params if self.include_bn else 0)

    @property
    def storage_saving(self) -> float:
        return self.float_bits / self.binary_bits if self.binary_bits else math.inf

    def totals(self) -> dict[str, Any]:
        return {"float_flops": self.float_flops, "flops": self.flops, "bops": self.bops, "ops": self.ops,
                "speedup": self.speedup, "params": self.params, "binary_params": self.binary_params,
                "float_bits": self.float_bits, "binary_bits": self.binary_bits, "storage_bits": self.binary_bits,
                "float_mbit": self.float_bits / 1e6, "binary_mbit": self.binary_bits / 1e6,
                "storage_saving": self.storage_saving, "include_bn": self.include_bn,
                "other_params": self.other_params, "binary_layers": sum(r.kind == "binary" for r in self.layers),
                "real_layers": sum(r.kind == "real" for r in self.layers)}

    def to_dict(self) -> dict[str, Any]:
        return {"input_size": list(self.input_size), "layers": [asdict(r) for r in self.layers],
                "totals": self.totals(),
                "conventions": "MACs = Cin*Cout*k^2*Hout*Wout per image; binary = BinaryConv2d with binary acts "
                               "and weights (BOPs), other layers FLOPs; OPs = FLOPs + BOPs/64; storage 32 bits "
                               "per real / 1 bit per binary parameter; BN, PReLU, scales and thresholds "
                               + ("included at 32 bits" if self.include_bn else "excluded")}

    def format_table(self) -> str:
        head = f"{'layer':<34} {'kind':<6} {'in':>16} {'out':>16} {'k':>5} {'MACs':>12} {'params':>10} {'bits':>11}"
        lines = [head, "-" * len(head)]
        for r in self.layers:
            k = f"{r.kernel[0]}x{r.kernel[1]}" if r.kernel else "fc"
            lines.append(f"{r.name[-34:]:<34} {r.kind:<6} {'x'.join(map(str, r.in_shape)):>16} "
                         f"{'x'.join(map(str, r.out_shape)):>16} {k:>5} {r.macs:>12,} {r.params:>10,} "
                         f"{r.bits:>11,}" + (f"  ({r.note})" if r.note else ""))
        t = self.totals()
        lines += ["-" * len(head),
                  f"input {self.input_size[0]}x{self.input_size[1]}; {t['binary_layers']} binary and "
                  f"{t['real_layers']} real layers",
                  f"float model     FLOPs {t['float_flops']:.4g}",
                  f"binary model    FLOPs {t['flops']:.4g}   BOPs {t['bops']:.4g}   OPs = FLOPs + BOPs/64 = "
                  f"{t['ops']:.4g}",
                  f"speedup         {t['speedup']:.2f}x",
                  f"storage         float {t['float_mbit']:.2f} Mbit, binary {t['binary_mbit']:.2f} Mbit -> "
                  f"{t['storage_saving']:.2f}x  (BN/PReLU/scales "
                  f"{'included' if self.include_bn else 'excluded'}; {t['other_params']:,} such parameters)"]
        return "\n".join(lines)


def count_complexity(model: nn.Module, input_size: tuple[int, int] = (256, 128), batch: int = 1,
                     include_bn: bool = False, in_channels: int = 3) -> ComplexityReport:
    """Run one forward pass of a ``(batch, in_channels, H, W)`` zero tensor through ``model`` (in eval mode,
    restored afterwards) and account every conv / linear layer; figures are per image."""
    h, w = (int(v) for v in input_size)
    if h <= 0 or w <= 0 or batch <= 0:
        raise ValueError(f"input size and batch must be positive, got {h}x{w}, batch {batch}")
    rep = ComplexityReport(input_size=(h, w), include_bn=include_bn)
    names = {m: n for n, m in model.named_modules()}
    seen: set[nn.Module] = set()
    counted_params: set[int] = set()

    def hook(m: nn.Module, inp: tuple, out: torch.Tensor) -> None:
        x = inp[0]
        n = out.shape[0]
        first = m not in seen
        seen.add(m)
        params = 0
        if first:  # a module run twice is computed twice but stored once
            for p in m.parameters(recurse=False):
                params += p.numel()
                counted_params.add(id(p))
        binary = is_binary_conv(m, fully=True)
        if isinstance(m, nn.Conv2d):
            cout, hout, wout = out.shape[1], out.shape[2], out.shape[3]
            kh, kw = m.kernel_size
            macs = m.in_channels // m.groups * cout * kh * kw * hout * wout
            kernel: tuple[int, int] | None = (kh, kw)
        else:
            rows = out.numel() // (n * m.out_features)
            macs = m.in_features * m.out_features * rows
            kernel = None
        wbits = m.weight.numel() if first else 0
        bits = (wbits * (1 if binary else 32) + 32 * (params - wbits)) if first else 0
        rep.layers.append(LayerCost(names.get(m, type(m).__name__), "binary" if binary else "real",
                                    type(m).__name__, tuple(x.shape[1:]), tuple(out.shape[1:]), kernel,
                                    int(macs), params, bits, "" if first else "shared weights"))

    handles = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    was_training = model.training
    try:
        p0 = next(model.parameters(), None)
        device = p0.device if p0 is not None else torch.device("cpu")
        dtype = p0.dtype if p0 is not None and p0.is_floating_point() else torch.float32
        model.eval()
        with torch.no_grad():
            model(torch.zeros(batch, in_channels, h, w, device=device, dtype=dtype))
    finally:
        for hd in handles:
            hd.remove()
        model.train(was_training)
    for m in model.modules():  # linear layers the eval forward skips (a ReIDModel's classifier)
        if isinstance(m, nn.Linear) and m not in seen:
            params = sum(p.numel() for p in m.parameters(recurse=False))
            counted_params.update(id(p) for p in m.parameters(recurse=False))
            rep.layers.append(LayerCost(names[m], "real", "Linear", (m.in_features,), (m.out_features,), None,
                                        m.in_features * m.out_features, params, 32 * params,
                                        "not run in eval mode; counted once"))
    rep.other_params = sum(p.numel() for p in model.parameters() if id(p) not in counted_params)
    return rep


class ClassificationModel(nn.Module):
    """Backbone -> global average pooling -> real FC (ImageNet-style), for accounting only."""

    def __init__(self, backbone: nn.Module, num_classes: int = 1000) -> None:
        super().__init__()
        self.backbone = backbone
        self.fc = nn.Linear(backbone.out_channels, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        f = self.backbone(x)[-1].mean(dim=(2, 3))
        return self.fc(f)


def build_for_accounting(arch: str = "resnet18", method: str = "bireid", head: str = "fc1000",
                         num_classes: int = 1000, last_stride: int = 2, downsample: str | None = None,
                         width: int = 64, **kw: Any) -> nn.Module:
    """The model whose costs the papers report.

    ``head='fc1000'``: backbone + global pooling + one real FC (with bias) to ``num_classes`` (ImageNet
    style; use last_stride=2); ``'fc2'``: the re-ID model with the paper's two-layer real head
    (C -> 512 -> num_classes, BN between, excluded from storage by default); ``'bnneck'``: the default re-ID
    model (pool, BN, classifier). ``downsample=None`` keeps the method's default.
    """
    from .methods import get_method
    from .modeling.reid_model import ReIDModel

    if head not in ("fc1000", "fc2", "bnneck"):
        raise ValueError(f"unknown head {head!r}: use fc1000, fc2 or bnneck")
    if num_classes <= 0:
        raise ValueError(f"num_classes must be positive, got {num_classes}")
    opts = dict(kw)
    if downsample is not None:
        opts["downsample"] = downsample
    backbone = get_method(method).build_backbone(arch, last_stride=last_stride, width=width, **opts)
    if head == "fc1000":
        return ClassificationModel(backbone, num_classes)
    return ReIDModel(backbone, num_classes=num_classes, head=head)
