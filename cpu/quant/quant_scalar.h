/* cpu/quant/quant_scalar.h — the scalar form of every quantizer's element
 * operation, written as the reference writes it. The generic kernels use
 * these for everything; the vector kernels reproduce them lane by lane and
 * call them for row tails shorter than a vector. Static inline: each ISA
 * file compiles its own copy (with -ffp-contract=off, as everything).
 */
#ifndef LOWBIT_CPU_QUANT_SCALAR_H
#define LOWBIT_CPU_QUANT_SCALAR_H

#include <math.h>
#include <string.h>
#include "quant_kernels.h"
#include "lowbit/rng.h"

static inline float lbq_clampf(float v, float lo, float hi) { return v < lo ? lo : (v > hi ? hi : v); }

/* lb_round for the two RTN rules (half-even: nearbyintf; half-away: roundf). */
static inline float lbq_rtn(lb_rounding rounding, float v)
{
    return rounding == LB_ROUND_HALF_AWAY ? roundf(v) : nearbyintf(v);
}

/* rtn_double of ref/bit_split.c */
static inline double lbq_rtn_double(lb_rounding rounding, double v)
{
    return rounding == LB_ROUND_HALF_AWAY ? round(v) : nearbyint(v);
}

/* LSQ code of a transformed value t (lb_lsq_quantize_ref); *v = t / step. */
static inline int8_t lbq_lsq_code(float t, float step, float lo, float hi, lb_rounding rounding,
                                  float *v)
{
    *v = t / step;
    return (int8_t)lbq_clampf(lbq_rtn(rounding, *v), lo, hi);
}

/* One element of lb_bit_split_ref (CLEAN with m = (double)max|g|, CODE with sc). */
static inline void lbq_bs_clean(float g, double m, lb_rounding rounding, float u, int8_t *hi,
                                int8_t *lo)
{
    float v = (float)((double)g * 98.0 / m);
    float h = (float)lbq_rtn_double(rounding, (double)v / 14.0);
    float r = v - 14.0f * h;
    float l = lbq_clampf(floorf(r + u), -7.0f, 7.0f);
    *hi = (int8_t)h;
    *lo = (int8_t)l;
}

static inline void lbq_bs_code(float g, float sc, lb_rounding rounding, float u, int8_t *hi,
                               int8_t *lo)
{
    float v = g * sc;
    float h = lbq_clampf(lbq_rtn(rounding, v / 14.0f), -6.0f, 6.0f);
    float r = v - 14.0f * h;
    float l = lbq_clampf(floorf(r + u), -6.0f, 6.0f);
    *hi = (int8_t)h;
    *lo = (int8_t)l;
}

/* LUQ code of x (luq_magnitude_code of ref/luq.c with the sign applied). */
static inline int8_t lbq_luq_code(float x, const lbq_luq_job *j, float u_under, float u_round)
{
    const float a = fabsf(x);
    if (!(a > 0.0f)) return 0;
    const float v = (a / j->m) * j->top;
    int mag;
    if (v < 1.0f) {
        int keep = 0;
        switch (j->underflow) {
        case LB_LUQ_UNDERFLOW_STOCHASTIC: keep = v >= 1.0f - u_under; break;
        case LB_LUQ_UNDERFLOW_NEAREST: keep = v >= 0.5f; break;
        case LB_LUQ_UNDERFLOW_FLUSH: keep = 0; break;
        }
        mag = keep ? 1 : 0;
    } else {
        int e;
        const float mant = frexpf(v, &e);
        const float f = mant * 2.0f - 1.0f;
        const int up = j->rounding == LB_LUQ_ROUND_STOCHASTIC ? f >= 1.0f - u_round : f >= 0.5f;
        mag = e - 1 + up + 1;
    }
    return (int8_t)(x < 0.0f ? -mag : mag);
}

/* α·(±2^(|code|-1)) as ref/luq.c writes values. */
static inline float lbq_luq_value(float alpha, int8_t code)
{
    return alpha * (float)lb_luq_code_to_int(code);
}

/* lb_uniform_code for z = 0 (symmetric) / the SAWB code: with a caller-given
 * uniform u for the stochastic mode. */
static inline int8_t lbq_scale_code(float x, const lbq_sq_job *j, float u)
{
    float v = x / j->scale;
    float r;
    if (j->rounding == LB_ROUND_STOCHASTIC) {
        v = v < j->qmin ? j->qmin : v;
        v = v > j->qmax ? j->qmax : v;
        r = floorf(v + u);
    } else {
        r = lbq_rtn(j->rounding, v);
    }
    r = r < j->qmin ? j->qmin : r;
    r = r > j->qmax ? j->qmax : r;
    return (int8_t)r;
}

/* ------------------------------------------------------------ code output */

/* Where the int8 codes of elements [index, index + n) go: the output itself
 * (int8) or the scratch buffer `tmp` (int4, packed by lbq_codes_commit). */
static inline int8_t *lbq_codes_dst(const lbq_codes_out *o, int64_t index, int8_t *tmp)
{
    return o->fmt == LB_INT_S8 ? (int8_t *)o->base + index : tmp;
}

/* Packs n codes of flat elements [index, ...) into nibbles. The byte shared
 * with element index - 1 (odd index) keeps its low nibble; a trailing low
 * nibble is written with a zero high nibble (the next element, if any, is
 * written later by the same thread: rows are split in pairs when C is odd). */
static inline void lbq_codes_commit(const lbq_codes_out *o, int64_t index, const int8_t *tmp,
                                    int64_t n)
{
    if (o->fmt == LB_INT_S8 || n <= 0) return;
    uint8_t *b = (uint8_t *)o->base;
    int64_t i = 0;
    if (index & 1) {
        uint8_t *p = b + index / 2;
        *p = (uint8_t)((*p & 0x0fu) | (((unsigned)tmp[0] & 15u) << 4));
        i = 1;
    }
    uint8_t *dst = b + (index + i) / 2;
    for (; i + 2 <= n; i += 2)
        *dst++ = (uint8_t)(((unsigned)tmp[i] & 15u) | (((unsigned)tmp[i + 1] & 15u) << 4));
    if (i < n) *dst = (uint8_t)((unsigned)tmp[i] & 15u);
}

/* --------------------------------------------------------------- Hadamard */

/* fwht_block of ref/hadamard.c without the normalisation. */
static inline void lbq_fwht(double *x, int64_t b)
{
    for (int64_t h = 1; h < b; h *= 2)
        for (int64_t i = 0; i < b; i += 2 * h)
            for (int64_t j = i; j < i + h; j++) {
                double a = x[j], c = x[j + h];
                x[j] = a + c;
                x[j + h] = a - c;
            }
}

/* Quantizes the transformed values t (n) of flat elements [index, index+n)
 * of an HQ job: codes, quotient, transformed, Σcode² (returned). */
static inline int64_t lbq_hq_emit_scalar(const lbq_hq_job *j, int64_t index, const float *t,
                                         int64_t n, int8_t *codes)
{
    int64_t sq = 0;
    for (int64_t i = 0; i < n; i++) {
        float v;
        int8_t q = lbq_lsq_code(t[i], j->step, j->lo, j->hi, j->rounding, &v);
        codes[i] = q;
        sq += (int64_t)q * q;
        if (j->quotient) j->quotient[index + i] = v;
        if (j->transformed) j->transformed[index + i] = t[i];
    }
    return sq;
}

/* 1 when x is NaN or ±Inf. */
static inline int lbq_nonfinite(float x) { return !isfinite(x); }

#endif
