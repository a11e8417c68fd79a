/* ref/gptq.c — GPTQ / OPTQ: post-training quantization of one linear layer
 * W (C_out, C_in) that minimises the output error ||X W^T − X Ŵ^T||² on
 * calibration inputs X (n, C_in), one column at a time, each quantization
 * error compensated on the columns not yet quantized through the inverse
 * Hessian's Cholesky factor.
 *
 * Paper: Frantar, Ashkboos, Hoefler, Alistarh, "GPTQ: Accurate Post-Training
 * Quantization for Generative Pre-trained Transformers", ICLR 2023 (arXiv
 * 2210.17323): §3 (OBQ update δ_F = −(w_q − quant(w_q)) / [H_F^{-1}]_qq ·
 * (H_F^{-1})_{:,q}, eq. 2-3; arbitrary order, lazy batch updates, Cholesky
 * reformulation) and Algorithm 1, as the authors' reference code
 * (IST-DASLab/gptq, gptq.py: add_batch, fasterquant with blocksize, percdamp,
 * groupsize, actorder, static_groups) implements it. The nine steps, the
 * column order and the arithmetic precision are in include/lowbit/ref/gptq.h;
 * doc/algorithms/gptq.md discusses the choices.
 *
 * The element quantizer is pluggable (weight_quant.h): lowbit's uniform grid
 * (default) or the power grid of nupes.md §1, i.e. GPTQ with a non-uniform
 * NUPES/PowerQuant grid: each weight is quantized in the power domain and the
 * error w − ŵ is compensated in the weight domain.
 *
 * Leaves out: the authors' Quantizer grid (zero point 2^(b-1) for symmetric),
 * their MSE range search (norm 2.4 shrink grid; lowbit's range estimators are
 * used instead), the "trits" mode, Conv2d unfolding, sequential whole-model
 * driving (models/ applies this per layer), packing.
 * Shapes: W (C_out, C_in); X (n, C_in); H (C_in, C_in).
 */
#include "config.h"
#include "lowbit/ref/gptq.h"
#include "lowbit/alloc.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- Hessian ------------------------------------------------------------- */

lb_status lb_gptq_hessian_create(lb_ctx *ctx, int64_t c_in, lb_gptq_hessian **out)
{
    size_t n;
    if (!out) return lb_error(ctx, LB_ERR_ARG, "gptq hessian: NULL output");
    *out = NULL;
    if (c_in < 1) return lb_error(ctx, LB_ERR_ARG, "gptq hessian: C_in = %lld < 1", (long long)c_in);
    if (!lb_mul_size((size_t)c_in, (size_t)c_in, &n) || !lb_mul_size(n, sizeof(double), &n))
        return lb_error(ctx, LB_ERR_ARG, "gptq hessian: C_in = %lld too large", (long long)c_in);
    lb_gptq_hessian *h = lb_calloc(1, sizeof *h);
    double *s = lb_calloc(1, n);
    if (!h || !s) {
        lb_free(h);
        lb_free(s);
        return lb_error(ctx, LB_ERR_NOMEM, "gptq hessian: out of memory (%zu bytes)", n);
    }
    h->c_in = c_in;
    h->n_samples = 0;
    h->xtx = s;
    *out = h;
    return LB_OK;
}

void lb_gptq_hessian_free(lb_gptq_hessian *h)
{
    if (!h) return;
    lb_free(h->xtx);
    lb_free(h);
}

lb_status lb_gptq_hessian_add_batch_ref(lb_ctx *ctx, lb_gptq_hessian *h, int64_t n,
                                        const float *X) // (n, C_in)
{
    if (!h || n < 0 || (n > 0 && !X)) return lb_error(ctx, LB_ERR_ARG, "gptq hessian: bad argument");
    const int64_t c = h->c_in;
    for (int64_t i = 0; i < n * c; i++)
        if (!isfinite(X[i]))
            return lb_error(ctx, LB_ERR_NUMERIC, "gptq hessian: non-finite input at (%lld, %lld)",
                            (long long)(i / c), (long long)(i % c));
    double *s = h->xtx;
    for (int64_t t = 0; t < n; t++) {
        const float *x = X + t * c;
        for (int64_t i = 0; i < c; i++) {
            const double xi = (double)x[i];
            double *si = s + i * c;
            for (int64_t j = 0; j <= i; j++) si[j] += xi * (double)x[j];
        }
    }
    for (int64_t i = 0; i < c; i++)
        for (int64_t j = 0; j < i; j++) s[j * c + i] = s[i * c + j];
    h->n_samples += n;
    return LB_OK;
}

lb_status lb_gptq_hessian_get(lb_ctx *ctx, const lb_gptq_hessian *h, double *H) // (C_in, C_in) out
{
    if (!h || !H) return lb_error(ctx, LB_ERR_ARG, "gptq hessian: NULL argument");
    if (h->n_samples < 1) return lb_error(ctx, LB_ERR_ARG, "gptq hessian: no calibration rows were added");
    const double n = (double)h->n_samples;
    for (int64_t i = 0; i < h->c_in * h->c_in; i++) H[i] = (2.0 * h->xtx[i]) / n;
    return LB_OK;
}

/* ---- dense linear algebra (double, row-major C x C) ------------------------ */

/* In-place lower Cholesky factor of the symmetric positive definite A (its
 * lower triangle is read; the upper triangle is zeroed). Returns -1 on
 * success, else the column whose pivot was not positive and finite (*pivot). */
static int64_t cholesky_lower(int64_t C, double *A, double *pivot)
{
    for (int64_t j = 0; j < C; j++) {
        double *aj = A + j * C;
        double s = aj[j];
        for (int64_t k = 0; k < j; k++) s -= aj[k] * aj[k];
        if (!(s > 0.0) || !isfinite(s)) {
            *pivot = s;
            return j;
        }
        const double ljj = sqrt(s);
        aj[j] = ljj;
        for (int64_t i = j + 1; i < C; i++) {
            double *ai = A + i * C;
            double v = ai[j];
            for (int64_t k = 0; k < j; k++) v -= ai[k] * aj[k];
            ai[j] = v / ljj;
        }
        for (int64_t k = j + 1; k < C; k++) aj[k] = 0.0;
    }
    return -1;
}

/* Linv (lower) = L^{-1} of the lower-triangular L, by forward substitution. */
static void invert_lower(int64_t C, const double *L, double *Linv)
{
    memset(Linv, 0, (size_t)(C * C) * sizeof(double));
    for (int64_t j = 0; j < C; j++) {
        Linv[j * C + j] = 1.0 / L[j * C + j];
        for (int64_t i = j + 1; i < C; i++) {
            double v = 0.0;
            for (int64_t k = j; k < i; k++) v += L[i * C + k] * Linv[k * C + j];
            Linv[i * C + j] = -v / L[i * C + i];
        }
    }
}

/* A = Linv^T Linv = (L L^T)^{-1} (both triangles), the reference's
 * torch.cholesky_inverse. A_ij = Σ_{k >= max(i,j)} Linv_ki Linv_kj. */
static void inverse_from_factor(int64_t C, const double *Linv, double *A)
{
    for (int64_t i = 0; i < C; i++) {
        for (int64_t j = 0; j <= i; j++) {
            double v = 0.0;
            for (int64_t k = i; k < C; k++) v += Linv[k * C + i] * Linv[k * C + j];
            A[i * C + j] = v;
            A[j * C + i] = v;
        }
    }
}

/* ---- GPTQ -------------------------------------------------------------- */

lb_gptq_config lb_gptq_config_default(void)
{
    lb_gptq_config c;
    c.quant = lb_weight_quant_config_default();
    c.percdamp = 0.01;
    c.block_size = 128;
    c.act_order = 0;
    c.static_groups = 0;
    return c;
}

typedef struct diag_entry {
    double d;
    int64_t index;
} diag_entry;

/* Decreasing diagonal, ties by increasing index: a total order, so qsort
 * gives the stable argsort. */
static int by_decreasing_diag(const void *pa, const void *pb)
{
    const diag_entry *a = pa, *b = pb;
    if (a->d > b->d) return -1;
    if (a->d < b->d) return 1;
    return (a->index > b->index) - (a->index < b->index);
}

/* Parameters of column group [c0, c0 + len) of the (C_out, C) double matrix
 * Wd, rounded to float32 into buf (C_out, len). */
static lb_status group_qparams(lb_ctx *ctx, const lb_weight_quant_config *q, int64_t C_out, int64_t C,
                               const double *Wd, int64_t c0, int64_t len, float *buf, float *pscale,
                               int32_t *pzero)
{
    for (int64_t r = 0; r < C_out; r++)
        for (int64_t c = 0; c < len; c++) buf[r * len + c] = (float)Wd[r * C + c0 + c];
    return lb_weight_qparams_ref(ctx, q, C_out, len, buf, pscale, pzero);
}

lb_status lb_gptq_quantize_ref(lb_ctx *ctx, const lb_gptq_config *cfg, int64_t C_out, int64_t C_in,
                               const float *W,  // (C_out, C_in)
                               const double *H, // (C_in, C_in)
                               int32_t *codes,  // (C_out, C_in) out
                               float *scale,    // (rows, cols) out
                               int32_t *zero,   // (rows, cols) out or NULL
                               float *what,     // (C_out, C_in) out or NULL
                               int32_t *g_idx,  // (C_in,) out or NULL
                               int32_t *perm,   // (C_in,) out or NULL
                               lb_gptq_info *info)
{
    if (!cfg) return lb_error(ctx, LB_ERR_ARG, "gptq: NULL config");
    const lb_weight_quant_config *q = &cfg->quant;
    int64_t srows, scols;
    lb_status st = lb_weight_scale_shape(ctx, q, C_out, C_in, &srows, &scols);
    if (st != LB_OK) return st;
    if (!(cfg->percdamp >= 0.0) || !isfinite(cfg->percdamp))
        return lb_error(ctx, LB_ERR_ARG, "gptq: percdamp %g is not a finite number >= 0", cfg->percdamp);
    if (cfg->block_size < 1) return lb_error(ctx, LB_ERR_ARG, "gptq: block size %lld < 1", (long long)cfg->block_size);
    if (info) {
        info->damp = 0.0;
        info->loss = 0.0;
        info->dead_columns = 0;
    }
    if (C_in == 0 || C_out == 0) return LB_OK;
    if (C_in > INT32_MAX) return lb_error(ctx, LB_ERR_ARG, "gptq: C_in %lld too large", (long long)C_in);
    if (!W || !H || !codes || !scale) return lb_error(ctx, LB_ERR_ARG, "gptq: NULL argument");
    if (!zero && !q->symmetric) return lb_error(ctx, LB_ERR_ARG, "gptq: an asymmetric config needs zero points");
    const int64_t C = C_in;
    size_t cc, wc;
    if (!lb_mul_size((size_t)C, (size_t)C, &cc) || !lb_mul_size(cc, sizeof(double), &cc) ||
        !lb_mul_size((size_t)C_out, (size_t)C, &wc) || !lb_mul_size(wc, sizeof(double), &wc))
        return lb_error(ctx, LB_ERR_ARG, "gptq: shape (%lld, %lld) too large", (long long)C_out, (long long)C);
    for (int64_t i = 0; i < C_out * C; i++)
        if (!isfinite(W[i]))
            return lb_error(ctx, LB_ERR_NUMERIC, "gptq: non-finite weight at (%lld, %lld)", (long long)(i / C),
                            (long long)(i % C));
    for (int64_t i = 0; i < C * C; i++)
        if (!isfinite(H[i]))
            return lb_error(ctx, LB_ERR_NUMERIC, "gptq: non-finite Hessian entry at (%lld, %lld)",
                            (long long)(i / C), (long long)(i % C));

    const int64_t B = cfg->block_size < C ? cfg->block_size : C;
    const int grouped = q->granularity == LB_WQ_GROUP;
    const int64_t g = grouped ? q->group_size : C;
    double *A = lb_alloc(cc);                                      // (C, C) H, then its factors
    double *Bm = lb_alloc(cc);                                     // (C, C) L^{-1}, then U
    double *Wd = lb_alloc(wc);                                     // (C_out, C) working W, permuted
    double *W1 = lb_alloc((size_t)(C_out * B) * sizeof(double));  // (C_out, B) block copy
    double *Err = lb_alloc((size_t)(C_out * B) * sizeof(double)); // (C_out, B) scaled errors
    double *acc = lb_alloc((size_t)C * sizeof(double));           // (C,) one row's lazy update
    int32_t *codes_p = lb_alloc((size_t)(C_out * C) * sizeof(int32_t)); // (C_out, C) permuted
    float *what_p = lb_alloc((size_t)(C_out * C) * sizeof(float));      // (C_out, C) permuted
    float *buf = lb_alloc((size_t)(C_out * C) * sizeof(float));         // (C_out, <= C) group values
    float *pscale = lb_alloc((size_t)C_out * sizeof(float));            // (C_out,) one column group
    int32_t *pzero = lb_alloc((size_t)C_out * sizeof(int32_t));         // (C_out,)
    int32_t *gid = lb_alloc((size_t)C * sizeof(int32_t));               // (C,) group of processing step j
    diag_entry *order = lb_alloc((size_t)C * sizeof(diag_entry));       // (C,) perm[j] = order[j].index
    if (!A || !Bm || !Wd || !W1 || !Err || !acc || !codes_p || !what_p || !buf || !pscale || !pzero || !gid ||
        !order) {
        st = lb_error(ctx, LB_ERR_NOMEM, "gptq: out of memory for a (%lld, %lld) layer", (long long)C_out,
                      (long long)C);
        goto done;
    }

    /* Step 2: per-tensor / per-channel parameters from the original W. */
    if (q->granularity == LB_WQ_TENSOR) {
        st = lb_weight_qparams_ref(ctx, q, 1, C_out * C, W, scale, zero);
    } else if (q->granularity == LB_WQ_CHANNEL) {
        st = lb_weight_qparams_ref(ctx, q, C_out, C, W, scale, zero);
    }
    if (st != LB_OK) goto done;

    /* Step 3: dead columns. Wd holds W' in original order for now. */
    memcpy(A, H, cc);
    for (int64_t i = 0; i < C_out * C; i++) Wd[i] = (double)W[i];
    int64_t dead = 0;
    for (int64_t j = 0; j < C; j++) {
        if (A[j * C + j] == 0.0) {
            A[j * C + j] = 1.0;
            for (int64_t r = 0; r < C_out; r++) Wd[r * C + j] = 0.0;
            dead++;
        }
    }

    /* Step 4: static groups, from W' in original column groups. */
    if (grouped && cfg->static_groups) {
        for (int64_t k = 0, c0 = 0; c0 < C; k++, c0 += g) {
            const int64_t len = c0 + g < C ? g : C - c0;
            if ((st = group_qparams(ctx, q, C_out, C, Wd, c0, len, buf, pscale, pzero)) != LB_OK) goto done;
            for (int64_t r = 0; r < C_out; r++) {
                scale[r * scols + k] = pscale[r];
                if (zero) zero[r * scols + k] = pzero[r];
            }
        }
    }

    /* Step 5: the processing order. */
    for (int64_t j = 0; j < C; j++) {
        order[j].d = A[j * C + j];
        order[j].index = j;
    }
    if (cfg->act_order) qsort(order, (size_t)C, sizeof *order, by_decreasing_diag);

    /* Permute H (into Bm) and W' (through buf as scratch, in double via acc). */
    for (int64_t i = 0; i < C; i++)
        for (int64_t j = 0; j < C; j++) Bm[i * C + j] = A[order[i].index * C + order[j].index];
    for (int64_t r = 0; r < C_out; r++) {
        for (int64_t j = 0; j < C; j++) acc[j] = Wd[r * C + order[j].index];
        memcpy(Wd + r * C, acc, (size_t)C * sizeof(double));
    }

    /* Step 6: dampening, mean of the diagonal summed in processing order. */
    double diag_sum = 0.0;
    for (int64_t j = 0; j < C; j++) diag_sum += Bm[j * C + j];
    const double damp = cfg->percdamp * (diag_sum / (double)C);
    for (int64_t j = 0; j < C; j++) Bm[j * C + j] += damp;

    /* Step 7: U = upper Cholesky factor of (H + λI)^{-1}. */
    double pivot = 0.0;
    int64_t bad = cholesky_lower(C, Bm, &pivot);
    if (bad >= 0) {
        st = lb_error(ctx, LB_ERR_NUMERIC,
                      "gptq: H + lambda*I is not positive definite (Cholesky pivot %g at processing column %lld, "
                      "lambda = %g); increase percdamp (now %g)",
                      pivot, (long long)bad, damp, cfg->percdamp);
        goto done;
    }
    invert_lower(C, Bm, A);         /* A = L^{-1} */
    inverse_from_factor(C, A, Bm);  /* Bm = H^{-1} */
    bad = cholesky_lower(C, Bm, &pivot);
    if (bad >= 0) {
        st = lb_error(ctx, LB_ERR_NUMERIC,
                      "gptq: the inverse Hessian is not numerically positive definite (pivot %g at column %lld); "
                      "increase percdamp (now %g)",
                      pivot, (long long)bad, cfg->percdamp);
        goto done;
    }
    for (int64_t i = 0; i < C; i++) /* A = U = L2^T (upper) */
        for (int64_t j = 0; j < C; j++) A[i * C + j] = Bm[j * C + i];
    const double *U = A;

    /* Step 8: blocks of B columns with lazy updates. */
    double loss = 0.0;
    for (int64_t i1 = 0; i1 < C; i1 += B) {
        const int64_t i2 = i1 + B < C ? i1 + B : C, count = i2 - i1;
        for (int64_t r = 0; r < C_out; r++)
            for (int64_t jj = 0; jj < count; jj++) W1[r * B + jj] = Wd[r * C + i1 + jj];
        for (int64_t jj = 0; jj < count; jj++) {
            const int64_t j = i1 + jj;
            int64_t k = 0; /* the column group of step j */
            if (grouped) {
                if (cfg->static_groups) {
                    k = order[j].index / g;
                } else {
                    k = j / g;
                    if (j % g == 0) {
                        /* The reference's find_params(W[:, j:j+g]): Wd, not W1. */
                        const int64_t len = j + g < C ? g : C - j;
                        if ((st = group_qparams(ctx, q, C_out, C, Wd, j, len, buf, pscale, pzero)) != LB_OK)
                            goto done;
                        for (int64_t r = 0; r < C_out; r++) {
                            scale[r * scols + k] = pscale[r];
                            if (zero) zero[r * scols + k] = pzero[r];
                        }
                    }
                }
            }
            gid[j] = (int32_t)k;
            const double d = U[j * C + j];
            const double *urow = U + j * C + i1;
            for (int64_t r = 0; r < C_out; r++) {
                const int64_t s = q->granularity == LB_WQ_TENSOR ? 0 : q->granularity == LB_WQ_CHANNEL ? r
                                                                                                      : r * scols + k;
                const double w = W1[r * B + jj];
                if (!isfinite(w)) {
                    st = lb_error(ctx, LB_ERR_NUMERIC,
                                  "gptq: the error compensation diverged at processing column %lld (row %lld); "
                                  "increase percdamp (now %g)",
                                  (long long)j, (long long)r, cfg->percdamp);
                    goto done;
                }
                float wh;
                codes_p[r * C + j] = lb_weight_code(q, (float)w, scale[s], zero ? zero[s] : 0, &wh);
                what_p[r * C + j] = wh;
                const double e = (w - (double)wh) / d;
                loss += e * e;
                Err[r * B + jj] = e;
                double *w1 = W1 + r * B;
                for (int64_t kk = jj + 1; kk < count; kk++) w1[kk] -= e * urow[kk];
            }
        }
        /* W[:, i2:] -= E U[i1:i2, i2:], sums over the block in increasing order. */
        for (int64_t r = 0; r < C_out && i2 < C; r++) {
            for (int64_t c = i2; c < C; c++) acc[c] = 0.0;
            for (int64_t jj = 0; jj < count; jj++) {
                const double e = Err[r * B + jj];
                const double *urow = U + (i1 + jj) * C;
                for (int64_t c = i2; c < C; c++) acc[c] += e * urow[c];
            }
            for (int64_t c = i2; c < C; c++) Wd[r * C + c] -= acc[c];
        }
    }

    /* Step 9: back to the original column order. */
    for (int64_t j = 0; j < C; j++) {
        const int64_t c = order[j].index;
        for (int64_t r = 0; r < C_out; r++) {
            codes[r * C + c] = codes_p[r * C + j];
            if (what) what[r * C + c] = what_p[r * C + j];
        }
        if (g_idx) g_idx[c] = gid[j];
        if (perm) perm[j] = (int32_t)c;
    }
    if (info) {
        info->damp = damp;
        info->loss = 0.5 * loss;
        info->dead_columns = dead;
    }
    st = LB_OK;
done:
    lb_free(A);
    lb_free(Bm);
    lb_free(Wd);
    lb_free(W1);
    lb_free(Err);
    lb_free(acc);
    lb_free(codes_p);
    lb_free(what_p);
    lb_free(buf);
    lb_free(pscale);
    lb_free(pzero);
    lb_free(gid);
    lb_free(order);
    return st;
}

lb_status lb_gptq_hessian_error_ref(lb_ctx *ctx, int64_t C_out, int64_t C_in,
                                    const double *H,   // (C_in, C_in)
                                    const float *W,    // (C_out, C_in)
                                    const float *What, // (C_out, C_in)
                                    double *err_sq, double *ref_sq)
{
    if (C_out < 0 || C_in < 0 || !err_sq || !ref_sq)
        return lb_error(ctx, LB_ERR_ARG, "gptq hessian error: bad argument");
    if (C_out * C_in > 0 && (!H || !W || !What)) return lb_error(ctx, LB_ERR_ARG, "gptq hessian error: NULL argument");
    double *d = lb_alloc((size_t)(2 * (C_in > 0 ? C_in : 1)) * sizeof(double));
    if (!d) return lb_error(ctx, LB_ERR_NOMEM, "gptq hessian error: out of memory");
    double *w = d + C_in;
    double e2 = 0.0, y2 = 0.0;
    for (int64_t r = 0; r < C_out; r++) {
        for (int64_t i = 0; i < C_in; i++) {
            w[i] = (double)W[r * C_in + i];
            d[i] = w[i] - (double)What[r * C_in + i];
        }
        for (int64_t i = 0; i < C_in; i++) {
            double hd = 0.0, hw = 0.0;
            for (int64_t j = 0; j < C_in; j++) {
                hd += H[i * C_in + j] * d[j];
                hw += H[i * C_in + j] * w[j];
            }
            e2 += d[i] * hd;
            y2 += w[i] * hw;
        }
    }
    lb_free(d);
    if (!isfinite(e2) || !isfinite(y2))
        return lb_error(ctx, LB_ERR_NUMERIC, "gptq hessian error: non-finite result (NaN/Inf in H, W or What)");
    *err_sq = e2;
    *ref_sq = y2;
    return LB_OK;
}
