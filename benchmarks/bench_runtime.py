"""Benchmark: the bit-packed .bnn engine vs PyTorch float32 and ONNX Runtime (float32 / int8) on re-ID ResNet-18.

Usage: .venv/bin/python benchmarks/bench_runtime.py [--threads 1 2] [--batches 1 32] [--reps 5] [--width 64]
       [--isa avx512 avx2 portable] [--layer-isa avx2] [--timer cpu] [--torch-max-isa avx2]
On an AVX-512 CPU, every system at AVX2 (this core seen as an AVX2-only CPU): benchmarks/avx2_only.sh .venv/bin/python
benchmarks/bench_runtime.py ...

Prints the CPU and the engine's instruction sets, images/s (medians) of every system at every thread count and
batch, the engine's speed ratios (per instruction set, for the paper's layout of the 1-bit ResNet-18, binary 1x1
downsample, and bireid's default layout, real downsample; both zero-padded), with several thread counts each system's
speed-up over its first thread count, per-binary-conv-layer times (engine vs torch float conv of the same shape),
model file sizes and a profile of where the engine's time goes. Models are randomly initialised: speed does not
depend on the weights.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

_CLOCK = time.perf_counter
LAYOUTS = (("paper", "paper layout"), ("default", "bireid default layout"))


def _engine_label(layout: str, isa: str) -> str:
    return f"bnn engine {isa} (binary R18, {dict(LAYOUTS)[layout]})"


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            names = [ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name")]
        return f"{names[0]}, {len(names)} logical CPUs" if names else platform.processor()
    except OSError:
        return platform.processor() or platform.machine()


def _cpuid_view() -> str:
    """The x86 features this process's CPUID reports (numpy's run-time detection), and whether avx2_only.sh masks
    them."""
    import numpy as np

    feats = np._core._multiarray_umath.__cpu_features__
    names = ("AVX2", "FMA3", "AVX512F", "AVX512_ICL", "AVX512VNNI")
    if not any(k in feats for k in names):
        return "CPUID: not x86"
    masked = "cpuid_mask.so" in os.environ.get("LD_PRELOAD", "")
    return ("CPUID as this process sees it: " + ", ".join(f"{k} {'yes' if feats.get(k) else 'no'}" for k in names)
            + ("; AVX-512, AVX-VNNI, AMX, GFNI masked by benchmarks/avx2_only.sh (the code runs natively)"
               if masked else ""))


def _median_time(fn, reps: int, warmup: int = 1) -> float:
    for _ in range(warmup):
        fn()
    ts = []
    for _ in range(reps):
        t0 = _CLOCK()
        fn()
        ts.append(_CLOCK() - t0)
    return statistics.median(ts)


def _median_times_interleaved(fns: dict, reps: int) -> dict:
    """Median time of each callable, run round-robin (one timed call of each per round, after one warm-up round) so
    that a slow spell of this shared machine hits every system alike and the ratios stay fair. Each system's turn
    starts after a pause that lets the previous system's worker threads stop spinning (ONNX Runtime and OpenMP pools
    spin-wait after a run; with 2 cores a spinning thread would take a core from the next system), then one untimed
    call, then the timed one: steady state, as in a stream of inferences (a lone call after the pause also times
    the caches refilling and the clock ramping up after idle, up to 20% of a 3 ms call)."""
    for fn in fns.values():
        fn()
    ts: dict = {k: [] for k in fns}
    for _ in range(reps):
        for k, fn in fns.items():
            time.sleep(0.2)
            fn()
            t0 = _CLOCK()
            fn()
            ts[k].append(_CLOCK() - t0)
    return {k: statistics.median(v) for k, v in ts.items()}


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
    ap.add_argument("--threads", type=int, nargs="+", default=[os.cpu_count() or 1],
                    help="thread counts; with several, each system's speed-up over the first is printed (use --timer "
                         "wall: CPU time adds up the threads)")
    ap.add_argument("--batches", type=int, nargs="+", default=[1, 32])
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--width", type=int, default=64)
    ap.add_argument("--height", type=int, default=256)
    ap.add_argument("--img-width", type=int, default=128)
    ap.add_argument("--isa", nargs="+", default=None,
                    help="the engine's instruction sets to time, side by side (default: the best this CPU runs)")
    ap.add_argument("--layer-isa", nargs="+", default=None,
                    help="instruction sets for the per-layer tables and the profile (default: the first --isa)")
    ap.add_argument("--torch-max-isa", choices=("avx2",), default=None,
                    help="limit PyTorch (ATen and oneDNN) to AVX2 on an AVX-512 CPU (ONNX Runtime has no such switch; "
                         "benchmarks/avx2_only.sh limits every system)")
    ap.add_argument("--skip-ort", action="store_true")
    ap.add_argument("--skip-layers", action="store_true", help="end-to-end table, sizes and profile only")
    ap.add_argument("--timer", choices=("wall", "cpu"), default="wall",
                    help="wall clock, or process CPU time (use with --threads 1 on a shared, busy machine)")
    args = ap.parse_args()
    if min(args.threads) < 1 or min(args.batches) < 1 or args.reps < 1:
        sys.exit("bench_runtime: --threads, --batches and --reps must be >= 1")
    global _CLOCK
    _CLOCK = time.process_time if args.timer == "cpu" else time.perf_counter
    os.environ.setdefault("OMP_NUM_THREADS", str(max(args.threads)))
    if args.torch_max_isa:  # read when torch loads
        os.environ["ATEN_CPU_CAPABILITY"] = args.torch_max_isa
        os.environ["ONEDNN_MAX_CPU_ISA"] = args.torch_max_isa.upper()

    from bireid.runtime import _engine

    status = dict(_engine.isa_status())
    args.isa = args.isa or [_engine.best_isa()]
    args.layer_isa = args.layer_isa or args.isa[:1]
    for isa in dict.fromkeys(args.isa + args.layer_isa):
        if isa not in status:
            sys.exit(f"bench_runtime: unknown instruction set {isa!r} (known: {', '.join(status)})")
        if status[isa]:
            sys.exit(f"bench_runtime: instruction set {isa!r} cannot run here: {status[isa]}")

    import numpy as np
    import torch
    import torch.nn.functional as F

    from bireid.deploy.export import export_bnn
    from bireid.deploy.onnx_export import export_onnx
    from bireid.modeling.backbones.binary_resnet import binary_resnet18
    from bireid.modeling.backbones.resnet import resnet18
    from bireid.modeling.reid_model import ReIDModel
    from bireid.runtime import BNNModel

    size = (args.height, args.img_width)
    work = Path(tempfile.mkdtemp(prefix="bireid_bench_"))
    torch.manual_seed(0)
    # Two layouts of the 1-bit ResNet-18, both zero-padded like training: the paper's (1x1 downsample binary too;
    # its 12.51x accounting) and bireid's default (real avg-pool + 1x1 downsample, which learns from random init).
    # The per-layer tables use the paper's layout; the binary 3x3 convs are the same in both.
    binm = ReIDModel(binary_resnet18(width=args.width, downsample="binary"), num_classes=751).eval()
    defm = ReIDModel(binary_resnet18(width=args.width, downsample="real"), num_classes=751).eval()
    realm = ReIDModel(resnet18(width=args.width), num_classes=751).eval()
    export_bnn(binm, work / "bin.bnn", input_size=size)
    export_bnn(defm, work / "default.bnn", input_size=size)
    rts = {"paper": BNNModel.load(work / "bin.bnn"), "default": BNNModel.load(work / "default.bnn")}
    print(f"CPU: {_cpu_name()}; engine instruction sets: "
          + ", ".join(f"{k} ({'runs here' if not v else v})" for k, v in status.items()))
    print(f"timed: engine {', '.join(args.isa)}; threads {' '.join(map(str, args.threads))}; "
          f"input {size[0]}x{size[1]}; ResNet-18 width {args.width}; timer {args.timer}; torch {torch.__version__} "
          f"(CPU capability {torch.backends.cpu.get_cpu_capability()}"
          f"{', oneDNN limited to ' + args.torch_max_isa.upper() if args.torch_max_isa else ''})")
    print(_cpuid_view())
    print(f"load average at start (other processes on this machine): {' '.join(f'{v:.2f}' for v in os.getloadavg())}")

    sess = {}
    if not args.skip_ort:
        import onnxruntime as ort
        from onnxruntime.quantization import QuantFormat, QuantType, quantize_dynamic, quantize_static

        print(f"onnxruntime {ort.__version__} (its kernels pick their instruction set from CPUID; no switch but "
              "avx2_only.sh)")
        export_onnx(realm, work / "real.onnx", size)
        quantize_dynamic(str(work / "real.onnx"), str(work / "real_int8.onnx"), weight_type=QuantType.QInt8)
        quantize_static(str(work / "real.onnx"), str(work / "real_qdq.onnx"), _Calib(size),
                        quant_format=QuantFormat.QDQ, activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8)
        for t in args.threads:  # a session's thread count is fixed when it is made
            so = ort.SessionOptions()
            so.intra_op_num_threads = t
            so.inter_op_num_threads = 1
            for name in ("real", "real_int8", "real_qdq"):
                sess[(name, t)] = ort.InferenceSession(str(work / f"{name}.onnx"), so,
                                                       providers=["CPUExecutionProvider"])

    engines = [_engine_label(lay, isa) for isa in args.isa for lay, _ in LAYOUTS]
    rows = {}  # (threads, batch, system) -> (images/s, seconds per batch)
    for t in args.threads:
        for bs in args.batches:
            x = np.random.default_rng(0).standard_normal((bs, 3, *size)).astype(np.float32)
            tx = torch.from_numpy(x)

            def engine_fn(rt, isa, x=x, t=t):
                _engine.set_isa(isa)
                _engine.set_num_threads(t)
                rt.forward(x)

            def torch_fn(model, tx=tx, t=t):
                torch.set_num_threads(t)
                with torch.no_grad():
                    model(tx)
            fns = {_engine_label(lay, isa): (lambda rt=rts[lay], isa=isa: engine_fn(rt, isa))
                   for isa in args.isa for lay, _ in LAYOUTS}
            fns["torch fp32 (real R18)"] = lambda: torch_fn(realm)
            fns["torch fp32 (binary R18, float sim)"] = lambda: torch_fn(binm)
            for (name, st), s in sess.items():
                if st != t:
                    continue
                label = {"real": "ORT fp32 (real R18)", "real_int8": "ORT int8 dynamic (real R18)",
                         "real_qdq": "ORT int8 static QDQ (real R18)"}[name]
                fns[label] = lambda s=s, x=x: s.run(None, {"images": x})
            for k, sec in _median_times_interleaved(fns, args.reps).items():
                rows[(t, bs, k)] = (bs / sec, sec)
    _print_end_to_end(rows, engines, args)
    print(f"load average after the end-to-end runs: {' '.join(f'{v:.2f}' for v in os.getloadavg())}")

    _sizes(work, realm)
    _engine.set_num_threads(args.threads[0])
    torch.set_num_threads(args.threads[0])
    for isa in args.layer_isa:
        _engine.set_isa(isa)
        if not args.skip_layers:
            _per_layer_tables(args, rts["paper"], torch, F, np)
        _profiles(args, rts["paper"], rts["default"], np)


def _print_end_to_end(rows: dict, engines: list[str], args) -> None:
    systems = list(dict.fromkeys(k[2] for k in rows))
    print("\n| threads | batch | system | images/s | ms/batch |")
    print("|---|---|---|---|---|")
    for (t, bs, name), (ips, sec) in rows.items():
        print(f"| {t} | {bs} | {name} | {ips:.1f} | {sec * 1e3:.1f} |")
    print("\nEngine speed-up over each system (same threads and batch; columns: engine instruction set and layout):")
    print("| threads | batch | system | " + " | ".join(e.replace("bnn engine ", "").replace(" (binary R18, ", " ")
                                                      .rstrip(")") for e in engines) + " |")
    print("|---|---|---|" + "---|" * len(engines))
    for t in args.threads:
        for bs in args.batches:
            for name in systems:
                cells = [f"{rows[(t, bs, e)][0] / rows[(t, bs, name)][0]:.2f}x" for e in engines]
                print(f"| {t} | {bs} | {name} | " + " | ".join(cells) + " |")
    if len(args.threads) > 1:
        t0 = args.threads[0]
        print(f"\nSpeed-up of each system over its own {t0}-thread figure (images/s ratio, same run):")
        print("| batch | system | " + " | ".join(f"{t} threads" for t in args.threads[1:]) + " |")
        print("|---|---|" + "---|" * (len(args.threads) - 1))
        for bs in args.batches:
            for name in systems:
                cells = [f"{rows[(t, bs, name)][0] / rows[(t0, bs, name)][0]:.2f}x" for t in args.threads[1:]]
                print(f"| {bs} | {name} | " + " | ".join(cells) + " |")


def _per_layer_tables(args, rt, torch, F, np) -> None:
    from bireid.runtime import _engine

    # Per binary conv layer: engine (pack + XNOR/popcount + fused epilogue) vs torch float conv, same shape. Layers
    # the model runs inside a fused op are timed alone (exactly the model's conv op), and each fused op as a whole.
    bs = max(args.batches)
    print(f"\nPer binary conv layer, engine {_engine.get_isa()}, {_engine.get_num_threads()} thread(s), batch {bs} "
          f"(engine includes packing and the fused BN/residual/PReLU; 'one call' "
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
            return _median_time(lambda: F.conv2d(tx, tw, stride=stride, padding=pad), 5)

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
    for op, _, out, a in rt._steps:
        if op != "bchain":
            continue
        # The binary convs alone (a stem the op makes its input with is left out here).
        a = {k: v for k, v in a.items() if k not in ("stem", "stem_step")}
        h, w, cin = rt.shapes[a["members"][0][1][0]]
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

    # Per layer as the model runs it: the model's own steps, chunk by chunk on a real-size image batch (the
    # wavefront op makes the stem's pooled rows itself as its first layer needs them); the op's time (the
    # benchmark's clock around each call, median over 5 passes) is split by its per-layer profile (timestamps around
    # each layer's rows: packing, XNOR-popcount and epilogue, and the stem's rows; the per-layer median of the 5
    # passes' shares, so a preemption lands on whichever layer was running).
    images = np.random.default_rng(0).standard_normal((bs, 3, args.height, args.img_width)).astype(np.float32)
    chains = [i for i, st in enumerate(rt._steps) if st[0] == "bchain"]
    times = {i: [] for i in chains}
    shares_runs = {i: [] for i in chains}
    for _ in range(6):  # the first pass warms up
        tot = {i: 0.0 for i in chains}
        prof = {i: np.zeros(len(rt._steps[i][3]["layers"]) + (rt._steps[i][3].get("stem") is not None))
                for i in chains}
        for s0 in range(0, bs, rt.chunk):
            xb = images[s0:s0 + rt.chunk]
            env = {"input": np.ascontiguousarray(xb if rt._nchw_input else xb.transpose(0, 2, 3, 1))}
            for i, (op, ins, out, a) in enumerate(rt._steps):
                if op == "bchain":
                    t0 = _CLOCK()
                    env[out] = _engine.binary_chain(env[ins[0]], a["layers"], profile=prof[i], stem=a.get("stem"))
                    tot[i] += _CLOCK() - t0
                else:
                    env[out] = rt._run(op, env[ins[0]], env, a)
        for i in chains:
            times[i].append(tot[i])
            shares_runs[i].append(prof[i] / prof[i].sum())
    for i in chains:
        op, ins, _, a = rt._steps[i]
        shares = np.median(np.stack(shares_runs[i][1:]), axis=0)
        t_op = statistics.median(times[i][1:])
        per = t_op * shares / shares.sum()
        print(f"\nPer binary conv layer inside the wavefront op, engine {_engine.get_isa()}, batch {bs}, model chunks: "
              f"the op's time "
              f"({t_op * 1e3:.1f} ms) split by each layer's share of it (packing, XNOR-popcount, epilogue of its "
              "rows, from the op's own per-layer profile; the last row, the stem's rows made inside the op):")
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
        if a.get("stem") is not None:  # the stem's part of the op (a real conv: no speedup goal)
            _, _, sout, sa = a["stem_step"]
            k, ho, wo = sa["k"], *rt.shapes[sout][:2]
            print(f"| {sout} (the stem, inside the op) | {rt.in_channels}->{sa['weights'].cout} {k}x{k} s2 "
                  f"+ maxpool | {ho}x{wo} | {per[-1] * 1e3:.2f} | | |")


def _sizes(work, realm) -> None:
    fp32_bytes = sum(p.numel() * 4 for p in realm.parameters()) - realm.classifier.weight.numel() * 4
    for name, f in (("paper layout", "bin.bnn"), ("default layout", "default.bnn")):
        sz = os.path.getsize(work / f)
        print(f"\nModel size ({name}): .bnn {sz / 1e6:.2f} MB vs float32 weights of the real model (no classifier) "
              f"{fp32_bytes / 1e6:.2f} MB ({fp32_bytes / sz:.1f}x)")


def _profiles(args, rt, rt_def, np) -> None:
    from bireid.runtime import _engine

    bs = max(args.batches)
    size = (args.height, args.img_width)
    clock_name = "process CPU time" if args.timer == "cpu" else "wall clock"
    x = np.random.default_rng(0).standard_normal((bs, 3, *size)).astype(np.float32)
    for name, r in (("paper layout", rt), ("default layout", rt_def)):
        prof: dict[str, float] = {}
        r.forward(x)
        n = 3
        for _ in range(n):
            r.forward(x, profile=prof, profile_clock=_CLOCK)
        total = sum(prof.values())
        print(f"\nEngine profile ({name}), engine {_engine.get_isa()}, batch {bs}, serial path, {clock_name} "
              f"(share of {total / n * 1e3:.1f} ms "
              "per batch; real_conv = the stem conv with its fused max pool, plus the 1x1 downsample convs in the "
              "default layout):")
        for k, v in sorted(prof.items(), key=lambda kv: -kv[1]):
            print(f"  {k:12s} {v / n * 1e3:8.2f} ms  {100 * v / total:5.1f}%")


if __name__ == "__main__":
    main()
