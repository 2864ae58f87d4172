// The row-wavefront op: a chain of binary convs (and optionally the stem feeding it) run row by row per image.
#include <algorithm>
#include <memory>
#include <vector>

#include "engine.h"
#include "winorows.h"

namespace bireid {

// A chain of binary convs, each reading the previous one's output, run as a row wavefront per image: a layer's row
// is computed as soon as the rows it needs exist, so every layer's input is still in cache when it is packed and
// added, and intermediate outputs live in small rings of rows. A layer's residual is its own input (a stride-1
// 'same' conv: Bi-Real blocks), a fused 1x1 downsample of its input (ResNet shortcut), or none. Each row is
// computed by exactly the kernels binary_conv2d_fused uses: the results are the same bits.
BChainLayer* make_chain_layer(py::object weights, int stride, int pad, int pad_value, bool residual_is_input,
                              const OptF32& thresh, const OptF32& scale, const OptF32& bias, const OptF32& slope,
                              const OptF32& shift_in, const OptF32& shift_out, bool act_first, Clamp clamp,
                              py::object ds_weights, const OptF32& ds_scale, const OptF32& ds_bias) {
    auto l = std::make_unique<BChainLayer>();
    l->w = weights.cast<const BConvWeights*>();
    l->wref = std::move(weights);
    require(stride >= 1 && pad >= 0, "binary chain layer: bad stride/pad");
    require(pad_value == 0 || pad_value == 1, "binary chain layer: pad_value must be 0 or 1");
    require(!residual_is_input || (stride == 1 && l->w->k == 2 * pad + 1 && l->w->cin == l->w->cout),
            "binary chain layer: a residual input needs a stride-1 conv with k = 2 * pad + 1 and Cin == Cout");
    if (!ds_weights.is_none()) {
        l->ds = ds_weights.cast<const BConvWeights*>();
        l->dsref = std::move(ds_weights);
        require(!residual_is_input, "binary chain layer: a fused downsample is the residual; not both");
        require(l->ds->k == 1 && l->ds->cin == l->w->cin && l->ds->cout == l->w->cout,
                "binary chain layer: the downsample must be a 1x1 conv with the same Cin and Cout");
    }
    l->stride = stride;
    l->pad = pad;
    l->pad_value = pad_value;
    l->residual_is_input = residual_is_input;
    const int64_t co = l->w->cout;
    l->thresh = opt_copy(thresh, l->w->cin, "thresh");
    l->epi.set(co, scale, bias, slope, shift_in, shift_out, act_first, clamp);
    l->ds_scale = opt_copy(ds_scale, co, "ds_scale");
    l->ds_bias = opt_copy(ds_bias, co, "ds_bias");
    return l.release();
}

ChainStem* make_chain_stem(py::object weights, int pad, PoolSpec pool, bool nchw, const OptF32& scale,
                           const OptF32& bias, const OptF32& slope, const OptF32& shift_in, const OptF32& shift_out,
                           bool act_first, Clamp clamp) {
    auto st = std::make_unique<ChainStem>();
    st->fw = weights.cast<const FConvWeights*>();
    st->wref = std::move(weights);
    require(!st->fw->wino2.empty(),
            "chain stem: the conv must have the Winograd form (5 <= k <= 15, small k * cin), run at stride 2");
    require(pad >= 0, "chain stem: bad pad");
    const auto [pk, ps, pp, pceil] = pool;
    (void)pceil;
    require(pk >= 1 && pk <= 64 && ps >= 1 && pp >= 0 && 2 * pp <= pk, "chain stem: bad pool kernel/stride/padding");
    st->pad = pad;
    st->pool = pool;
    st->nchw = nchw;
    st->epi.set(st->fw->cout, scale, bias, slope, shift_in, shift_out, act_first, clamp);
    return st.release();
}

F32 binary_chain(const F32& x, const std::vector<const BChainLayer*>& layers,
                 std::optional<py::array_t<double, py::array::c_style>> profile, const ChainStem* stem) {
    require(!layers.empty(), "binary_chain: no layers");
    const int nl = static_cast<int>(layers.size());
    double* prof = nullptr;
    if (profile) {
        require(profile->ndim() == 1 && profile->shape(0) == static_cast<py::ssize_t>(nl + (stem ? 1 : 0)),
                stem ? "binary_chain: profile must be a float64 array with one entry per layer, then the stem's"
                     : "binary_chain: profile must be a float64 array with one entry per layer");
        prof = profile->mutable_data();
    }
    const int64_t n = x.shape(0);
    // With a stem, x is the image batch and the first layer reads the stem's pooled rows as they are made.
    FConvArgs sa{};
    EpiHolder sepi;
    int sh = 0, sw = 0, spho = 0, spwo = 0;
    if (stem) {
        const FConvWeights& fw = *stem->fw;
        require(x.ndim() == 4 && x.shape(stem->nchw ? 1 : 3) == fw.cin,
                stem->nchw ? "binary_chain: x must be NCHW with the stem's input channels"
                           : "binary_chain: x must be NHWC with the stem's input channels");
        sh = static_cast<int>(x.shape(stem->nchw ? 2 : 1));
        sw = static_cast<int>(x.shape(stem->nchw ? 3 : 2));
        sa.w = fw.w.data();
        sa.kdim = fw.k * fw.k * fw.cin;
        sa.cout = fw.cout;
        sa.cout_pad = fw.cout_pad;
        sa.ho = out_size(sh, fw.k, 2, stem->pad, false);
        sa.wo = out_size(sw, fw.k, 2, stem->pad, false);
        require(sa.ho > 0 && sa.wo > 0, "binary_chain: the stem's kernel is larger than the padded input");
        const auto [pk, ps, pp, pceil] = stem->pool;
        spho = out_size(sa.ho, pk, ps, pp, pceil);
        spwo = out_size(sa.wo, pk, ps, pp, pceil);
        require(spho > 0 && spwo > 0, "binary_chain: the stem's pool window is larger than its padded conv output");
        stem->epi.make(sepi, fw.cout);
        sa.epi = sepi.e;
    } else {
        require(x.ndim() == 4, "binary_chain: x must be NHWC (4-D)");
    }
    // Per layer: the kernel arguments (batch of one image; x / out / res set per row), epilogues, geometry.
    std::vector<BConvArgs> args(nl), dargs(nl);
    std::vector<EpiHolder> epis(nl), depis(nl);
    std::vector<std::vector<float>> tz(nl);
    int h = stem ? spho : static_cast<int>(x.shape(1)), w = stem ? spwo : static_cast<int>(x.shape(2));
    int64_t c = stem ? stem->fw->cout : x.shape(3);
    require(h > 0 && w > 0, "binary_chain: empty input");
    auto ptr = [](const std::vector<float>& v) { return v.empty() ? nullptr : v.data(); };
    for (int l = 0; l < nl; ++l) {
        const BChainLayer& L = *layers[l];
        require(L.w->cin == c, "binary_chain: layer " + std::to_string(l) + " expects " + std::to_string(L.w->cin) +
                                   " channels, gets " + std::to_string(c));
        L.epi.make(epis[l], L.w->cout);
        BConvArgs& a = args[l];
        a.n = 1;
        a.h = h;
        a.w = w;
        a.k = L.w->k;
        a.stride = L.stride;
        a.pad = L.pad;
        a.pad_value = L.pad_value;
        a.ho = out_size(h, a.k, a.stride, a.pad, false);
        a.wo = out_size(w, a.k, a.stride, a.pad, false);
        require(a.ho > 0 && a.wo > 0, "binary_chain: layer " + std::to_string(l) + ": kernel larger than its input");
        require(!L.residual_is_input || (a.ho == h && a.wo == w), "binary_chain: residual shape mismatch");
        a.hp = h + 2 * a.pad;
        a.wp = w + 2 * a.pad;
        a.wd = L.w->wd;
        a.cin = L.w->cin;
        a.cout = L.w->cout;
        L.w->point(a);
        a.epi = epis[l].e;
        if (L.ds) {
            require(out_size(h, 1, a.stride, 0, false) == a.ho && out_size(w, 1, a.stride, 0, false) == a.wo,
                    "binary_chain: layer " + std::to_string(l) + ": the downsample's output shape must match");
            make_epilogue_ptrs(depis[l], L.w->cout, ptr(L.ds_scale), ptr(L.ds_bias), nullptr, nullptr, nullptr, false,
                               std::nullopt);
            BConvArgs& d = dargs[l];
            d = a;
            d.k = 1;
            d.pad = 0;
            L.ds->point(d);
            d.epi = depis[l].e;
        }
        if (L.thresh.empty() && L.w->cin % 64 != 0) tz[l].assign(L.w->cin, 0.f);
        h = a.ho;
        w = a.wo;
        c = a.cout;
    }
    const int hl = h, wl = w;  // the last layer's output
    F32 out({n, static_cast<int64_t>(hl), static_cast<int64_t>(wl), c});
    float* outp = out.mutable_data();
    const float* xs = x.data();
    const KernelTable& kt = kernels();
    const int64_t xin_img = stem ? static_cast<int64_t>(sh) * sw * stem->fw->cin
                                 : static_cast<int64_t>(args[0].h) * args[0].w * args[0].cin;
    {
        py::gil_scoped_release nogil;
#pragma omp parallel num_threads(num_threads())
        {
            // Per thread, one image at a time: each layer's packed input, each intermediate output in a ring of
            // rows (the rows its consumer still needs; the last layer writes to out), a downsample row.
            // Rings and downsample rows are written before they are read: left uninitialised (no zeroing pass).
            std::vector<std::vector<uint64_t>> packed(nl);
            std::vector<std::unique_ptr<float[]>> ring(nl - 1), dsrow(nl);
            std::vector<int> nring(nl - 1);
            std::vector<int64_t> rowsz(nl);
            for (int l = 0; l < nl; ++l) {
                packed[l].assign(static_cast<size_t>(args[l].hp) * args[l].wp * args[l].wd, 0);
                rowsz[l] = static_cast<int64_t>(args[l].wo) * args[l].cout;
                if (layers[l]->ds) dsrow[l].reset(new float[static_cast<size_t>(rowsz[l])]);
            }
            for (int l = 0; l + 1 < nl; ++l) {
                nring[l] = args[l + 1].k + 2 * args[l + 1].stride + 2;
                ring[l].reset(new float[static_cast<size_t>(nring[l]) * rowsz[l]]);
            }
            std::vector<BConvArgs> a(args), d(dargs);
            std::vector<int> packed_rows(nl), done(nl);
            std::vector<double> secs(prof ? nl + 1 : 0, 0.0);
            auto row_of = [&](int l, int q) { return ring[l].get() + (q % nring[l]) * rowsz[l]; };
            // The stem's pooled rows (the first layer's input) in a ring like the other layers' outputs: a row is
            // made just before the first layer packs it, and still there when that layer adds it as residual.
            std::unique_ptr<WinoRows> wr;
            std::unique_ptr<float[]> sring;
            const int nsring = args[0].k + 2 * args[0].stride + 2;
            const int64_t srowsz = static_cast<int64_t>(args[0].w) * args[0].cin;
            if (stem) {
                const auto [pk, ps, pp, pceil] = stem->pool;
                wr = std::make_unique<WinoRows>(sa, *stem->fw, kt, sh, sw, stem->pad, stem->nchw, pk, ps, pp, spwo);
                sring.reset(new float[static_cast<size_t>(nsring) * srowsz]);
            }
            auto input_row = [&](const float* xin, int q) {
                return stem ? sring.get() + (q % nsring) * srowsz
                            : xin + static_cast<int64_t>(q) * args[0].w * args[0].cin;
            };
            // The kernels address output / residual row oh at base + oh * row size: the base that puts it at p.
            auto base_for = [](const float* p, int oh, int64_t rs) {
                return reinterpret_cast<float*>(reinterpret_cast<uintptr_t>(p) -
                                                static_cast<uintptr_t>(oh) * static_cast<uintptr_t>(rs) * sizeof(float));
            };
            auto conv_row = [&](const BConvArgs& al, int r) {
                const int nblk = (al.cout + OCB - 1) / OCB;
                kt.bconv_rows(al, 0, r, 0, nblk);
            };
#pragma omp for schedule(dynamic, 1)
            for (int64_t i = 0; i < n; ++i) {
                const float* xin = xs + i * xin_img;
                if (stem) wr->start(xin, 0);
                float* oimg = outp + i * static_cast<int64_t>(hl) * wl * c;
                for (int l = 0; l < nl; ++l) {
                    a[l].x = packed[l].data();
                    d[l].x = packed[l].data() + (static_cast<int64_t>(a[l].pad) * a[l].wp + a[l].pad) * a[l].wd;
                    packed_rows[l] = done[l] = 0;
                }
                // Sweep the layers, one row each per sweep when its input rows exist and the ring slot it writes is
                // free (its consumer has packed, and no longer needs as residual, the row that was there).
                while (done[nl - 1] < hl) {
                    for (int l = 0; l < nl; ++l) {
                        BConvArgs& al = a[l];
                        const int r = done[l];
                        if (r >= al.ho) continue;
                        const bool has_ds = layers[l]->ds != nullptr;
                        const int need = std::min(al.h, std::max(r * al.stride - al.pad + al.k,
                                                                 has_ds ? r * al.stride + 1 : 0));
                        if (l > 0 && done[l - 1] < need) continue;
                        if (l + 1 < nl) {
                            int low = packed_rows[l + 1];
                            if (layers[l + 1]->residual_is_input) low = std::min(low, done[l + 1]);
                            if (r >= low + nring[l]) continue;
                        }
                        const double t0 = prof ? kt.ticks() : 0.0;
                        const float* t = layers[l]->thresh.empty() ? (tz[l].empty() ? nullptr : tz[l].data())
                                                                   : layers[l]->thresh.data();
                        for (int& q = packed_rows[l]; q < need; ++q) {
                            uint64_t* dst = packed[l].data() + (static_cast<int64_t>(q + al.pad) * al.wp + al.pad) * al.wd;
                            const float* src = l == 0 ? input_row(xin, q) : row_of(l - 1, q);
                            if (l == 0 && stem) {
                                const double s0 = prof ? kt.ticks() : 0.0;
                                wr->pooled_row(q, sring.get() + (q % nsring) * srowsz);
                                if (prof) secs[nl] += kt.ticks() - s0;
                            }
                            kt.pack_rows(src, t, dst, al.w, al.cin, al.wd);
                        }
                        if (has_ds) {  // the downsample's row first: it is this row's residual
                            d[l].out = base_for(dsrow[l].get(), r, rowsz[l]);
                            conv_row(d[l], r);
                            al.epi.res = d[l].out;
                        } else if (layers[l]->residual_is_input) {
                            const float* res = l == 0 ? input_row(xin, r) : row_of(l - 1, r);
                            al.epi.res = base_for(res, r, rowsz[l]);
                        } else {
                            al.epi.res = nullptr;
                        }
                        al.out = l + 1 < nl ? base_for(row_of(l, r), r, rowsz[l]) : oimg;
                        conv_row(al, r);
                        ++done[l];
                        if (prof) secs[l] += kt.ticks() - t0;  // the stem's share is taken out below
                    }
                }
            }
            if (prof) {
                if (stem) secs[0] -= secs[nl];  // the stem's rows were made inside the first layer's sections
#pragma omp critical
                for (int l = 0; l < nl + (stem ? 1 : 0); ++l) prof[l] += secs[l];
            }
        }
    }
    return out;
}

}  // namespace bireid
