"""``BNNModel``: runs an exported ``.bnn`` network with the bit-packed kernels (numpy in, numpy out).

Tensors are float32 NHWC (4-D) or (N, C) (2-D). Node kinds in the JSON ``nodes`` list (fields besides
``op``, ``inputs`` (list of tensor names) and ``output`` (tensor name)):

- ``conv``: ``binary`` (bool), ``cin``, ``cout``, ``k``, ``stride``, ``pad``; binary convs also ``pad_value``
  (0 or 1) and ``thresh`` (blob or null: sign(x - thresh)); ``weight`` (blob); then the epilogue fields.
- ``pointwise``: ``channels`` and the epilogue fields, on a 4-D or 2-D tensor.
- ``maxpool`` / ``avgpool``: ``k``, ``stride``, ``pad``, ``ceil_mode``, ``count_include_pad`` (avg only).
- ``gap``: global average pooling, 4-D -> 2-D.
- ``gmp``: global max pooling over all positions, 4-D -> 4-D with a 1x1 map (a point cloud's aggregation).
- ``linear``: ``weight`` (out, in) blob, ``bias`` (blob or null), 2-D only.
- ``upsample``: ``scale`` (integer): nearest-neighbour upsampling of a 4-D map by ``scale`` in both directions.

The ``output`` is a 2-D (N, D) feature tensor, or a 4-D map (a detector's head), returned as (N, C, H, W).

Epilogue fields (per output channel, applied in this order): ``scale``/``bias`` (blob or null),
``residual`` (tensor name or null; added before the activation, or after it when ``act_first``),
``act`` (null or ``{"slope", "shift_in", "shift_out"}`` blobs: u = v + shift_in; v = u >= 0 ? u : slope*u;
v += shift_out), ``clamp`` (null or [lo, hi]).

At load time the validated graph is fused into fewer, larger ops with the same results bit for bit: a real conv
read only by a max pool runs with the pool (``pool`` argument; the stride-2 stem as a 2-D Winograd conv), a 1x1
binary downsample runs inside the conv that takes it as residual (``ds``), runs of binary convs, each reading
only the previous one's output, run as one row-wavefront op (``bchain``, see ``_engine.binary_chain``), and a
stem conv + pool read only by such an op makes its pooled rows inside it (``stem``) as the first layer needs them.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

from . import _engine
from .errors import FormatError
from .format import read_bnn
from .ops import BConvWeights, real_conv_weights

_MAX_SIDE = 8192
_MAX_ELEMS = 1 << 28  # per image, per tensor


class _Ctx:
    """Validation helpers that turn any inconsistency into a FormatError naming the node."""

    def __init__(self, path: str, blobs: dict[str, np.ndarray]):
        self.path, self.blobs, self.where = path, blobs, ""

    def fail(self, msg: str) -> FormatError:
        return FormatError(f"{self.path}: {self.where}{msg}")

    def int(self, node: dict, key: str, lo: int, hi: int) -> int:
        v = node.get(key)
        if isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= hi:
            raise self.fail(f"field {key!r} must be an integer in [{lo}, {hi}], got {v!r:.60}")
        return v

    def bool(self, node: dict, key: str, default: bool = False) -> bool:
        v = node.get(key, default)
        if not isinstance(v, bool):
            raise self.fail(f"field {key!r} must be true/false")
        return v

    def blob(self, node: dict, key: str, shape: tuple[int, ...], dtype: str = "float32",
             optional: bool = False) -> np.ndarray | None:
        name = node.get(key) if isinstance(node, dict) else None
        if name is None and optional:
            return None
        if not isinstance(name, str) or name not in self.blobs:
            raise self.fail(f"field {key!r} names no blob ({name!r:.60})")
        a = self.blobs[name]
        if a.dtype != np.dtype(dtype) or a.shape != shape:
            raise self.fail(f"blob {name!r} is {a.dtype}{list(a.shape)}, expected {dtype}{list(shape)}")
        return np.array(a, dtype=a.dtype, order="C", copy=True)  # aligned, writable, owned


def _out(size: int, k: int, s: int, p: int, ceil_mode: bool = False) -> int:
    num = size + 2 * p - k
    if num < 0:
        return 0
    o = (-(-num // s) if ceil_mode else num // s) + 1
    if ceil_mode and (o - 1) * s >= size + p:
        o -= 1
    return o


class BNNModel:
    """An exported binary (or real) re-ID network, executable without torch."""

    chunk = 2  # images per sub-batch on the multi-image paths (cache locality)

    def __init__(self, doc: dict[str, Any], blobs: dict[str, np.ndarray], path: str = "<memory>"):
        self.path = path
        try:
            self._build(doc, blobs)
        except FormatError:
            raise
        except (KeyError, TypeError, ValueError, IndexError, AttributeError, OverflowError) as e:
            # Backstop: the explicit checks above should catch everything; never let a bad file crash.
            raise FormatError(f"{path}: malformed graph ({type(e).__name__}: {str(e)[:120]})") from None

    @classmethod
    def load(cls, path: str | os.PathLike) -> BNNModel:
        """Load and validate a ``.bnn`` file (raises FormatError / FileNotFoundError)."""
        doc, blobs = read_bnn(path)
        return cls(doc, blobs, str(path))

    # ------------------------------------------------------------------------------------------ building
    def _build(self, doc: dict[str, Any], blobs: dict[str, np.ndarray]) -> None:
        c = _Ctx(self.path, blobs)
        meta = doc.get("model")
        if not isinstance(meta, dict):
            raise c.fail("missing 'model' section")
        size = meta.get("input_size")
        if (not isinstance(size, list) or len(size) != 2
                or not all(isinstance(v, int) and not isinstance(v, bool) and 1 <= v <= _MAX_SIDE for v in size)):
            raise c.fail(f"model.input_size must be [H, W] with 1 <= H, W <= {_MAX_SIDE}")
        cin = c.int(meta, "in_channels", 1, 64)
        for key in ("mean", "std"):
            v = meta.get(key)
            if (not isinstance(v, list) or len(v) != cin
                    or not all(isinstance(x, (int, float)) and not isinstance(x, bool) and np.isfinite(x) for x in v)):
                raise c.fail(f"model.{key} must list {cin} finite numbers")
        if any(s == 0 for s in meta["std"]):
            raise c.fail("model.std must be non-zero")
        self.meta = meta
        self.input_size: tuple[int, int] = (size[0], size[1])
        self.in_channels = cin
        self.mean = np.asarray(meta["mean"], np.float32)
        self.std = np.asarray(meta["std"], np.float32)
        nodes = doc.get("nodes")
        if not isinstance(nodes, list) or not nodes or len(nodes) > 100000:
            raise c.fail("'nodes' must be a non-empty list")
        shapes: dict[str, tuple[int, ...]] = {"input": (size[0], size[1], cin)}  # per-image shapes
        self._steps: list[tuple[str, list[str], str, dict[str, Any]]] = []
        for i, node in enumerate(nodes):
            c.where = f"node {i}: "
            if not isinstance(node, dict):
                raise c.fail("not an object")
            op = node.get("op")
            ins, out = node.get("inputs"), node.get("output")
            if not isinstance(ins, list) or len(ins) != 1 or not all(isinstance(n, str) for n in ins):
                raise c.fail("'inputs' must list one tensor name")
            if ins[0] not in shapes:
                raise c.fail(f"input {ins[0]!r:.60} is not defined by an earlier node")
            if not isinstance(out, str) or out in shapes:
                raise c.fail(f"output {out!r:.60} must be a new tensor name")
            c.where = f"node {i} ({op!r:.30} -> {out!r:.60}): "
            s_in = shapes[ins[0]]
            args: dict[str, Any] = {}
            if op == "conv":
                s_out = self._build_conv(c, node, s_in, shapes, args)
            elif op == "pointwise":
                ch = c.int(node, "channels", 1, 1 << 20)
                if s_in[-1] != ch:
                    raise c.fail(f"input has {s_in[-1]} channels, node expects {ch}")
                s_out = s_in
                self._epilogue(c, node, ch, s_out, shapes, args)
            elif op in ("maxpool", "avgpool"):
                if len(s_in) != 3:
                    raise c.fail("pooling needs a 4-D input")
                k = c.int(node, "k", 1, 64)
                st = c.int(node, "stride", 1, 64)
                p = c.int(node, "pad", 0, k // 2)
                ceil = c.bool(node, "ceil_mode")
                cip = c.bool(node, "count_include_pad", True)
                ho, wo = _out(s_in[0], k, st, p, ceil), _out(s_in[1], k, st, p, ceil)
                if ho < 1 or wo < 1:
                    raise c.fail(f"pooling window larger than its {s_in[0]}x{s_in[1]} input")
                s_out = (ho, wo, s_in[2])
                args.update(k=k, stride=st, pad=p, ceil_mode=ceil, count_include_pad=cip)
            elif op == "gap":
                if len(s_in) != 3:
                    raise c.fail("gap needs a 4-D input")
                s_out = (s_in[2],)
            elif op == "gmp":
                if len(s_in) != 3:
                    raise c.fail("gmp needs a 4-D input")
                s_out = (1, 1, s_in[2])
            elif op == "upsample":
                if len(s_in) != 3:
                    raise c.fail("upsample needs a 4-D input")
                f = c.int(node, "scale", 1, 16)
                s_out = (s_in[0] * f, s_in[1] * f, s_in[2])
                args["scale"] = f
            elif op == "linear":
                if len(s_in) != 1:
                    raise c.fail("linear needs a 2-D input")
                w = c.blob(node, "weight", (c.int(node, "out_features", 1, 1 << 20), s_in[0]))
                args["wt"] = np.ascontiguousarray(w.T)
                args["bias"] = c.blob(node, "bias", (w.shape[0],), optional=True)
                s_out = (w.shape[0],)
            else:
                raise c.fail(f"unknown op {op!r:.40}")
            if int(np.prod(s_out)) > _MAX_ELEMS:
                raise c.fail(f"tensor of {s_out} is too large")
            shapes[out] = s_out
            self._steps.append((op, ins, out, args))
        c.where = ""
        out = doc.get("output")
        if not isinstance(out, str) or out not in shapes or len(shapes[out]) not in (1, 3):
            raise c.fail(f"'output' must name a 2-D (N, D) or a 4-D tensor, got {out!r:.60}")
        self.output = out
        self.output_shape = shapes[out]  # per image: (D,) or (H, W, C)
        self.feat_dim = shapes[out][-1]
        self.shapes = shapes
        self._fuse_conv_pool()
        self._fuse_downsample()
        self._fuse_chains()
        # The NCHW input goes straight into the real convs that read it (they transpose while padding), unless
        # some other op needs it as NHWC.
        users = [(op, ins, a) for op, ins, _, a in self._steps if "input" in ins or a.get("residual") == "input"]
        self._nchw_input = all(op == "conv" and not a.get("binary", True) and a.get("residual") != "input"
                               for op, _, a in users)
        for _, _, a in users:
            a["nchw"] = self._nchw_input
        self._fuse_stem()
        self._last_use = {}
        for idx, (_, ins, _, args) in enumerate(self._steps):
            for n in ins + ([args["residual"]] if args.get("residual") else []):
                self._last_use[n] = idx

    def _fuse_conv_pool(self) -> None:
        """Run a real conv whose only reader is a max pool as one fused op (the stem: conv, BN, act, maxpool),
        so its full-resolution output never goes to memory. The pooled tensor keeps the pool's name."""
        steps, fused = self._steps, []
        i = 0
        while i < len(steps):
            op, ins, out, a = steps[i]
            if (op == "conv" and not a["binary"] and a["residual"] is None and i + 1 < len(steps)
                    and out != self.output):
                op2, ins2, out2, a2 = steps[i + 1]
                readers = [j for j, (_, ins3, _, a3) in enumerate(steps)
                           if out in ins3 or a3.get("residual") == out]
                if op2 == "maxpool" and ins2 == [out] and readers == [i + 1]:
                    fa = dict(a, pool=(a2["k"], a2["stride"], a2["pad"], a2["ceil_mode"]))
                    fused.append((op, ins, out2, fa))
                    i += 2
                    continue
            fused.append(steps[i])
            i += 1
        self._steps = fused

    def _fuse_downsample(self) -> None:
        """Run a ResNet shortcut's 1x1 binary downsample conv inside the conv that takes its output as residual,
        when both read the same tensor with the same threshold and stride: one packing of the input, and the
        downsample's output is used row by row from cache instead of going to memory (same bits as two ops)."""
        steps = self._steps
        drop: set[int] = set()
        for i, (op, ins, out, a) in enumerate(steps):
            if (op != "conv" or not a["binary"] or a["k"] != 1 or a["pad"] != 0 or a["residual"] is not None
                    or out == self.output or set(a["epi"]) - {"scale", "bias", "act_first"}):
                continue
            readers = [j for j, (_, ins2, _, a2) in enumerate(steps) if out in ins2 or a2.get("residual") == out]
            if len(readers) != 1 or readers[0] <= i:
                continue
            j = readers[0]
            op2, ins2, _, a2 = steps[j]
            t1, t2 = a["thresh"], a2.get("thresh")
            same_t = (t1 is None and t2 is None) or (t1 is not None and t2 is not None and np.array_equal(t1, t2))
            if (op2 == "conv" and a2["binary"] and ins2 == ins and a2["residual"] == out and a2["stride"] == a["stride"]
                    and not (a2["k"] == 1 and a2["pad"] == 0 and a2["stride"] > 1) and same_t
                    and a2["weights"].cout == a["weights"].cout):
                a2["residual"] = None
                a2["ds"] = {"ds_weights": a["weights"], "ds_scale": a["epi"].get("scale"),
                            "ds_bias": a["epi"].get("bias")}
                drop.add(i)
        self._steps = [st for i, st in enumerate(steps) if i not in drop]

    def _fuse_stem(self) -> None:
        """Feed a wavefront op straight from the stride-2 stem conv + max pool whose output only it reads: the
        stem's pooled rows are made as the first binary layer needs them, so they never go to memory (same bits).
        The stem's step stays in the op's arguments (``stem_step``) for the per-layer paths."""
        steps = self._steps
        for i in range(len(steps) - 1):
            op, ins, out, a = steps[i]
            op2, ins2, out2, a2 = steps[i + 1]
            if not (op == "conv" and not a["binary"] and a.get("pool") and a["stride"] == 2 and a["residual"] is None
                    and _engine.has_winograd(a["weights"]) and op2 == "bchain" and ins2 == [out]):
                continue
            readers = [j for j, (_, ins3, _, a3) in enumerate(steps) if out in ins3 or a3.get("residual") == out]
            if readers != [i + 1]:
                continue
            stem = _engine.ChainStem(a["weights"], a["pad"], a["pool"], a.get("nchw", False), **a["epi"])
            steps[i + 1] = (op2, ins, out2, dict(a2, stem=stem, stem_step=steps[i]))
            del steps[i]
            return

    @staticmethod
    def _chainable(op: str, ins: list[str], a: dict[str, Any]) -> bool:
        if op != "conv" or not a["binary"]:
            return False
        w = a["weights"]
        same = a["stride"] == 1 and a["k"] == 2 * a["pad"] + 1 and w.cin == w.cout
        return a["residual"] is None or (a["residual"] == ins[0] and same)

    def _fuse_chains(self) -> None:
        """Run runs of consecutive binary convs, each reading only the previous one's output (residual: its own
        input, a fused downsample, or none), as one row-wavefront op (``bchain``): a layer's rows are computed
        while its input rows are still in cache. Same kernels per row, so the same bits."""
        steps, out_steps = self._steps, []
        readers: dict[str, int] = {}
        for _, ins, _, a in steps:
            for name in set(ins + ([a["residual"]] if a.get("residual") else [])):
                readers[name] = readers.get(name, 0) + 1
        i = 0
        while i < len(steps):
            j = i
            if self._chainable(*[steps[i][k] for k in (0, 1, 3)]):
                while (j + 1 < len(steps) and self._chainable(*[steps[j + 1][k] for k in (0, 1, 3)])
                       and steps[j + 1][1][0] == steps[j][2] and readers.get(steps[j][2]) == 1
                       and steps[j][2] != self.output):
                    j += 1
            if j == i:
                out_steps.append(steps[i])
                i += 1
                continue
            members = steps[i:j + 1]
            layers = []
            for _, _, _, a in members:
                layers.append(_engine.BChainLayer(a["weights"], a["stride"], a["pad"], a["pad_value"],
                                                  a["residual"] is not None, thresh=a["thresh"], **a["epi"],
                                                  **a.get("ds", {})))
            out_steps.append(("bchain", members[0][1], members[-1][2], {"layers": layers, "members": members}))
            i = j + 1
        self._steps = out_steps

    def _build_conv(self, c: _Ctx, node: dict, s_in: tuple[int, ...], shapes: dict, args: dict) -> tuple[int, ...]:
        if len(s_in) != 3:
            raise c.fail("conv needs a 4-D input")
        binary = c.bool(node, "binary")
        cin = c.int(node, "cin", 1, 1 << 16)
        cout = c.int(node, "cout", 1, 1 << 16)
        k = c.int(node, "k", 1, 15)
        st = c.int(node, "stride", 1, 16)
        p = c.int(node, "pad", 0, k)
        if s_in[2] != cin:
            raise c.fail(f"input has {s_in[2]} channels, conv expects {cin}")
        ho, wo = _out(s_in[0], k, st, p), _out(s_in[1], k, st, p)
        if ho < 1 or wo < 1:
            raise c.fail(f"kernel {k} larger than its padded {s_in[0]}x{s_in[1]} input")
        args.update(binary=binary, k=k, stride=st, pad=p)
        if binary:
            args["pad_value"] = c.int(node, "pad_value", 0, 1)
            w = c.blob(node, "weight", (cout, k, k, (cin + 63) // 64), dtype="uint64")
            args["weights"] = BConvWeights(w, cin)
            args["thresh"] = c.blob(node, "thresh", (cin,), optional=True)
        else:
            w = c.blob(node, "weight", (cout, k, k, cin))
            args["weights"] = real_conv_weights(w)
        s_out = (ho, wo, cout)
        self._epilogue(c, node, cout, s_out, shapes, args)
        return s_out

    def _epilogue(self, c: _Ctx, node: dict, ch: int, s_out: tuple[int, ...], shapes: dict, args: dict) -> None:
        epi: dict[str, Any] = {"scale": c.blob(node, "scale", (ch,), optional=True),
                               "bias": c.blob(node, "bias", (ch,), optional=True)}
        res = node.get("residual")
        if res is not None:
            if not isinstance(res, str) or res not in shapes:
                raise c.fail(f"residual {res!r:.60} is not defined by an earlier node")
            if shapes[res] != s_out:
                raise c.fail(f"residual {res!r} has shape {shapes[res]}, the output {s_out}")
        args["residual"] = res
        act = node.get("act")
        if act is not None:
            if not isinstance(act, dict):
                raise c.fail("'act' must be an object or null")
            epi["slope"] = c.blob(act, "slope", (ch,))
            epi["shift_in"] = c.blob(act, "shift_in", (ch,), optional=True)
            epi["shift_out"] = c.blob(act, "shift_out", (ch,), optional=True)
        epi["act_first"] = c.bool(node, "act_first")
        clamp = node.get("clamp")
        if clamp is not None:
            if (not isinstance(clamp, list) or len(clamp) != 2
                    or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in clamp)):
                raise c.fail("'clamp' must be [lo, hi] or null")
            epi["clamp"] = (float(clamp[0]), float(clamp[1]))
        args["epi"] = epi

    # ------------------------------------------------------------------------------------------ running
    def forward(self, images: np.ndarray, profile: dict[str, float] | None = None,
                profile_clock: Callable[[], float] = time.perf_counter) -> np.ndarray:
        """Features (N, feat_dim) float32 of normalized images (N, C, H, W) float32 at ``input_size``.

        Batches of two or more images run image-parallel (one worker thread per engine thread, each running
        single-threaded kernels on a few images at a time: no barriers, activations stay in cache), or, with
        one thread, as serial sub-batches of ``chunk`` images; a single image uses the kernels' own OpenMP
        threads. With a ``profile`` dict (serial path), adds the seconds (read off ``profile_clock``, e.g.
        ``time.process_time``) spent per op kind (``binary_conv``, ``real_conv``, ...)."""
        x = np.asarray(images, dtype=np.float32)
        h, w = self.input_size
        if x.ndim != 4 or x.shape[1:] != (self.in_channels, h, w):
            raise ValueError(f"expected images of shape (N, {self.in_channels}, {h}, {w}), got {x.shape}")
        threads = _engine.get_num_threads()
        n = x.shape[0]
        if n == 1 or (threads < 2 and n <= self.chunk):
            y = self._forward_batch(x, profile, profile_clock)
        elif profile is not None or threads < 2:
            # Small sub-batches keep each layer's activations in cache (float traffic dominates otherwise).
            y = np.concatenate([self._forward_batch(x[s:s + self.chunk], profile, profile_clock)
                                for s in range(0, n, self.chunk)], axis=0)
        else:
            chunk = max(1, min(self.chunk, n // (4 * threads)))
            starts = range(0, n, chunk)
            y = np.concatenate(list(self._workers(threads).map(
                lambda s: self._forward_batch(x[s:s + chunk], None, time.perf_counter), starts)), axis=0)
        return np.ascontiguousarray(y.transpose(0, 3, 1, 2)) if y.ndim == 4 else y

    __call__ = forward

    def _workers(self, threads: int) -> ThreadPoolExecutor:
        pool = getattr(self, "_pool", None)
        if pool is None or self._pool_threads != threads:
            if pool is not None:
                pool.shutdown(wait=False)
            # Each worker runs the kernels single-threaded (OpenMP thread count is per calling thread).
            self._pool = ThreadPoolExecutor(threads, thread_name_prefix="bireid-rt",
                                            initializer=_engine.set_num_threads, initargs=(1,))
            self._pool_threads = threads
        return self._pool

    def _forward_batch(self, x: np.ndarray, profile: dict[str, float] | None,
                       clock: Callable[[], float] = time.perf_counter) -> np.ndarray:
        env: dict[str, np.ndarray] = {
            "input": np.ascontiguousarray(x) if self._nchw_input else np.ascontiguousarray(x.transpose(0, 2, 3, 1))}
        for idx, (op, ins, out, a) in enumerate(self._steps):
            if profile is None:
                env[out] = self._run(op, env[ins[0]], env, a)
            elif op == "bchain" and a.get("stem") is not None:
                # The stem runs inside the wavefront op: its share of the op's own per-layer ticks is real_conv.
                ticks = np.zeros(len(a["layers"]) + 1)
                t0 = clock()
                env[out] = self._run(op, env[ins[0]], env, a, ticks)
                dt = clock() - t0
                stem = ticks[-1] / ticks.sum() if ticks.sum() > 0 else 0.0
                profile["real_conv"] = profile.get("real_conv", 0.0) + dt * stem
                profile["binary_conv"] = profile.get("binary_conv", 0.0) + dt * (1.0 - stem)
            else:
                t0 = clock()
                env[out] = self._run(op, env[ins[0]], env, a)
                kind = (("binary_conv" if a["binary"] else "real_conv") if op == "conv"
                        else "binary_conv" if op == "bchain" else op)
                profile[kind] = profile.get(kind, 0.0) + clock() - t0
            for n in set(ins + ([a["residual"]] if a.get("residual") else [])):
                if self._last_use.get(n) == idx and n != self.output:
                    del env[n]  # free intermediates as soon as possible
        return env[self.output]

    @staticmethod
    def _run(op: str, x: np.ndarray, env: dict[str, np.ndarray], a: dict[str, Any],
             ticks: np.ndarray | None = None) -> np.ndarray:
        if op == "conv":
            epi = dict(a["epi"])
            res = env[a["residual"]] if a["residual"] else None
            if a["binary"]:
                # Packing, XNOR-popcount and epilogue in one call (a strided 1x1 conv packs only what it reads).
                return _engine.binary_conv2d_fused(x, a["weights"], a["stride"], a["pad"], a["pad_value"],
                                                   thresh=a["thresh"], residual=res, **epi, **a.get("ds", {}))
            return _engine.conv2d_float(x, a["weights"], a["stride"], a["pad"], residual=res,
                                        nchw=a.get("nchw", False), pool=a.get("pool"), **epi)
        if op == "bchain":
            stem = a.get("stem")
            if x.shape[0] >= _engine.get_num_threads():  # one image per thread: the wavefront op
                return _engine.binary_chain(x, a["layers"], profile=ticks, stem=stem)
            # Fewer images than threads: threads work inside each op (the stem, then each layer).
            t0 = time.perf_counter()
            if stem is not None:
                x = BNNModel._run("conv", x, env, a["stem_step"][3])
            t1 = time.perf_counter()
            for _, _, _, am in a["members"]:
                x = BNNModel._run("conv", x, {am["residual"]: x} if am["residual"] else {}, am)
            if ticks is not None:  # shares only: seconds here, not per layer (the stem last)
                ticks[-1] += t1 - t0
                ticks[0] += time.perf_counter() - t1
            return x
        if op == "pointwise":
            res = env[a["residual"]] if a["residual"] else None
            y = np.array(x, dtype=np.float32, order="C", copy=True)
            return _engine.epilogue(y, residual=res, **a["epi"])
        if op == "maxpool":
            return _engine.max_pool2d(x, a["k"], a["stride"], a["pad"], a["ceil_mode"])
        if op == "avgpool":
            return _engine.avg_pool2d(x, a["k"], a["stride"], a["pad"], a["ceil_mode"], a["count_include_pad"])
        if op == "gap":
            return _engine.global_avg_pool(x)
        if op == "gmp":  # a max is exact in any order: NumPy gives the bits PyTorch does
            return np.ascontiguousarray(x.max(axis=(1, 2), keepdims=True))
        if op == "upsample":
            f = a["scale"]
            return np.ascontiguousarray(np.repeat(np.repeat(x, f, axis=1), f, axis=2))
        if op == "linear":
            y = x @ a["wt"]
            return y + a["bias"] if a["bias"] is not None else y
        raise AssertionError(op)  # unreachable: ops are validated at load
