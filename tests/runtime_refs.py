"""NumPy references shared by the runtime kernel tests (importable as `runtime_refs`)."""

import numpy as np
import pytest

from bireid.runtime import _engine

# Every instruction set the engine knows, and why this CPU (or this build) cannot run it ("" when it can).
ISA_STATUS = dict(_engine.isa_status())
ISAS = [i for i, why in ISA_STATUS.items() if not why]  # the paths this CPU runs (loops over them inside a test)
# Per-ISA test parameters: an ISA this CPU lacks is reported as skipped, with the reason, not silently dropped.
ISA_PARAMS = [pytest.param(i, marks=pytest.mark.skipif(bool(why), reason=f"{i}: {why}"), id=i)
              for i, why in ISA_STATUS.items()]
# The same without the portable path, for tests that compare an ISA against it.
FAST_ISA_PARAMS = [p for p in ISA_PARAMS if p.values[0] != "portable"]


def every_path(threads=(1, 2)):
    """Switch the engine to each ISA path this CPU runs and each thread count in turn; yields (isa, threads)."""
    for isa in ISAS:
        _engine.set_isa(isa)
        for n in threads:
            _engine.set_num_threads(n)
            yield isa, n


@pytest.fixture(autouse=True)
def restore_isa_and_threads():
    """Put the engine's ISA and thread count back after a test that forces them (import it to use it)."""
    isa, threads = _engine.get_isa(), _engine.get_num_threads()
    yield
    _engine.set_isa(isa)
    _engine.set_num_threads(threads)


def ref_binary_conv(x, t, wneg, stride, pad, pad_value):
    """Integer +-1 convolution: sign(x - t) (sign(0) = +1) padded with pad_value, +-1 weights (True = -1)."""
    a = np.where((x - t) < 0, -1, 1).astype(np.int64)
    n, h, w, c = a.shape
    cout, k = wneg.shape[0], wneg.shape[1]
    ap = np.full((n, h + 2 * pad, w + 2 * pad, c), pad_value, dtype=np.int64)
    ap[:, pad:pad + h, pad:pad + w] = a
    ws = np.where(wneg, -1, 1).astype(np.int64)
    ho = (h + 2 * pad - k) // stride + 1
    wo = (w + 2 * pad - k) // stride + 1
    out = np.zeros((n, ho, wo, cout), dtype=np.int64)
    for kh in range(k):
        for kw in range(k):
            patch = ap[:, kh:kh + stride * (ho - 1) + 1:stride, kw:kw + stride * (wo - 1) + 1:stride, :]
            out += patch @ ws[:, kh, kw, :].T
    return out
