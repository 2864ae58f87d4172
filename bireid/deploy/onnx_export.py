"""ONNX export of the eval-mode model (float simulation of the binary layers: sign and +-alpha weights)."""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import torch
import torch.nn as nn


def export_onnx(model: nn.Module, path: str | os.PathLike, input_size: tuple[int, int] = (256, 128),
                opset: int = 17) -> Path:
    """Write ``model`` (eval mode, features output) to ONNX with a dynamic batch dimension.

    Binary layers export as their float simulation (sign -> +-1 activations, alpha * sign(W) weights)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    was_training = model.training
    model.eval()
    x = torch.zeros(1, 3, *input_size)
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(model, (x,), str(tmp), input_names=["images"], output_names=["features"],
                              dynamic_axes={"images": {0: "batch"}, "features": {0: "batch"}},
                              opset_version=opset, dynamo=False)
        _inline_identity_initializers(tmp)
        os.replace(tmp, path)
    finally:
        model.train(was_training)
        if tmp.exists():
            tmp.unlink()
    return path


def _inline_identity_initializers(path: Path) -> None:
    """Replace ``Identity(initializer)`` nodes (the exporter's de-duplicated weights) by initializers, so that
    tools expecting constant weights on Conv/Gemm inputs (e.g. ONNX Runtime's quantizers) accept the file."""
    try:
        import onnx
        from onnx import numpy_helper
    except ImportError:  # onnx is optional; the file is valid either way
        return
    m = onnx.load(str(path))
    inits = {i.name: i for i in m.graph.initializer}
    keep = []
    for n in m.graph.node:
        if n.op_type == "Identity" and n.input[0] in inits and n.output[0] not in {o.name for o in m.graph.output}:
            t = numpy_helper.to_array(inits[n.input[0]])
            m.graph.initializer.append(numpy_helper.from_array(t, n.output[0]))
        else:
            keep.append(n)
    del m.graph.node[:]
    m.graph.node.extend(keep)
    onnx.save(m, str(path))
