/* cpu/quant/avx2/quant_avx2.c — AVX2 kernels of the fused quantizers
 * (built with -mavx2 -mfma; FMA is never used: -ffp-contract=off and no FMA
 * intrinsics, so every product and sum is rounded as in the reference).
 *
 * Exactness, kernel by kernel (the reference each must match is named in
 * include/lowbit/cpu_quant.h):
 *  - Philox4x32-10 in 8 lanes, one counter block per lane: vpmuludq gives
 *    the 64-bit products of the even lanes and, after a 32-bit shift, of the
 *    odd lanes; blends put the high and low halves back in lane order. The
 *    lanes hold blocks b0 + {0,2,4,6,1,3,5,7}, so that the 4x4 transpose of
 *    unpack{lo,hi}_epi{32,64} leaves elements 8j..8j+7 in output j.
 *  - Hadamard: 4 doubles per register; stages h = 1, 2 inside a register (a
 *    swap by vpermilpd / vperm2f128 and a blend of a + c and c' - c, which
 *    are the reference's x[j] + x[j+h] and x[j] - x[j+h] per lane), stages
 *    h >= 4 across registers, two at a time (radix 4: the same additions in
 *    the same order per element). Then × 2^{-k/2} in double, vcvtpd2ps.
 *  - float32 x / s is vdivps (IEEE, like C), RTN half-even is vroundps
 *    nearest (= nearbyintf), half-away is trunc + (|frac| >= 1/2 ? ±1 : 0)
 *    (= roundf), floor is vroundps toward -inf (= floorf).
 *  - Integer squares are accumulated in float lanes only up to a chunk
 *    (<= LBQ_CHUNK elements, < 2^24 per lane, exact) and summed in int64.
 * Row tails shorter than a vector use the scalar code of quant_scalar.h.
 */
#include "config.h"

#include <string.h>
#include "../quant_scalar.h"

#include <immintrin.h>

#define PHILOX_M0 0xD2511F53u
#define PHILOX_M1 0xCD9E8D57u
#define PHILOX_W0 0x9E3779B9u
#define PHILOX_W1 0xBB67AE85u

/* ------------------------------------------------------------------ Philox */

/* 32 uniforms: elements 4·b0 .. 4·b0 + 31 of (seed, stream) into out[0..3]
 * (8 consecutive elements each). */
static inline void philox8(uint64_t seed, uint64_t stream, uint64_t b0, __m256 out[4])
{
    static const uint32_t off[8] = {0, 2, 4, 6, 1, 3, 5, 7};
    uint32_t lo[8], hi[8];
    for (int l = 0; l < 8; l++) {
        const uint64_t b = b0 + off[l];
        lo[l] = (uint32_t)b;
        hi[l] = (uint32_t)(b >> 32);
    }
    __m256i c0 = _mm256_loadu_si256((const __m256i *)lo);
    __m256i c1 = _mm256_loadu_si256((const __m256i *)hi);
    __m256i c2 = _mm256_set1_epi32((int)(uint32_t)stream);
    __m256i c3 = _mm256_set1_epi32((int)(uint32_t)(stream >> 32));
    const __m256i m0 = _mm256_set1_epi32((int)PHILOX_M0), m1 = _mm256_set1_epi32((int)PHILOX_M1);
    uint32_t k0 = (uint32_t)seed, k1 = (uint32_t)(seed >> 32);
    for (int round = 0; round < 10; round++) {
        if (round > 0) {
            k0 += PHILOX_W0;
            k1 += PHILOX_W1;
        }
        const __m256i pe0 = _mm256_mul_epu32(c0, m0);
        const __m256i po0 = _mm256_mul_epu32(_mm256_srli_epi64(c0, 32), m0);
        const __m256i pe1 = _mm256_mul_epu32(c2, m1);
        const __m256i po1 = _mm256_mul_epu32(_mm256_srli_epi64(c2, 32), m1);
        const __m256i hi0 = _mm256_blend_epi32(_mm256_srli_epi64(pe0, 32), po0, 0xAA);
        const __m256i lo0 = _mm256_blend_epi32(pe0, _mm256_slli_epi64(po0, 32), 0xAA);
        const __m256i hi1 = _mm256_blend_epi32(_mm256_srli_epi64(pe1, 32), po1, 0xAA);
        const __m256i lo1 = _mm256_blend_epi32(pe1, _mm256_slli_epi64(po1, 32), 0xAA);
        c0 = _mm256_xor_si256(_mm256_xor_si256(hi1, c1), _mm256_set1_epi32((int)k0));
        c1 = lo1;
        c2 = _mm256_xor_si256(_mm256_xor_si256(hi0, c3), _mm256_set1_epi32((int)k1));
        c3 = lo0;
    }
    const __m256i t0 = _mm256_unpacklo_epi32(c0, c1), t1 = _mm256_unpackhi_epi32(c0, c1);
    const __m256i t2 = _mm256_unpacklo_epi32(c2, c3), t3 = _mm256_unpackhi_epi32(c2, c3);
    const __m256i r[4] = {_mm256_unpacklo_epi64(t0, t2), _mm256_unpackhi_epi64(t0, t2),
                          _mm256_unpacklo_epi64(t1, t3), _mm256_unpackhi_epi64(t1, t3)};
    const __m256 scale = _mm256_set1_ps(0x1p-24f);
    for (int j = 0; j < 4; j++)
        out[j] = _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_srli_epi32(r[j], 8)), scale);
}

static void uniform_f32_avx2(uint64_t seed, uint64_t stream, uint64_t first, int64_t n, float *out)
{
    int64_t i = 0;
    for (; i < n && ((first + (uint64_t)i) & 3) != 0; i++)
        out[i] = lb_rng_uniform_f32(seed, stream, first + (uint64_t)i);
    __m256 u[4];
    for (; i + 32 <= n; i += 32) {
        philox8(seed, stream, (first + (uint64_t)i) >> 2, u);
        for (int j = 0; j < 4; j++) _mm256_storeu_ps(out + i + 8 * j, u[j]);
    }
    if (i < n) {
        float tmp[32];
        philox8(seed, stream, (first + (uint64_t)i) >> 2, u);
        for (int j = 0; j < 4; j++) _mm256_storeu_ps(tmp + 8 * j, u[j]);
        memcpy(out + i, tmp, (size_t)(n - i) * sizeof *out);
    }
}

/* ------------------------------------------------------------ small helpers */

/* All-ones lanes where x is NaN or ±Inf. */
static inline __m256 nonfinite_ps(__m256 x)
{
    const __m256 a = _mm256_andnot_ps(_mm256_set1_ps(-0.0f), x);
    return _mm256_cmp_ps(a, _mm256_set1_ps(INFINITY), _CMP_NLT_UQ);
}

static inline __m256 rtn_ps(lb_rounding rounding, __m256 v)
{
    if (rounding != LB_ROUND_HALF_AWAY) return _mm256_round_ps(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    const __m256 t = _mm256_round_ps(v, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
    const __m256 frac = _mm256_andnot_ps(_mm256_set1_ps(-0.0f), _mm256_sub_ps(v, t));
    const __m256 one = _mm256_or_ps(_mm256_and_ps(v, _mm256_set1_ps(-0.0f)), _mm256_set1_ps(1.0f));
    return _mm256_add_ps(t, _mm256_and_ps(_mm256_cmp_ps(frac, _mm256_set1_ps(0.5f), _CMP_GE_OQ), one));
}

static inline __m256d rtn_pd(lb_rounding rounding, __m256d v)
{
    if (rounding != LB_ROUND_HALF_AWAY) return _mm256_round_pd(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    const __m256d t = _mm256_round_pd(v, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
    const __m256d frac = _mm256_andnot_pd(_mm256_set1_pd(-0.0), _mm256_sub_pd(v, t));
    const __m256d one = _mm256_or_pd(_mm256_and_pd(v, _mm256_set1_pd(-0.0)), _mm256_set1_pd(1.0));
    return _mm256_add_pd(t, _mm256_and_pd(_mm256_cmp_pd(frac, _mm256_set1_pd(0.5), _CMP_GE_OQ), one));
}

static inline __m256 floor_ps(__m256 v) { return _mm256_round_ps(v, _MM_FROUND_TO_NEG_INF | _MM_FROUND_NO_EXC); }

static inline __m256 clamp_ps(__m256 v, __m256 lo, __m256 hi)
{
    /* the reference's v < lo ? lo : (v > hi ? hi : v) for non-NaN v */
    return _mm256_min_ps(_mm256_max_ps(v, lo), hi);
}

/* Stores the 8 int32 lanes of q (values in [-128, 127]) as 8 int8. */
static inline void store_i8x8(int8_t *dst, __m256i q)
{
    const __m128i w = _mm_packs_epi32(_mm256_castsi256_si128(q), _mm256_extracti128_si256(q, 1));
    _mm_storel_epi64((__m128i *)dst, _mm_packs_epi16(w, w));
}

/* Σ of the 8 float lanes (integer values, total < 2^24: exact in any order). */
static inline int64_t hsum_int_ps(__m256 v)
{
    float t[8];
    _mm256_storeu_ps(t, v);
    int64_t s = 0;
    for (int i = 0; i < 8; i++) s += (int64_t)t[i];
    return s;
}

/* ---------------------------------------------------------------------- HQ */

/* Butterfly stages h < min(block, 4) inside one register of 4 doubles. */
static inline __m256d fwht_in_register(__m256d v, int64_t block)
{
    if (block >= 2) {
        const __m256d y = _mm256_permute_pd(v, 0x5);
        v = _mm256_blend_pd(_mm256_add_pd(v, y), _mm256_sub_pd(y, v), 0xA);
    }
    if (block >= 4) {
        const __m256d y = _mm256_permute2f128_pd(v, v, 0x01);
        v = _mm256_blend_pd(_mm256_add_pd(v, y), _mm256_sub_pd(y, v), 0xC);
    }
    return v;
}

/* Codes, quotient, transformed and Σq² of the transformed values t (n) of
 * flat elements [index, index + n). */
static int64_t hq_emit(const lbq_hq_job *j, int64_t index, const float *t, int64_t n, int8_t *codes)
{
    const __m256 step = _mm256_set1_ps(j->step), lo = _mm256_set1_ps(j->lo), hi = _mm256_set1_ps(j->hi);
    __m256 sq = _mm256_setzero_ps();
    int64_t total = 0, i = 0;
    for (; i + 8 <= n; i += 8) {
        const __m256 tv = _mm256_loadu_ps(t + i);
        const __m256 v = _mm256_div_ps(tv, step);
        const __m256 q = clamp_ps(rtn_ps(j->rounding, v), lo, hi);
        store_i8x8(codes + i, _mm256_cvtps_epi32(q));
        sq = _mm256_add_ps(sq, _mm256_mul_ps(q, q));
        if (j->quotient) _mm256_storeu_ps(j->quotient + index + i, v);
        if (j->transformed) _mm256_storeu_ps(j->transformed + index + i, tv);
        if ((i & (LBQ_CHUNK - 1)) == LBQ_CHUNK - 8) { /* keep the float lanes exact */
            total += hsum_int_ps(sq);
            sq = _mm256_setzero_ps();
        }
    }
    total += hsum_int_ps(sq);
    return total + lbq_hq_emit_scalar(j, index + i, t + i, n - i, codes + i);
}

/* Stages h0, 2·h0, ..., b/2 of the butterfly on buf (b doubles, in L1), the
 * last one or two fused with × norm and the conversion to float into t. */
static void fwht_memory(double *buf, int64_t b, int64_t h, double norm_d, float *t)
{
    const __m256d norm = _mm256_set1_pd(norm_d);
    int stages = 0;
    for (int64_t s = h; s < b; s *= 2) stages++;
    /* radix 4 while more than two stages remain */
    for (; stages > 2; stages -= 2, h *= 4)
        for (int64_t i = 0; i < b; i += 4 * h)
            for (int64_t j = i; j < i + h; j += 4) {
                const __m256d x0 = _mm256_load_pd(buf + j), x1 = _mm256_load_pd(buf + j + h);
                const __m256d x2 = _mm256_load_pd(buf + j + 2 * h), x3 = _mm256_load_pd(buf + j + 3 * h);
                const __m256d s01 = _mm256_add_pd(x0, x1), d01 = _mm256_sub_pd(x0, x1);
                const __m256d s23 = _mm256_add_pd(x2, x3), d23 = _mm256_sub_pd(x2, x3);
                _mm256_store_pd(buf + j, _mm256_add_pd(s01, s23));
                _mm256_store_pd(buf + j + 2 * h, _mm256_sub_pd(s01, s23));
                _mm256_store_pd(buf + j + h, _mm256_add_pd(d01, d23));
                _mm256_store_pd(buf + j + 3 * h, _mm256_sub_pd(d01, d23));
            }
    if (stages == 2) {
        for (int64_t i = 0; i < b; i += 4 * h)
            for (int64_t j = i; j < i + h; j += 4) {
                const __m256d x0 = _mm256_load_pd(buf + j), x1 = _mm256_load_pd(buf + j + h);
                const __m256d x2 = _mm256_load_pd(buf + j + 2 * h), x3 = _mm256_load_pd(buf + j + 3 * h);
                const __m256d s01 = _mm256_add_pd(x0, x1), d01 = _mm256_sub_pd(x0, x1);
                const __m256d s23 = _mm256_add_pd(x2, x3), d23 = _mm256_sub_pd(x2, x3);
                _mm_storeu_ps(t + j, _mm256_cvtpd_ps(_mm256_mul_pd(_mm256_add_pd(s01, s23), norm)));
                _mm_storeu_ps(t + j + 2 * h, _mm256_cvtpd_ps(_mm256_mul_pd(_mm256_sub_pd(s01, s23), norm)));
                _mm_storeu_ps(t + j + h, _mm256_cvtpd_ps(_mm256_mul_pd(_mm256_add_pd(d01, d23), norm)));
                _mm_storeu_ps(t + j + 3 * h, _mm256_cvtpd_ps(_mm256_mul_pd(_mm256_sub_pd(d01, d23), norm)));
            }
    } else {
        for (int64_t i = 0; i < b; i += 2 * h)
            for (int64_t j = i; j < i + h; j += 4) {
                const __m256d x0 = _mm256_load_pd(buf + j), x1 = _mm256_load_pd(buf + j + h);
                _mm_storeu_ps(t + j, _mm256_cvtpd_ps(_mm256_mul_pd(_mm256_add_pd(x0, x1), norm)));
                _mm_storeu_ps(t + j + h, _mm256_cvtpd_ps(_mm256_mul_pd(_mm256_sub_pd(x0, x1), norm)));
            }
    }
}

static int hq_rows_avx2(const lbq_hq_job *j, int64_t r0, int64_t r1, const lbq_scratch *s)
{
    const int64_t D = j->D, b = j->block;
    const __m256d norm = _mm256_set1_pd(j->norm);
    __m256 bad = _mm256_setzero_ps();
    int bad_tail = 0;
    for (int64_t r = r0; r < r1; r++) {
        int64_t sq = 0;
        if (b <= 4) {
            /* Several blocks per register: segments of LBQ_CHUNK elements. */
            for (int64_t c0 = 0; c0 < D; c0 += LBQ_CHUNK) {
                const int64_t n = D - c0 < LBQ_CHUNK ? D - c0 : LBQ_CHUNK;
                const int64_t index = r * D + c0;
                const float *src = j->x + index;
                int64_t i = 0;
                for (; i + 8 <= n; i += 8) {
                    const __m256 xv = _mm256_loadu_ps(src + i);
                    bad = _mm256_or_ps(bad, nonfinite_ps(xv));
                    __m256d a = _mm256_cvtps_pd(_mm256_castps256_ps128(xv));
                    __m256d c = _mm256_cvtps_pd(_mm256_extractf128_ps(xv, 1));
                    a = _mm256_mul_pd(fwht_in_register(a, b), norm);
                    c = _mm256_mul_pd(fwht_in_register(c, b), norm);
                    _mm256_storeu_ps(s->t + i, _mm256_set_m128(_mm256_cvtpd_ps(c), _mm256_cvtpd_ps(a)));
                }
                for (; i < n; i += b) { /* whole blocks (b | D) */
                    for (int64_t e = 0; e < b; e++) {
                        bad_tail |= lbq_nonfinite(src[i + e]);
                        s->blockd[e] = (double)src[i + e];
                    }
                    lbq_fwht(s->blockd, b);
                    for (int64_t e = 0; e < b; e++) s->t[i + e] = (float)(s->blockd[e] * j->norm);
                }
                if (!j->codes.base) { /* transform only (lb_hadamard_cpu) */
                    memcpy(j->transformed + index, s->t, (size_t)n * sizeof(float));
                    continue;
                }
                int8_t *dst = lbq_codes_dst(&j->codes, index, s->codes);
                sq += hq_emit(j, index, s->t, n, dst);
                lbq_codes_commit(&j->codes, index, dst, n);
            }
        } else {
            /* One block at a time: in-register stages while loading, then
             * the stages across registers in the L1 buffer. */
            for (int64_t b0 = 0; b0 < D; b0 += b) {
                const int64_t index = r * D + b0;
                const float *src = j->x + index;
                for (int64_t i = 0; i < b; i += 8) {
                    const __m256 xv = _mm256_loadu_ps(src + i);
                    bad = _mm256_or_ps(bad, nonfinite_ps(xv));
                    const __m256d a = _mm256_cvtps_pd(_mm256_castps256_ps128(xv));
                    const __m256d c = _mm256_cvtps_pd(_mm256_extractf128_ps(xv, 1));
                    _mm256_store_pd(s->blockd + i, fwht_in_register(a, 4));
                    _mm256_store_pd(s->blockd + i + 4, fwht_in_register(c, 4));
                }
                fwht_memory(s->blockd, b, 4, j->norm, s->t);
                if (!j->codes.base) { /* transform only (lb_hadamard_cpu) */
                    memcpy(j->transformed + index, s->t, (size_t)b * sizeof(float));
                    continue;
                }
                int8_t *dst = lbq_codes_dst(&j->codes, index, s->codes);
                sq += hq_emit(j, index, s->t, b, dst);
                lbq_codes_commit(&j->codes, index, dst, b);
            }
        }
        if (j->row_sq) j->row_sq[r] = sq;
    }
    return bad_tail || _mm256_movemask_ps(bad) != 0;
}

/* ------------------------------------------------------------ reductions */

static int range_avx2(const float *x, int64_t n, float *mn, float *mx, float *amax)
{
    __m256 vmin = _mm256_set1_ps(x[0]), vmax = vmin, vabs = _mm256_setzero_ps(), bad = _mm256_setzero_ps();
    const __m256 sign = _mm256_set1_ps(-0.0f);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        const __m256 v = _mm256_loadu_ps(x + i);
        bad = _mm256_or_ps(bad, nonfinite_ps(v));
        vmin = _mm256_min_ps(vmin, v);
        vmax = _mm256_max_ps(vmax, v);
        vabs = _mm256_max_ps(vabs, _mm256_andnot_ps(sign, v));
    }
    float l[8], h[8], a[8];
    _mm256_storeu_ps(l, vmin);
    _mm256_storeu_ps(h, vmax);
    _mm256_storeu_ps(a, vabs);
    float lo = l[0], hi = h[0], ab = a[0];
    for (int k = 1; k < 8; k++) {
        lo = l[k] < lo ? l[k] : lo;
        hi = h[k] > hi ? h[k] : hi;
        ab = a[k] > ab ? a[k] : ab;
    }
    int b = _mm256_movemask_ps(bad) != 0;
    for (; i < n; i++) {
        b |= lbq_nonfinite(x[i]);
        lo = x[i] < lo ? x[i] : lo;
        hi = x[i] > hi ? x[i] : hi;
        const float f = fabsf(x[i]);
        ab = f > ab ? f : ab;
    }
    *mn = lo;
    *mx = hi;
    *amax = ab;
    return b;
}

static int check_unit_avx2(const float *u, int64_t n)
{
    __m256 bad = _mm256_setzero_ps();
    const __m256 zero = _mm256_setzero_ps(), one = _mm256_set1_ps(1.0f);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        const __m256 v = _mm256_loadu_ps(u + i);
        const __m256 ok = _mm256_and_ps(_mm256_cmp_ps(v, zero, _CMP_GE_OQ), _mm256_cmp_ps(v, one, _CMP_LT_OQ));
        bad = _mm256_or_ps(bad, _mm256_xor_ps(ok, _mm256_castsi256_ps(_mm256_set1_epi32(-1))));
    }
    int b = _mm256_movemask_ps(bad) != 0;
    for (; i < n; i++) b |= !(u[i] >= 0.0f && u[i] < 1.0f);
    return b;
}

static int moments16_avx2(const float *x, int64_t n, double *lane_abs, double *lane_sq, float *amax)
{
    /* lanes 4q..4q+3 in register q */
    __m256d sa[4], ss[4];
    for (int q = 0; q < 4; q++) sa[q] = ss[q] = _mm256_setzero_pd();
    __m256 vmax = _mm256_setzero_ps(), bad = _mm256_setzero_ps();
    const __m256 sign = _mm256_set1_ps(-0.0f);
    const __m256d signd = _mm256_set1_pd(-0.0);
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        const __m256 v0 = _mm256_loadu_ps(x + i), v1 = _mm256_loadu_ps(x + i + 8);
        bad = _mm256_or_ps(bad, _mm256_or_ps(nonfinite_ps(v0), nonfinite_ps(v1)));
        vmax = _mm256_max_ps(vmax, _mm256_max_ps(_mm256_andnot_ps(sign, v0), _mm256_andnot_ps(sign, v1)));
        const __m256d d[4] = {_mm256_cvtps_pd(_mm256_castps256_ps128(v0)), _mm256_cvtps_pd(_mm256_extractf128_ps(v0, 1)),
                              _mm256_cvtps_pd(_mm256_castps256_ps128(v1)), _mm256_cvtps_pd(_mm256_extractf128_ps(v1, 1))};
        for (int q = 0; q < 4; q++) {
            sa[q] = _mm256_add_pd(sa[q], _mm256_andnot_pd(signd, d[q]));
            ss[q] = _mm256_add_pd(ss[q], _mm256_mul_pd(d[q], d[q]));
        }
    }
    for (int q = 0; q < 4; q++) {
        _mm256_storeu_pd(lane_abs + 4 * q, sa[q]);
        _mm256_storeu_pd(lane_sq + 4 * q, ss[q]);
    }
    float m[8];
    _mm256_storeu_ps(m, vmax);
    float mx = 0.0f;
    for (int k = 0; k < 8; k++) mx = m[k] > mx ? m[k] : mx;
    int b = _mm256_movemask_ps(bad) != 0;
    for (; i < n; i++) { /* the tail continues each lane in increasing i */
        b |= lbq_nonfinite(x[i]);
        const double d = (double)x[i];
        lane_abs[i % 16] += fabs(d);
        lane_sq[i % 16] += d * d;
        const float a = fabsf(x[i]);
        mx = a > mx ? a : mx;
    }
    *amax = mx;
    return b;
}

/* ------------------------------------------------------------- bit split */

static void bit_split_rows_avx2(const lbq_bs_job *j, int64_t r0, int64_t r1, const lbq_scratch *s)
{
    const int64_t C = j->C;
    const int clean = j->mode == LB_BS_CLEAN;
    const __m256d m = _mm256_set1_pd(j->m), c98 = _mm256_set1_pd(98.0), c14d = _mm256_set1_pd(14.0);
    const __m256 sc = _mm256_set1_ps(j->sc), c14 = _mm256_set1_ps(14.0f);
    const __m256 lim = _mm256_set1_ps(clean ? 7.0f : 6.0f), nlim = _mm256_set1_ps(clean ? -7.0f : -6.0f);
    for (int64_t r = r0; r < r1; r++) {
        int64_t h2 = 0, l2 = 0;
        for (int64_t c0 = 0; c0 < C; c0 += LBQ_CHUNK) {
            const int64_t n = C - c0 < LBQ_CHUNK ? C - c0 : LBQ_CHUNK;
            const int64_t index = r * C + c0;
            const float *u = j->uniforms ? j->uniforms + index : s->u1;
            if (!j->uniforms) uniform_f32_avx2(j->seed, j->stream, (uint64_t)index, n, s->u1);
            int8_t *hi = lbq_codes_dst(&j->hi, index, s->codes);
            int8_t *lo = lbq_codes_dst(&j->lo, index, s->codes2);
            const float *g = j->g + index;
            __m256 hsq = _mm256_setzero_ps(), lsq = _mm256_setzero_ps();
            int64_t i = 0;
            for (; i + 8 <= n; i += 8) {
                const __m256 gv = _mm256_loadu_ps(g + i);
                __m256 v, h;
                if (clean) {
                    const __m256d g0 = _mm256_cvtps_pd(_mm256_castps256_ps128(gv));
                    const __m256d g1 = _mm256_cvtps_pd(_mm256_extractf128_ps(gv, 1));
                    v = _mm256_set_m128(_mm256_cvtpd_ps(_mm256_div_pd(_mm256_mul_pd(g1, c98), m)),
                                        _mm256_cvtpd_ps(_mm256_div_pd(_mm256_mul_pd(g0, c98), m)));
                    const __m256d v0 = _mm256_cvtps_pd(_mm256_castps256_ps128(v));
                    const __m256d v1 = _mm256_cvtps_pd(_mm256_extractf128_ps(v, 1));
                    h = _mm256_set_m128(_mm256_cvtpd_ps(rtn_pd(j->rounding, _mm256_div_pd(v1, c14d))),
                                        _mm256_cvtpd_ps(rtn_pd(j->rounding, _mm256_div_pd(v0, c14d))));
                } else {
                    v = _mm256_mul_ps(gv, sc);
                    h = clamp_ps(rtn_ps(j->rounding, _mm256_div_ps(v, c14)), nlim, lim);
                }
                const __m256 rr = _mm256_sub_ps(v, _mm256_mul_ps(c14, h));
                const __m256 l = clamp_ps(floor_ps(_mm256_add_ps(rr, _mm256_loadu_ps(u + i))), nlim, lim);
                store_i8x8(hi + i, _mm256_cvtps_epi32(h));
                store_i8x8(lo + i, _mm256_cvtps_epi32(l));
                hsq = _mm256_add_ps(hsq, _mm256_mul_ps(h, h));
                lsq = _mm256_add_ps(lsq, _mm256_mul_ps(l, l));
            }
            h2 += hsum_int_ps(hsq);
            l2 += hsum_int_ps(lsq);
            for (; i < n; i++) {
                if (clean)
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

/* --------------------------------------------------------------------- LUQ */

static void luq_avx2(const lbq_luq_job *j, int64_t i0, int64_t i1, const lbq_scratch *s)
{
    const int su = j->underflow == LB_LUQ_UNDERFLOW_STOCHASTIC;
    const int sr = j->rounding == LB_LUQ_ROUND_STOCHASTIC;
    const __m256 sign = _mm256_set1_ps(-0.0f), zero = _mm256_setzero_ps(), one = _mm256_set1_ps(1.0f);
    const __m256 half = _mm256_set1_ps(0.5f), m = _mm256_set1_ps(j->m), top = _mm256_set1_ps(j->top);
    const __m256 alpha = _mm256_set1_ps(j->alpha);
    const __m256i one_i = _mm256_set1_epi32(1);
    for (int64_t c0 = i0; c0 < i1; c0 += LBQ_CHUNK) {
        const int64_t n = i1 - c0 < LBQ_CHUNK ? i1 - c0 : LBQ_CHUNK;
        if (su) uniform_f32_avx2(j->seed, j->stream_under, (uint64_t)c0, n, s->u1);
        if (sr) uniform_f32_avx2(j->seed, j->stream_round, (uint64_t)c0, n, s->u2);
        const float *x = j->x + c0;
        int64_t i = 0;
        for (; i + 8 <= n; i += 8) {
            const __m256 xv = _mm256_loadu_ps(x + i);
            const __m256 a = _mm256_andnot_ps(sign, xv);
            const __m256 v = _mm256_mul_ps(_mm256_div_ps(a, m), top);
            /* underflow region v < 1: keep -> magnitude code 1 */
            __m256 keep;
            if (su)
                keep = _mm256_cmp_ps(v, _mm256_sub_ps(one, _mm256_loadu_ps(s->u1 + i)), _CMP_GE_OQ);
            else if (j->underflow == LB_LUQ_UNDERFLOW_NEAREST)
                keep = _mm256_cmp_ps(v, half, _CMP_GE_OQ);
            else
                keep = zero;
            const __m256i mag_under = _mm256_and_si256(_mm256_castps_si256(keep), one_i);
            /* v >= 1: v = (1 + f)·2^e' with e' = biased exponent - 127 (v is normal) */
            const __m256i bits = _mm256_castps_si256(v);
            const __m256i e = _mm256_sub_epi32(_mm256_srli_epi32(bits, 23), _mm256_set1_epi32(126));
            const __m256 f = _mm256_sub_ps(
                _mm256_castsi256_ps(_mm256_or_si256(_mm256_and_si256(bits, _mm256_set1_epi32(0x7fffff)),
                                                    _mm256_set1_epi32(0x3f800000))),
                one);
            const __m256 up = sr ? _mm256_cmp_ps(f, _mm256_sub_ps(one, _mm256_loadu_ps(s->u2 + i)), _CMP_GE_OQ)
                                 : _mm256_cmp_ps(f, half, _CMP_GE_OQ);
            /* e' + up + 1 = (biased - 126) + up */
            const __m256i mag_log = _mm256_add_epi32(e, _mm256_and_si256(_mm256_castps_si256(up), one_i));
            __m256i mag = _mm256_castps_si256(_mm256_blendv_ps(_mm256_castsi256_ps(mag_log),
                                                               _mm256_castsi256_ps(mag_under),
                                                               _mm256_cmp_ps(v, one, _CMP_LT_OQ)));
            mag = _mm256_and_si256(mag, _mm256_castps_si256(_mm256_cmp_ps(a, zero, _CMP_GT_OQ)));
            const __m256 neg = _mm256_cmp_ps(xv, zero, _CMP_LT_OQ);
            const __m256i code = _mm256_sub_epi32(_mm256_xor_si256(mag, _mm256_castps_si256(neg)),
                                                  _mm256_castps_si256(neg)); /* ±mag */
            if (j->codes) store_i8x8(j->codes + c0 + i, code);
            if (j->values) {
                /* ±2^(mag-1) as float bits, 0 for mag 0, times α */
                const __m256i p2 = _mm256_slli_epi32(_mm256_add_epi32(mag, _mm256_set1_epi32(126)), 23);
                __m256 pw = _mm256_or_ps(_mm256_castsi256_ps(p2), _mm256_and_ps(neg, sign));
                pw = _mm256_andnot_ps(_mm256_castsi256_ps(_mm256_cmpeq_epi32(mag, _mm256_setzero_si256())), pw);
                _mm256_storeu_ps(j->values + c0 + i, _mm256_mul_ps(alpha, pw));
            }
        }
        for (; i < n; i++) {
            const int8_t q = lbq_luq_code(x[i], j, su ? s->u1[i] : 0.0f, sr ? s->u2[i] : 0.0f);
            if (j->codes) j->codes[c0 + i] = q;
            if (j->values) j->values[c0 + i] = lbq_luq_value(j->alpha, q);
        }
    }
}

/* ------------------------------------------------------- scale quantizer */

static int scale_quantize_avx2(const lbq_sq_job *j, int64_t i0, int64_t i1, const lbq_scratch *s)
{
    const int sr = j->rounding == LB_ROUND_STOCHASTIC;
    const __m256 scale = _mm256_set1_ps(j->scale), lo = _mm256_set1_ps(j->qmin), hi = _mm256_set1_ps(j->qmax);
    __m256 bad = _mm256_setzero_ps();
    int bad_tail = 0;
    for (int64_t c0 = i0; c0 < i1; c0 += LBQ_CHUNK) {
        const int64_t n = i1 - c0 < LBQ_CHUNK ? i1 - c0 : LBQ_CHUNK;
        if (sr) uniform_f32_avx2(j->seed, j->stream, (uint64_t)c0, n, s->u1);
        const float *x = j->x + c0;
        int64_t i = 0;
        for (; i + 8 <= n; i += 8) {
            const __m256 xv = _mm256_loadu_ps(x + i);
            bad = _mm256_or_ps(bad, nonfinite_ps(xv));
            const __m256 v = _mm256_div_ps(xv, scale);
            __m256 q;
            if (sr)
                q = floor_ps(_mm256_add_ps(clamp_ps(v, lo, hi), _mm256_loadu_ps(s->u1 + i)));
            else
                q = rtn_ps(j->rounding, v);
            q = clamp_ps(q, lo, hi);
            const __m256i qi = _mm256_cvtps_epi32(q);
            store_i8x8(j->codes + c0 + i, qi);
            if (j->dequant) _mm256_storeu_ps(j->dequant + c0 + i, _mm256_mul_ps(scale, _mm256_cvtepi32_ps(qi)));
        }
        for (; i < n; i++) {
            bad_tail |= lbq_nonfinite(x[i]);
            const int8_t q = lbq_scale_code(x[i], j, sr ? s->u1[i] : 0.0f);
            j->codes[c0 + i] = q;
            if (j->dequant) j->dequant[c0 + i] = j->scale * (float)q;
        }
    }
    return bad_tail || _mm256_movemask_ps(bad) != 0;
}

const lbq_kernels lbq_kernels_avx2 = {
    LB_ISA_AVX2,      "avx2",          uniform_f32_avx2, hq_rows_avx2,  range_avx2,
    check_unit_avx2,  bit_split_rows_avx2, luq_avx2,     moments16_avx2, scale_quantize_avx2,
};
