"""Benchmark: the bit-packed .bnn engine vs PyTorch float32 and ONNX Runtime (float32 / int8) on re-ID ResNet-18.

Usage: .venv/bin/python benchmarks/bench_runtime.py [--threads 2] [--batches 1 32] [--reps 5] [--width 64]

Prints images/s (medians), speed ratios, per-binary-conv-layer times (engine vs torch float conv of the same
shape), model file sizes and a profile of where the engine's time goes. Models are randomly initialised:
speed does not depend on the weights.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

_CLOCK = time.perf_counter


def _median_time(fn, reps: int, warmup: int = 1) -> float:
    for _ in range(warmup):
        fn()
    ts = []
    for _ in range(reps):
        t0 = _CLOCK()
        fn()
        ts.append(_CLOCK() - t0)
    return statistics.median(ts)


class _Calib:
    """Random calibration batches for ONNX Runtime static quantization (speed does not depend on them)."""

    def __init__(self, size, n=4):
        import numpy as np

        self.batches = iter([{"images": np.random.default_rng(i).standard_normal((1, 3, *size)).astype(np.float32)}
                             for i in range(n)])

    def get_next(self):
        return next(self.batches, None)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--batches", type=int, nargs="+", default=[1, 32])
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--width", type=int, default=64)
    ap.add_argument("--height", type=int, default=256)
    ap.add_argument("--img-width", type=int, default=128)
    ap.add_argument("--skip-ort", action="store_true")
    ap.add_argument("--timer", choices=("wall", "cpu"), default="wall",
                    help="wall clock, or process CPU time (use with --threads 1 on a shared, busy machine)")
    args = ap.parse_args()
    global _CLOCK
    _CLOCK = time.process_time if args.timer == "cpu" else time.perf_counter
    os.environ.setdefault("OMP_NUM_THREADS", str(args.threads))

    import numpy as np
    import torch
    import torch.nn.functional as F

    from bireid.deploy.export import export_bnn
    from bireid.deploy.onnx_export import export_onnx
    from bireid.modeling.backbones.binary_resnet import binary_resnet18
    from bireid.modeling.backbones.resnet import resnet18
    from bireid.modeling.reid_model import ReIDModel
    from bireid.runtime import BNNModel, _engine

    torch.set_num_threads(args.threads)
    _engine.set_num_threads(args.threads)
    size = (args.height, args.img_width)
    work = Path(tempfile.mkdtemp(prefix="bireid_bench_"))
    torch.manual_seed(0)
    binm = ReIDModel(binary_resnet18(width=args.width, pad_value=1.0), num_classes=751).eval()
    realm = ReIDModel(resnet18(width=args.width), num_classes=751).eval()
    export_bnn(binm, work / "bin.bnn", input_size=size)
    rt = BNNModel.load(work / "bin.bnn")
    print(f"ISA {_engine.get_isa()}, threads {args.threads}, input {size[0]}x{size[1]}, ResNet-18 width {args.width}, "
          f"timer {args.timer}")

    sess = {}
    if not args.skip_ort:
        import onnxruntime as ort
        from onnxruntime.quantization import QuantFormat, QuantType, quantize_dynamic, quantize_static

        export_onnx(realm, work / "real.onnx", size)
        quantize_dynamic(str(work / "real.onnx"), str(work / "real_int8.onnx"), weight_type=QuantType.QInt8)
        quantize_static(str(work / "real.onnx"), str(work / "real_qdq.onnx"), _Calib(size),
                        quant_format=QuantFormat.QDQ, activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8)
        so = ort.SessionOptions()
        so.intra_op_num_threads = args.threads
        so.inter_op_num_threads = 1
        for name in ("real", "real_int8", "real_qdq"):
            sess[name] = ort.InferenceSession(str(work / f"{name}.onnx"), so, providers=["CPUExecutionProvider"])

    rows = []
    for bs in args.batches:
        x = np.random.default_rng(0).standard_normal((bs, 3, *size)).astype(np.float32)
        tx = torch.from_numpy(x)
        reps = args.reps if bs <= 8 else max(2, args.reps // 2)
        res = {}
        res["bnn engine (binary R18)"] = _median_time(lambda x=x: rt.forward(x), reps)
        with torch.no_grad():
            res["torch fp32 (real R18)"] = _median_time(lambda tx=tx: realm(tx), reps)
            res["torch fp32 (binary R18, float sim)"] = _median_time(lambda tx=tx: binm(tx), reps)
        for name, s in sess.items():
            label = {"real": "ORT fp32 (real R18)", "real_int8": "ORT int8 dynamic (real R18)",
                     "real_qdq": "ORT int8 static QDQ (real R18)"}[name]
            res[label] = _median_time(lambda s=s, x=x: s.run(None, {"images": x}), reps)
        for k, t in res.items():
            rows.append((bs, k, bs / t, t))
    print("\n| batch | system | images/s | ms/batch | engine speedup |")
    print("|---|---|---|---|---|")
    for bs in args.batches:
        eng = next(r for r in rows if r[0] == bs and r[1].startswith("bnn"))
        for r in rows:
            if r[0] == bs:
                print(f"| {bs} | {r[1]} | {r[2]:.1f} | {r[3] * 1e3:.1f} | {eng[2] / r[2]:.2f}x |")

    # Per binary conv layer: engine (pack + XNOR/popcount + fused epilogue) vs torch float conv, same shape. Layers
    # the model runs inside a fused op are timed alone (exactly the model's conv op), and each fused op as a whole.
    bs = max(args.batches)
    print(f"\nPer binary conv layer, batch {bs} (engine includes packing and the fused BN/residual/PReLU; 'one call' "
          f"runs all {bs} images in one kernel call, 'model chunks' in sub-batches of {rt.chunk} images as the "
          "model's serial path does, which keeps activations in cache; '+ds' = the block's 1x1 downsample conv "
          "computed inside the same op, the torch column then times both convs; the 'wavefront' row = all binary "
          "convs as the model executes them, one row-wavefront op, against the sum of the torch convs):")
    print("| layer | Cin->Cout k s | out HxW | engine ms (one call) | engine ms (model chunks) | torch fp32 conv ms | "
          "speedup (one call) | speedup (model chunks) |")
    print("|---|---|---|---|---|---|---|---|")

    def torch_conv_ms(cin, cout, h, w, k, stride, pad):
        tx = torch.randn(bs, cin, h, w)
        tw = torch.randn(cout, cin, k, k)
        with torch.no_grad():
            return _median_time(lambda: F.conv2d(tx, tw, stride=stride, padding=pad), 3)

    def engine_ms(op, xin, env, a):
        chunks = [(xin[s:s + rt.chunk], {k: v[s:s + rt.chunk] for k, v in env.items()})
                  for s in range(0, bs, rt.chunk)]

        def one():
            rt._run(op, xin, env, a)  # exactly the model's op: packing, XNOR-popcount, fused epilogue

        def chunked():
            for xc, envc in chunks:
                rt._run(op, xc, envc, a)
        return _median_time(one, 3), _median_time(chunked, 3)

    seen = set()
    convs = []  # (op, ins, out, a) of every binary conv, fused ones expanded
    for op, ins, out, a in rt._steps:
        if op == "bchain":
            convs.extend(a["members"])
        elif op == "conv" and a["binary"]:
            convs.append((op, ins, out, a))
    for _, ins, out, a in convs:
        h, w, cin = rt.shapes[ins[0]]
        wts = a["weights"]
        key = (h, w, cin, wts.cout, a["k"], a["stride"], a["residual"] is not None, "ds" in a)
        if key in seen:
            continue
        seen.add(key)
        xin = np.random.default_rng(1).standard_normal((bs, h, w, cin)).astype(np.float32)
        res = rt.shapes[out]
        # The residual is the conv's own input where the model does that (Bi-Real blocks), else a separate tensor.
        env = {}
        if a["residual"]:
            env[a["residual"]] = xin if a["residual"] == ins[0] else np.zeros((bs, *res), np.float32)
        te, tc = engine_ms("conv", xin, env, a)
        tt = torch_conv_ms(cin, wts.cout, h, w, a["k"], a["stride"], a["pad"])
        label = f"{cin}->{wts.cout} {a['k']}x{a['k']} s{a['stride']}"
        if "ds" in a:
            tt += torch_conv_ms(cin, wts.cout, h, w, 1, a["stride"], 0)
            label += " +ds 1x1"
        print(f"| {out} | {label} | {res[0]}x{res[1]} | {te * 1e3:.2f} | "
              f"{tc * 1e3:.2f} | {tt * 1e3:.2f} | {tt / te:.1f}x | {tt / tc:.1f}x |")
    for op, ins, out, a in rt._steps:
        if op != "bchain":
            continue
        h, w, cin = rt.shapes[ins[0]]
        xin = np.random.default_rng(1).standard_normal((bs, h, w, cin)).astype(np.float32)
        te, tc = engine_ms("bchain", xin, {}, a)
        tt, nds = 0.0, 0
        for _, i2, _, a2 in a["members"]:
            hh, ww, cc = rt.shapes[i2[0]]
            tt += torch_conv_ms(cc, a2["weights"].cout, hh, ww, a2["k"], a2["stride"], a2["pad"])
            if "ds" in a2:
                tt += torch_conv_ms(cc, a2["weights"].cout, hh, ww, 1, a2["stride"], 0)
                nds += 1
        ho, wo, co = rt.shapes[out]
        print(f"| {a['members'][0][2]} .. {out} (wavefront) | {len(a['members'])} convs + {nds} ds, {cin}->{co} | "
              f"{ho}x{wo} | {te * 1e3:.2f} | {tc * 1e3:.2f} | {tt * 1e3:.2f} | {tt / te:.1f}x | {tt / tc:.1f}x |")

    # Per layer as the model runs it: each layer's own CPU time inside the wavefront op (the op's per-layer
    # profile: packing, XNOR-popcount and epilogue of that layer's rows), model chunks, against torch's conv(s).
    for op, ins, _, a in rt._steps:
        if op != "bchain":
            continue
        h, w, cin = rt.shapes[ins[0]]
        xin = np.random.default_rng(1).standard_normal((bs, h, w, cin)).astype(np.float32)
        # The op's profile gives each layer's share of the time (timestamps around its rows, so a preemption lands
        # on whichever layer was running: the per-layer median of 5 runs); the op's own median time (model chunks,
        # the benchmark's clock) is split by those shares.
        runs = []
        for _ in range(5):
            prof = np.zeros(len(a["layers"]))
            for s in range(0, bs, rt.chunk):
                _engine.binary_chain(xin[s:s + rt.chunk], a["layers"], profile=prof)
            runs.append(prof / prof.sum())
        shares = np.median(np.stack(runs), axis=0)
        t_op = engine_ms("bchain", xin, {}, a)[1]
        per = t_op * shares / shares.sum()
        print(f"\nPer binary conv layer inside the wavefront op, batch {bs}, model chunks: the op's time "
              f"({t_op * 1e3:.1f} ms) split by each layer's share of it (packing, XNOR-popcount, epilogue of its "
              "rows, from the op's own per-layer profile):")
        print("| layer | Cin->Cout k s | out HxW | engine ms | torch fp32 conv ms | speedup |")
        print("|---|---|---|---|---|---|")
        for (_, i2, o2, a2), te in zip(a["members"], per):
            hh, ww, cc = rt.shapes[i2[0]]
            tt = torch_conv_ms(cc, a2["weights"].cout, hh, ww, a2["k"], a2["stride"], a2["pad"])
            label = f"{cc}->{a2['weights'].cout} {a2['k']}x{a2['k']} s{a2['stride']}"
            if "ds" in a2:
                tt += torch_conv_ms(cc, a2["weights"].cout, hh, ww, 1, a2["stride"], 0)
                label += " +ds 1x1"
            ho, wo, _ = rt.shapes[o2]
            print(f"| {o2} | {label} | {ho}x{wo} | {te * 1e3:.2f} | {tt * 1e3:.2f} | {tt / te:.1f}x |")

    fp32_bytes = sum(p.numel() * 4 for p in realm.parameters()) - realm.classifier.weight.numel() * 4
    print(f"\nModel size: .bnn {os.path.getsize(work / 'bin.bnn') / 1e6:.2f} MB vs float32 weights of the real "
          f"model (no classifier) {fp32_bytes / 1e6:.2f} MB ({fp32_bytes / os.path.getsize(work / 'bin.bnn'):.1f}x)")

    prof: dict[str, float] = {}
    x = np.random.default_rng(0).standard_normal((bs, 3, *size)).astype(np.float32)
    rt.forward(x)
    n = 3
    for _ in range(n):
        rt.forward(x, profile=prof, profile_clock=_CLOCK)
    total = sum(prof.values())
    clock_name = "process CPU time" if args.timer == "cpu" else "wall clock"
    print(f"\nEngine profile, batch {bs}, serial path, {clock_name} (share of {total / n * 1e3:.1f} ms per batch; the "
          "real stem conv with its max pool is one fused op, counted as real_conv):")
    for k, v in sorted(prof.items(), key=lambda kv: -kv[1]):
        print(f"  {k:12s} {v / n * 1e3:8.2f} ms  {100 * v / total:5.1f}%")


if __name__ == "__main__":
    main()
