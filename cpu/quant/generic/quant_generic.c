/* cpu/quant/generic/quant_generic.c — the portable C kernels of the fused
 * quantizers (the scalar ISA path). Fused like the vector kernels (one pass
 * per row or chunk, uniforms generated per chunk), with the element
 * arithmetic of quant_scalar.h, which is the reference's. Matches ref/ bit
 * for bit; see include/lowbit/cpu_quant.h for the function-to-reference map.
 */
#include "config.h"

#include <string.h>
#include "../quant_scalar.h"

static void uniform_f32_generic(uint64_t seed, uint64_t stream, uint64_t first, int64_t n, float *out)
{
    lb_rng_fill_uniform_f32(seed, stream, first, (size_t)n, out);
}

static int hq_rows_generic(const lbq_hq_job *j, int64_t r0, int64_t r1, const lbq_scratch *s)
{
    const int64_t D = j->D, b = j->block;
    int bad = 0;
    for (int64_t r = r0; r < r1; r++) {
        int64_t sq = 0;
        for (int64_t b0 = 0; b0 < D; b0 += b) {
            const int64_t index = r * D + b0;
            const float *src = j->x + index;
            for (int64_t i = 0; i < b; i++) {
                bad |= lbq_nonfinite(src[i]);
                s->blockd[i] = (double)src[i];
            }
            lbq_fwht(s->blockd, b);
            for (int64_t i = 0; i < b; i++) s->t[i] = (float)(s->blockd[i] * j->norm);
            if (!j->codes.base) { /* transform only (lb_hadamard_cpu) */
                memcpy(j->transformed + index, s->t, (size_t)b * sizeof(float));
                continue;
            }
            int8_t *dst = lbq_codes_dst(&j->codes, index, s->codes);
            sq += lbq_hq_emit_scalar(j, index, s->t, b, dst);
            lbq_codes_commit(&j->codes, index, dst, b);
        }
        if (j->row_sq) j->row_sq[r] = sq;
    }
    return bad;
}

static int range_generic(const float *x, int64_t n, float *mn, float *mx, float *amax)
{
    float lo = x[0], hi = x[0], a = 0.0f;
    int bad = 0;
    for (int64_t i = 0; i < n; i++) {
        bad |= lbq_nonfinite(x[i]);
        lo = x[i] < lo ? x[i] : lo;
        hi = x[i] > hi ? x[i] : hi;
        float f = fabsf(x[i]);
        a = f > a ? f : a;
    }
    *mn = lo;
    *mx = hi;
    *amax = a;
    return bad;
}

static int check_unit_generic(const float *u, int64_t n)
{
    int bad = 0;
    for (int64_t i = 0; i < n; i++) bad |= !(u[i] >= 0.0f && u[i] < 1.0f);
    return bad;
}

static void bit_split_rows_generic(const lbq_bs_job *j, int64_t r0, int64_t r1, const lbq_scratch *s)
{
    const int64_t C = j->C;
    for (int64_t r = r0; r < r1; r++) {
        int64_t h2 = 0, l2 = 0;
        for (int64_t c0 = 0; c0 < C; c0 += LBQ_CHUNK) {
            const int64_t n = C - c0 < LBQ_CHUNK ? C - c0 : LBQ_CHUNK;
            const int64_t index = r * C + c0;
            const float *u = j->uniforms ? j->uniforms + index : s->u1;
            if (!j->uniforms) uniform_f32_generic(j->seed, j->stream, (uint64_t)index, n, s->u1);
            int8_t *hi = lbq_codes_dst(&j->hi, index, s->codes);
            int8_t *lo = lbq_codes_dst(&j->lo, index, s->codes2);
            const float *g = j->g + index;
            for (int64_t i = 0; i < n; i++) {
                if (j->mode == LB_BS_CLEAN)
                    lbq_bs_clean(g[i], j->m, j->rounding, u[i], &hi[i], &lo[i]);
                else
                    lbq_bs_code(g[i], j->sc, j->rounding, u[i], &hi[i], &lo[i]);
                h2 += hi[i] * hi[i];
                l2 += lo[i] * lo[i];
            }
            lbq_codes_commit(&j->hi, index, hi, n);
            lbq_codes_commit(&j->lo, index, lo, n);
        }
        if (j->hi_sq) j->hi_sq[r] = h2;
        if (j->lo_sq) j->lo_sq[r] = l2;
    }
}

static void luq_generic(const lbq_luq_job *j, int64_t i0, int64_t i1, const lbq_scratch *s)
{
    for (int64_t c0 = i0; c0 < i1; c0 += LBQ_CHUNK) {
        const int64_t n = i1 - c0 < LBQ_CHUNK ? i1 - c0 : LBQ_CHUNK;
        if (j->underflow == LB_LUQ_UNDERFLOW_STOCHASTIC)
            uniform_f32_generic(j->seed, j->stream_under, (uint64_t)c0, n, s->u1);
        if (j->rounding == LB_LUQ_ROUND_STOCHASTIC)
            uniform_f32_generic(j->seed, j->stream_round, (uint64_t)c0, n, s->u2);
        const int su = j->underflow == LB_LUQ_UNDERFLOW_STOCHASTIC;
        const int sr = j->rounding == LB_LUQ_ROUND_STOCHASTIC;
        for (int64_t i = 0; i < n; i++) {
            const int8_t q = lbq_luq_code(j->x[c0 + i], j, su ? s->u1[i] : 0.0f, sr ? s->u2[i] : 0.0f);
            if (j->codes) j->codes[c0 + i] = q;
            if (j->values) j->values[c0 + i] = lbq_luq_value(j->alpha, q);
        }
    }
}

static int moments16_generic(const float *x, int64_t n, double *lane_abs, double *lane_sq, float *amax)
{
    float mx = 0.0f;
    int bad = 0;
    for (int l = 0; l < 16; l++) lane_abs[l] = lane_sq[l] = 0.0;
    for (int64_t i = 0; i < n; i++) {
        bad |= lbq_nonfinite(x[i]);
        const double d = (double)x[i];
        lane_abs[i % 16] += fabs(d);
        lane_sq[i % 16] += d * d;
        const float a = fabsf(x[i]);
        mx = a > mx ? a : mx;
    }
    *amax = mx;
    return bad;
}

static int scale_quantize_generic(const lbq_sq_job *j, int64_t i0, int64_t i1, const lbq_scratch *s)
{
    int bad = 0;
    for (int64_t c0 = i0; c0 < i1; c0 += LBQ_CHUNK) {
        const int64_t n = i1 - c0 < LBQ_CHUNK ? i1 - c0 : LBQ_CHUNK;
        const int sr = j->rounding == LB_ROUND_STOCHASTIC;
        if (sr) uniform_f32_generic(j->seed, j->stream, (uint64_t)c0, n, s->u1);
        for (int64_t i = 0; i < n; i++) {
            const float x = j->x[c0 + i];
            bad |= lbq_nonfinite(x);
            const int8_t q = lbq_scale_code(x, j, sr ? s->u1[i] : 0.0f);
            j->codes[c0 + i] = q;
            if (j->dequant) j->dequant[c0 + i] = j->scale * (float)q;
        }
    }
    return bad;
}

const lbq_kernels lbq_kernels_generic = {
    LB_ISA_SCALAR,        "generic",          uniform_f32_generic, hq_rows_generic,
    range_generic,        check_unit_generic, bit_split_rows_generic, luq_generic,
    moments16_generic,    scale_quantize_generic,
};
