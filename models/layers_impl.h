/* models/layers_impl.h — the reference forward and backward of every layer,
 * written once over a real type.
 *
 * This file is included (not compiled on its own) with
 *   real      float or double
 *   FN(name)  the function name for this instantiation
 *   R_SQRT/R_EXP/R_LOG/R_ERF  sqrtf/expf/logf/erff or their double twins
 * models/backend_ref.c instantiates it in float (the "ref" backend);
 * models/layers_f64.c instantiates it in double for the finite-difference
 * gradient checks of tests/test_layers.c, so the checked code is the
 * shipped code. Portable C, no threads, one loop nest per operation in the
 * obvious order (llm.c style); every reduction runs in index order.
 *
 * Semantics, shapes and the accumulate-into-gradients rule are those of
 * lowbit/backend.h.
 */

/* ------------------------------------------------------------------ linear */

static void FN(linear_forward)(real *out, const real *inp, const real *weight, const real *bias,
                               int64_t N, int64_t C, int64_t OC)
{
    for (int64_t n = 0; n < N; n++) {
        const real *x = inp + n * C;     // (C)
        real *y = out + n * OC;          // (OC)
        for (int64_t o = 0; o < OC; o++) {
            const real *w = weight + o * C; // (C)
            real acc = bias ? bias[o] : (real)0;
            for (int64_t i = 0; i < C; i++) acc += x[i] * w[i];
            y[o] = acc;
        }
    }
}

static void FN(linear_backward)(real *dinp, real *dweight, real *dbias, const real *dout,
                                const real *inp, const real *weight, int64_t N, int64_t C,
                                int64_t OC)
{
    // dinp (N, C) += dout (N, OC) . weight (OC, C)
    if (dinp) {
        for (int64_t n = 0; n < N; n++) {
            const real *dy = dout + n * OC;
            real *dx = dinp + n * C;
            for (int64_t o = 0; o < OC; o++) {
                const real *w = weight + o * C;
                const real d = dy[o];
                for (int64_t i = 0; i < C; i++) dx[i] += d * w[i];
            }
        }
    }
    // dweight (OC, C) += dout^T . inp ; dbias (OC) += column sums of dout
    for (int64_t o = 0; o < OC; o++) {
        real *dw = dweight + o * C;
        real db = 0;
        for (int64_t n = 0; n < N; n++) {
            const real d = dout[n * OC + o];
            const real *x = inp + n * C;
            for (int64_t i = 0; i < C; i++) dw[i] += d * x[i];
            db += d;
        }
        if (dbias) dbias[o] += db;
    }
}

/* --------------------------------------------------------------- layernorm */

static void FN(layernorm_forward)(real *out, real *mean, real *rstd, const real *inp,
                                  const real *weight, const real *bias, int64_t N, int64_t C,
                                  float eps)
{
    for (int64_t n = 0; n < N; n++) {
        const real *x = inp + n * C; // (C)
        real m = 0;
        for (int64_t i = 0; i < C; i++) m += x[i];
        m = m / (real)C;
        real v = 0;
        for (int64_t i = 0; i < C; i++) {
            const real d = x[i] - m;
            v += d * d;
        }
        v = v / (real)C;
        const real s = (real)1 / R_SQRT(v + (real)eps);
        real *y = out + n * C;
        for (int64_t i = 0; i < C; i++) y[i] = (x[i] - m) * s * weight[i] + bias[i];
        mean[n] = m;
        rstd[n] = s;
    }
}

/* The input gradient of one row x (C) with its mean m and rstd s: dx += ...
 * (inline, so that a caller compiled per ISA gets it in its own code). */
static inline void FN(layernorm_backward_row)(real *dx, const real *dy, const real *x,
                                              const real *weight, real m, real s, int64_t C)
{
    // the two row means the input gradient needs
    real dnorm_mean = 0, dnorm_norm_mean = 0;
    for (int64_t i = 0; i < C; i++) {
        const real norm = (x[i] - m) * s;
        const real dnorm = weight[i] * dy[i];
        dnorm_mean += dnorm;
        dnorm_norm_mean += dnorm * norm;
    }
    dnorm_mean = dnorm_mean / (real)C;
    dnorm_norm_mean = dnorm_norm_mean / (real)C;
    for (int64_t i = 0; i < C; i++) {
        const real norm = (x[i] - m) * s;
        const real dnorm = weight[i] * dy[i];
        dx[i] += (dnorm - dnorm_mean - norm * dnorm_norm_mean) * s;
    }
}

static void FN(layernorm_backward)(real *dinp, real *dweight, real *dbias, const real *dout,
                                   const real *inp, const real *weight, const real *mean,
                                   const real *rstd, int64_t N, int64_t C)
{
    for (int64_t n = 0; n < N; n++)
        FN(layernorm_backward_row)(dinp + n * C, dout + n * C, inp + n * C, weight, mean[n],
                                   rstd[n], C);
    // parameter gradients: column sums over rows, in row order
    for (int64_t n = 0; n < N; n++) {
        const real *x = inp + n * C, *dy = dout + n * C;
        const real m = mean[n], s = rstd[n];
        for (int64_t i = 0; i < C; i++) {
            dweight[i] += (x[i] - m) * s * dy[i];
            dbias[i] += dy[i];
        }
    }
}

/* -------------------------------------------------------------------- GELU */

#define GELU_INV_SQRT2 ((real)0.70710678118654752440)
#define GELU_INV_SQRT_2PI ((real)0.39894228040143267794)

static void FN(gelu_forward)(real *out, const real *inp, int64_t n)
{
    for (int64_t i = 0; i < n; i++) {
        const real x = inp[i];
        out[i] = (real)0.5 * x * ((real)1 + R_ERF(x * GELU_INV_SQRT2));
    }
}

static void FN(gelu_backward)(real *dinp, const real *inp, const real *dout, int64_t n)
{
    for (int64_t i = 0; i < n; i++) {
        const real x = inp[i];
        const real cdf = (real)0.5 * ((real)1 + R_ERF(x * GELU_INV_SQRT2));
        const real pdf = GELU_INV_SQRT_2PI * R_EXP((real)-0.5 * x * x);
        dinp[i] += (cdf + x * pdf) * dout[i];
    }
}

/* ---------------------------------------------------- elementwise helpers */

static void FN(add)(real *out, const real *a, const real *b, int64_t n)
{
    for (int64_t i = 0; i < n; i++) out[i] = a[i] + b[i];
}

static void FN(add_broadcast)(real *out, const real *row, int64_t B, int64_t n)
{
    for (int64_t b = 0; b < B; b++)
        for (int64_t i = 0; i < n; i++) out[b * n + i] += row[i];
}

static void FN(sum_rows)(real *drow, const real *dout, int64_t B, int64_t n)
{
    for (int64_t b = 0; b < B; b++)
        for (int64_t i = 0; i < n; i++) drow[i] += dout[b * n + i];
}

/* --------------------------------------------------------------- embedding */

static void FN(embedding_forward)(real *out, const int32_t *ids, const real *table, int64_t N,
                                  int64_t C)
{
    for (int64_t n = 0; n < N; n++) {
        const real *row = table + (int64_t)ids[n] * C;
        for (int64_t i = 0; i < C; i++) out[n * C + i] = row[i];
    }
}

static void FN(embedding_backward)(real *dtable, const real *dout, const int32_t *ids, int64_t N,
                                   int64_t C)
{
    for (int64_t n = 0; n < N; n++) {
        real *row = dtable + (int64_t)ids[n] * C;
        for (int64_t i = 0; i < C; i++) row[i] += dout[n * C + i];
    }
}

/* ------------------------------------------------------------ mean pooling */

static void FN(meanpool_forward)(real *out, const real *inp, const uint8_t *mask, int64_t B,
                                 int64_t T, int64_t C)
{
    for (int64_t b = 0; b < B; b++) {
        real *y = out + b * C; // (C)
        for (int64_t i = 0; i < C; i++) y[i] = 0;
        int64_t count = 0;
        for (int64_t t = 0; t < T; t++) {
            if (mask && !mask[b * T + t]) continue;
            const real *x = inp + (b * T + t) * C;
            for (int64_t i = 0; i < C; i++) y[i] += x[i];
            count++;
        }
        if (count > 0)
            for (int64_t i = 0; i < C; i++) y[i] = y[i] / (real)count;
    }
}

static void FN(meanpool_backward)(real *dinp, const real *dout, const uint8_t *mask, int64_t B,
                                  int64_t T, int64_t C)
{
    for (int64_t b = 0; b < B; b++) {
        int64_t count = 0;
        for (int64_t t = 0; t < T; t++) count += (!mask || mask[b * T + t]) ? 1 : 0;
        if (count == 0) continue;
        const real inv = (real)1 / (real)count;
        for (int64_t t = 0; t < T; t++) {
            if (mask && !mask[b * T + t]) continue;
            real *dx = dinp + (b * T + t) * C;
            for (int64_t i = 0; i < C; i++) dx[i] += dout[b * C + i] * inv;
        }
    }
}

/* --------------------------------------------------------------- attention */

/* Numerically stable logistic function (outlier_free spec section 2.4). */
static real FN(sigmoid)(real z)
{
    if (z >= 0) return (real)1 / ((real)1 + R_EXP(-z));
    const real e = R_EXP(z);
    return e / ((real)1 + e);
}

/* Is key j of query t in batch row b valid? */
static int FN(key_valid)(const lb_attention_shape *s, const uint8_t *key_mask, int64_t b,
                         int64_t t, int64_t j)
{
    if (s->causal && j > t) return 0;
    if (key_mask && !key_mask[b * s->T + j]) return 0;
    return 1;
}

/* The attention weight y_j used for the values, from the softmax p_j: the
 * seam where the probability function is chosen (softmax or clipped). */
static real FN(attention_weight)(const lb_attention_shape *s, real p)
{
    if (!s->clipped) return p;
    const real y = ((real)s->zeta - (real)s->gamma) * p + (real)s->gamma;
    // written with comparisons (not fmin/fmax) so that a NaN propagates
    return y < 0 ? (real)0 : (y > 1 ? (real)1 : y);
}

/* One row of softmax probabilities over the valid keys: p (T) from the
 * scores of query t of head h in batch row b. */
static void FN(attention_row_probs)(real *p, const real *qkv, const uint8_t *key_mask, int64_t b,
                                    int64_t h, int64_t t, const lb_attention_shape *s)
{
    const int64_t T = s->T, C = s->C, hs = C / s->NH;
    const real scale = (real)1 / R_SQRT((real)hs);
    const real *q = qkv + (b * T + t) * 3 * C + h * hs; // (hs)
    real maxval = 0;
    int any = 0;
    for (int64_t j = 0; j < T; j++) {
        p[j] = 0;
        if (!FN(key_valid)(s, key_mask, b, t, j)) continue;
        const real *k = qkv + (b * T + j) * 3 * C + C + h * hs; // (hs)
        real dot = 0;
        for (int64_t i = 0; i < hs; i++) dot += q[i] * k[i];
        p[j] = dot * scale;
        if (!any || p[j] > maxval) maxval = p[j];
        any = 1;
    }
    if (!any) return; // no valid key: p = 0
    real sum = 0;
    for (int64_t j = 0; j < T; j++) {
        if (!FN(key_valid)(s, key_mask, b, t, j)) continue;
        p[j] = R_EXP(p[j] - maxval);
        sum += p[j];
    }
    const real inv = (real)1 / sum;
    for (int64_t j = 0; j < T; j++)
        if (FN(key_valid)(s, key_mask, b, t, j)) p[j] *= inv;
}

/* Forward of query rows t of head h in batch row b (all t of (b, h)). */
static void FN(attention_forward_head)(real *out, real *probs, real *context, real *gate,
                                       const real *qkv, const uint8_t *key_mask,
                                       const real *gate_in, const real *gate_w,
                                       const real *gate_b, const lb_attention_shape *s,
                                       int64_t b, int64_t h)
{
    const int64_t T = s->T, C = s->C, NH = s->NH, hs = C / NH;
    for (int64_t t = 0; t < T; t++) {
        real *p = probs + ((b * NH + h) * T + t) * T; // (T)
        FN(attention_row_probs)(p, qkv, key_mask, b, h, t, s);
        // c = sum_j y_j v_j
        real *c = (s->gated ? context : out) + (b * T + t) * C + h * hs; // (hs)
        for (int64_t i = 0; i < hs; i++) c[i] = 0;
        for (int64_t j = 0; j < T; j++) {
            if (!FN(key_valid)(s, key_mask, b, t, j)) continue;
            const real y = FN(attention_weight)(s, p[j]);
            const real *v = qkv + (b * T + j) * 3 * C + 2 * C + h * hs; // (hs)
            for (int64_t i = 0; i < hs; i++) c[i] += y * v[i];
        }
        if (s->gated) {
            // pi = sigmoid(x[b, t, slice_h] . w_h + b_h), out = pi c
            const real *x = gate_in + (b * T + t) * C + h * hs; // (hs)
            const real *w = gate_w + h * hs;                    // (hs)
            real z = gate_b[h];
            for (int64_t i = 0; i < hs; i++) z += x[i] * w[i];
            const real pi = FN(sigmoid)(z);
            gate[(b * NH + h) * T + t] = pi;
            real *o = out + (b * T + t) * C + h * hs;
            for (int64_t i = 0; i < hs; i++) o[i] = pi * c[i];
        }
    }
}

/* Backward of (b, h): accumulates dq, dk, dv of this head into dqkv and, when
 * gated, dgate_in of this head's slice; writes dz (the gate-logit gradient)
 * to dgate_logit (T) for the parameter reduction done afterwards.
 * u: (T) scratch. */
static void FN(attention_backward_head)(real *dqkv, real *dgate_in, real *dgate_logit, real *u,
                                        const real *dout, const real *qkv, const real *probs,
                                        const real *context, const real *gate,
                                        const uint8_t *key_mask, const real *gate_w,
                                        const lb_attention_shape *s, int64_t b, int64_t h)
{
    const int64_t T = s->T, C = s->C, NH = s->NH, hs = C / NH;
    const real scale = (real)1 / R_SQRT((real)hs);
    const real stretch = (real)s->zeta - (real)s->gamma;
    for (int64_t t = 0; t < T; t++) {
        const real *p = probs + ((b * NH + h) * T + t) * T;      // (T)
        const real *dy_out = dout + (b * T + t) * C + h * hs;     // (hs)
        real pi = 1;
        if (s->gated) {
            // d pi = <dout, c>; dz = pi (1 - pi) d pi; dgate_in += dz w_h
            const real *c = context + (b * T + t) * C + h * hs;
            pi = gate[(b * NH + h) * T + t];
            real dpi = 0;
            for (int64_t i = 0; i < hs; i++) dpi += dy_out[i] * c[i];
            const real dz = pi * ((real)1 - pi) * dpi;
            dgate_logit[t] = dz;
            real *dx = dgate_in + (b * T + t) * C + h * hs;
            const real *w = gate_w + h * hs;
            for (int64_t i = 0; i < hs; i++) dx[i] += dz * w[i];
        }
        // dc = pi dout; dv_j += y_j dc; u_j = dL/dp_j through the clip
        real pu = 0;
        for (int64_t j = 0; j < T; j++) {
            u[j] = 0;
            if (!FN(key_valid)(s, key_mask, b, t, j)) continue;
            const real y = FN(attention_weight)(s, p[j]);
            const real *v = qkv + (b * T + j) * 3 * C + 2 * C + h * hs;
            real *dv = dqkv + (b * T + j) * 3 * C + 2 * C + h * hs;
            real dydj = 0;
            for (int64_t i = 0; i < hs; i++) {
                const real dc = pi * dy_out[i];
                dv[i] += y * dc;
                dydj += dc * v[i];
            }
            if (s->clipped) {
                const real sj = stretch * p[j] + (real)s->gamma;
                dydj = (sj >= 0 && sj <= 1) ? stretch * dydj : (real)0;
            }
            u[j] = dydj;
            pu += dydj * p[j];
        }
        // softmax backward: dx_j = p_j (u_j - sum_i u_i p_i); then dq, dk
        const real *q = qkv + (b * T + t) * 3 * C + h * hs;
        real *dq = dqkv + (b * T + t) * 3 * C + h * hs;
        for (int64_t j = 0; j < T; j++) {
            if (!FN(key_valid)(s, key_mask, b, t, j)) continue;
            const real dx = p[j] * (u[j] - pu) * scale;
            const real *k = qkv + (b * T + j) * 3 * C + C + h * hs;
            real *dk = dqkv + (b * T + j) * 3 * C + C + h * hs;
            for (int64_t i = 0; i < hs; i++) {
                dq[i] += dx * k[i];
                dk[i] += dx * q[i];
            }
        }
    }
}

/* Gate parameter gradients of head h from the saved dz (B, NH, T). */
static void FN(attention_gate_params_backward)(real *dgate_w, real *dgate_b,
                                               const real *dgate_logit, const real *gate_in,
                                               const lb_attention_shape *s, int64_t h)
{
    const int64_t B = s->B, T = s->T, C = s->C, NH = s->NH, hs = C / NH;
    real *dw = dgate_w + h * hs;
    for (int64_t b = 0; b < B; b++)
        for (int64_t t = 0; t < T; t++) {
            const real dz = dgate_logit[(b * NH + h) * T + t];
            const real *x = gate_in + (b * T + t) * C + h * hs;
            for (int64_t i = 0; i < hs; i++) dw[i] += dz * x[i];
            dgate_b[h] += dz;
        }
}

static void FN(attention_forward)(real *out, real *probs, real *context, real *gate,
                                  const real *qkv, const uint8_t *key_mask, const real *gate_in,
                                  const real *gate_w, const real *gate_b,
                                  const lb_attention_shape *s)
{
    for (int64_t b = 0; b < s->B; b++)
        for (int64_t h = 0; h < s->NH; h++)
            FN(attention_forward_head)(out, probs, context, gate, qkv, key_mask, gate_in, gate_w,
                                       gate_b, s, b, h);
}

static void FN(attention_backward)(real *dqkv, real *dgate_in, real *dgate_w, real *dgate_b,
                                   real *scratch, const real *dout, const real *qkv,
                                   const real *probs, const real *context, const real *gate,
                                   const uint8_t *key_mask, const real *gate_in,
                                   const real *gate_w, const lb_attention_shape *s)
{
    const int64_t B = s->B, T = s->T, NH = s->NH;
    real *dgate_logit = scratch;           // (B, NH, T)
    real *u_all = scratch + B * NH * T;    // (B, NH, T): one row of u per (b, h)
    for (int64_t b = 0; b < B; b++)
        for (int64_t h = 0; h < NH; h++)
            FN(attention_backward_head)(dqkv, dgate_in, dgate_logit + (b * NH + h) * T,
                                        u_all + (b * NH + h) * T, dout, qkv, probs, context,
                                        gate, key_mask, gate_w, s, b, h);
    if (s->gated)
        for (int64_t h = 0; h < NH; h++)
            FN(attention_gate_params_backward)(dgate_w, dgate_b, dgate_logit, gate_in, s, h);
}

/* ----------------------------------------------------------- cross-entropy */

static void FN(crossentropy_forward)(real *losses, real *probs, const real *logits,
                                     const int32_t *targets, int64_t N, int64_t V)
{
    for (int64_t n = 0; n < N; n++) {
        const real *x = logits + n * V; // (V)
        real *p = probs + n * V;        // (V)
        real maxval = x[0];
        for (int64_t i = 1; i < V; i++)
            if (x[i] > maxval) maxval = x[i];
        real sum = 0;
        for (int64_t i = 0; i < V; i++) {
            p[i] = R_EXP(x[i] - maxval);
            sum += p[i];
        }
        const real inv = (real)1 / sum;
        for (int64_t i = 0; i < V; i++) p[i] *= inv;
        // loss = logsumexp(x) - x[target], without log(p) underflow
        losses[n] = targets[n] < 0 ? (real)0 : R_LOG(sum) + maxval - x[targets[n]];
    }
}

static void FN(crossentropy_backward)(real *dlogits, const real *probs, const int32_t *targets,
                                      int64_t N, int64_t V, float scale)
{
    for (int64_t n = 0; n < N; n++) {
        if (targets[n] < 0) continue;
        const real *p = probs + n * V;
        real *d = dlogits + n * V;
        for (int64_t i = 0; i < V; i++) {
            const real indicator = (i == targets[n]) ? (real)1 : (real)0;
            d[i] += (real)scale * (p[i] - indicator);
        }
    }
}

/* ------------------------------------------------------------------- AdamW */

static void FN(adamw_update)(real *params, const real *grads, real *m, real *v, int64_t n,
                             float lr, float beta1, float beta2, float bc1, float bc2, float eps,
                             float weight_decay)
{
    for (int64_t i = 0; i < n; i++) {
        const real g = grads[i];
        m[i] = (real)beta1 * m[i] + ((real)1 - (real)beta1) * g;
        v[i] = (real)beta2 * v[i] + ((real)1 - (real)beta2) * g * g;
        const real mhat = m[i] / (real)bc1;
        const real vhat = v[i] / (real)bc2;
        params[i] -= (real)lr * (mhat / (R_SQRT(vhat) + (real)eps) +
                                 (real)weight_decay * params[i]);
    }
}

/* ------------------------------------------------------------- reductions */

static double FN(sum_squares)(const real *x, int64_t n)
{
    double total = 0;
    for (int64_t start = 0; start < n; start += LB_REDUCE_BLOCK) {
        const int64_t end = start + LB_REDUCE_BLOCK < n ? start + LB_REDUCE_BLOCK : n;
        double block = 0;
        for (int64_t i = start; i < end; i++) block += (double)x[i] * (double)x[i];
        total += block;
    }
    return total;
}

static void FN(scale)(real *x, int64_t n, float s)
{
    for (int64_t i = 0; i < n; i++) x[i] *= (real)s;
}
