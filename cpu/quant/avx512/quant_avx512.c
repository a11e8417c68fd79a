/* cpu/quant/avx512/quant_avx512.c — AVX-512 (F/BW/VL/DQ) kernels of the
 * fused quantizers. The same algorithms and exactness argument as the AVX2
 * file (cpu/quant/avx2/quant_avx2.c), twice as wide, with write masks for
 * row tails instead of scalar code:
 *  - Philox4x32-10 in 16 lanes (blocks b0 + {0,4,8,12,1,5,9,13,...}, so the
 *    in-128-bit transpose leaves elements 16j..16j+15 in output j), the
 *    32x32 -> 64-bit products from vpmuludq on even and odd lanes;
 *  - Hadamard in 8 double lanes: stages h = 1, 2, 4 in a register
 *    (vpermilpd, vpermpd, vshuff64x2 + masked blend of a + c and c' - c),
 *    h >= 8 across registers (radix 4, the reference's additions per
 *    element), × 2^{-k/2} in double, vcvtpd2ps;
 *  - vdivps, vrndscaleps (nearest-even, toward zero, toward -inf) and
 *    vcvtps2dq on integer-valued floats: the C operations of the reference.
 * Masked-off tail lanes load zeros, which transform to zero codes (blocks
 * never straddle a tail) and add +0 to the SAWB lanes and the norms.
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

/* 64 uniforms: elements 4·b0 .. 4·b0 + 63 into out[0..3] (16 each). */
static inline void philox16(uint64_t seed, uint64_t stream, uint64_t b0, __m512 out[4])
{
    static const uint32_t off[16] = {0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15};
    uint32_t lo[16], hi[16];
    for (int l = 0; l < 16; l++) {
        const uint64_t b = b0 + off[l];
        lo[l] = (uint32_t)b;
        hi[l] = (uint32_t)(b >> 32);
    }
    __m512i c0 = _mm512_loadu_si512(lo);
    __m512i c1 = _mm512_loadu_si512(hi);
    __m512i c2 = _mm512_set1_epi32((int)(uint32_t)stream);
    __m512i c3 = _mm512_set1_epi32((int)(uint32_t)(stream >> 32));
    const __m512i m0 = _mm512_set1_epi32((int)PHILOX_M0), m1 = _mm512_set1_epi32((int)PHILOX_M1);
    const __mmask16 odd = 0xAAAA;
    uint32_t k0 = (uint32_t)seed, k1 = (uint32_t)(seed >> 32);
    for (int round = 0; round < 10; round++) {
        if (round > 0) {
            k0 += PHILOX_W0;
            k1 += PHILOX_W1;
        }
        const __m512i pe0 = _mm512_mul_epu32(c0, m0);
        const __m512i po0 = _mm512_mul_epu32(_mm512_srli_epi64(c0, 32), m0);
        const __m512i pe1 = _mm512_mul_epu32(c2, m1);
        const __m512i po1 = _mm512_mul_epu32(_mm512_srli_epi64(c2, 32), m1);
        const __m512i hi0 = _mm512_mask_blend_epi32(odd, _mm512_srli_epi64(pe0, 32), po0);
        const __m512i lo0 = _mm512_mask_blend_epi32(odd, pe0, _mm512_slli_epi64(po0, 32));
        const __m512i hi1 = _mm512_mask_blend_epi32(odd, _mm512_srli_epi64(pe1, 32), po1);
        const __m512i lo1 = _mm512_mask_blend_epi32(odd, pe1, _mm512_slli_epi64(po1, 32));
        c0 = _mm512_xor_si512(_mm512_xor_si512(hi1, c1), _mm512_set1_epi32((int)k0));
        c1 = lo1;
        c2 = _mm512_xor_si512(_mm512_xor_si512(hi0, c3), _mm512_set1_epi32((int)k1));
        c3 = lo0;
    }
    const __m512i t0 = _mm512_unpacklo_epi32(c0, c1), t1 = _mm512_unpackhi_epi32(c0, c1);
    const __m512i t2 = _mm512_unpacklo_epi32(c2, c3), t3 = _mm512_unpackhi_epi32(c2, c3);
    const __m512i r[4] = {_mm512_unpacklo_epi64(t0, t2), _mm512_unpackhi_epi64(t0, t2),
                          _mm512_unpacklo_epi64(t1, t3), _mm512_unpackhi_epi64(t1, t3)};
    const __m512 scale = _mm512_set1_ps(0x1p-24f);
    for (int j = 0; j < 4; j++)
        out[j] = _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_srli_epi32(r[j], 8)), scale);
}

static void uniform_f32_avx512(uint64_t seed, uint64_t stream, uint64_t first, int64_t n, float *out)
{
    int64_t i = 0;
    for (; i < n && ((first + (uint64_t)i) & 3) != 0; i++)
        out[i] = lb_rng_uniform_f32(seed, stream, first + (uint64_t)i);
    __m512 u[4];
    for (; i + 64 <= n; i += 64) {
        philox16(seed, stream, (first + (uint64_t)i) >> 2, u);
        for (int j = 0; j < 4; j++) _mm512_storeu_ps(out + i + 16 * j, u[j]);
    }
    if (i < n) {
        philox16(seed, stream, (first + (uint64_t)i) >> 2, u);
        for (int j = 0; j < 4 && i + 16 * j < n; j++) {
            const int64_t left = n - i - 16 * j;
            const __mmask16 k = (__mmask16)(left >= 16 ? 0xffffu : (1u << left) - 1u);
            _mm512_mask_storeu_ps(out + i + 16 * j, k, u[j]);
        }
    }
}

/* ------------------------------------------------------------ small helpers */

static inline __mmask16 tail_mask(int64_t left)
{
    return (__mmask16)(left >= 16 ? 0xffffu : (1u << left) - 1u);
}

/* Lanes where x is NaN or ±Inf. */
static inline __mmask16 nonfinite_mask(__m512 x)
{
    return _mm512_cmp_ps_mask(_mm512_abs_ps(x), _mm512_set1_ps(INFINITY), _CMP_NLT_UQ);
}

static inline __m512 rtn_ps(lb_rounding rounding, __m512 v)
{
    if (rounding != LB_ROUND_HALF_AWAY) return _mm512_roundscale_ps(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    const __m512 t = _mm512_roundscale_ps(v, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
    const __mmask16 up = _mm512_cmp_ps_mask(_mm512_abs_ps(_mm512_sub_ps(v, t)), _mm512_set1_ps(0.5f), _CMP_GE_OQ);
    const __m512 one = _mm512_or_ps(_mm512_and_ps(v, _mm512_set1_ps(-0.0f)), _mm512_set1_ps(1.0f));
    return _mm512_mask_add_ps(t, up, t, one);
}

static inline __m512d rtn_pd(lb_rounding rounding, __m512d v)
{
    if (rounding != LB_ROUND_HALF_AWAY) return _mm512_roundscale_pd(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    const __m512d t = _mm512_roundscale_pd(v, _MM_FROUND_TO_ZERO | _MM_FROUND_NO_EXC);
    const __mmask8 up = _mm512_cmp_pd_mask(_mm512_abs_pd(_mm512_sub_pd(v, t)), _mm512_set1_pd(0.5), _CMP_GE_OQ);
    const __m512d one = _mm512_or_pd(_mm512_and_pd(v, _mm512_set1_pd(-0.0)), _mm512_set1_pd(1.0));
    return _mm512_mask_add_pd(t, up, t, one);
}

static inline __m512 floor_ps(__m512 v) { return _mm512_roundscale_ps(v, _MM_FROUND_TO_NEG_INF | _MM_FROUND_NO_EXC); }

static inline __m512 clamp_ps(__m512 v, __m512 lo, __m512 hi) { return _mm512_min_ps(_mm512_max_ps(v, lo), hi); }

/* float lanes 0..7 and 8..15 as doubles */
static inline __m512d lo_pd(__m512 v) { return _mm512_cvtps_pd(_mm512_castps512_ps256(v)); }
static inline __m512d hi_pd(__m512 v) { return _mm512_cvtps_pd(_mm512_extractf32x8_ps(v, 1)); }

/* two 8-double vectors rounded to one 16-float vector */
static inline __m512 join_ps(__m512d lo, __m512d hi)
{
    return _mm512_insertf32x8(_mm512_castps256_ps512(_mm512_cvtpd_ps(lo)), _mm512_cvtpd_ps(hi), 1);
}

/* Σ of 16 integer-valued float lanes (total < 2^24: exact). */
static inline int64_t hsum_int_ps(__m512 v)
{
    float t[16];
    _mm512_storeu_ps(t, v);
    int64_t s = 0;
    for (int i = 0; i < 16; i++) s += (int64_t)t[i];
    return s;
}

/* ---------------------------------------------------------------------- HQ */

/* Butterfly stages h < min(block, 8) inside one register of 8 doubles. */
static inline __m512d fwht_in_register(__m512d v, int64_t block)
{
    if (block >= 2) {
        const __m512d y = _mm512_permute_pd(v, 0x55);
        v = _mm512_mask_blend_pd(0xAA, _mm512_add_pd(v, y), _mm512_sub_pd(y, v));
    }
    if (block >= 4) {
        const __m512d y = _mm512_permutex_pd(v, _MM_SHUFFLE(1, 0, 3, 2));
        v = _mm512_mask_blend_pd(0xCC, _mm512_add_pd(v, y), _mm512_sub_pd(y, v));
    }
    if (block >= 8) {
        const __m512d y = _mm512_shuffle_f64x2(v, v, _MM_SHUFFLE(1, 0, 3, 2));
        v = _mm512_mask_blend_pd(0xF0, _mm512_add_pd(v, y), _mm512_sub_pd(y, v));
    }
    return v;
}

static int64_t hq_emit(const lbq_hq_job *j, int64_t index, const float *t, int64_t n, int8_t *codes)
{
    const __m512 step = _mm512_set1_ps(j->step), lo = _mm512_set1_ps(j->lo), hi = _mm512_set1_ps(j->hi);
    __m512 sq = _mm512_setzero_ps();
    int64_t total = 0;
    for (int64_t i = 0; i < n; i += 16) {
        const __mmask16 k = tail_mask(n - i);
        const __m512 tv = _mm512_maskz_loadu_ps(k, t + i);
        const __m512 v = _mm512_div_ps(tv, step);
        const __m512 q = clamp_ps(rtn_ps(j->rounding, v), lo, hi);
        _mm512_mask_cvtepi32_storeu_epi8(codes + i, k, _mm512_cvtps_epi32(q));
        sq = _mm512_add_ps(sq, _mm512_mul_ps(q, q));
        if (j->quotient) _mm512_mask_storeu_ps(j->quotient + index + i, k, v);
        if (j->transformed) _mm512_mask_storeu_ps(j->transformed + index + i, k, tv);
        if ((i & (LBQ_CHUNK - 1)) == LBQ_CHUNK - 16) {
            total += hsum_int_ps(sq);
            sq = _mm512_setzero_ps();
        }
    }
    return total + hsum_int_ps(sq);
}

/* Stages h, 2h, ..., b/2 on buf (b doubles), the last one or two fused
 * with × norm and the conversion to float into t. */
static void fwht_memory(double *buf, int64_t b, int64_t h, double norm_d, float *t)
{
    const __m512d norm = _mm512_set1_pd(norm_d);
    int stages = 0;
    for (int64_t s = h; s < b; s *= 2) stages++;
    for (; stages > 2; stages -= 2, h *= 4)
        for (int64_t i = 0; i < b; i += 4 * h)
            for (int64_t j = i; j < i + h; j += 8) {
                const __m512d x0 = _mm512_load_pd(buf + j), x1 = _mm512_load_pd(buf + j + h);
                const __m512d x2 = _mm512_load_pd(buf + j + 2 * h), x3 = _mm512_load_pd(buf + j + 3 * h);
                const __m512d s01 = _mm512_add_pd(x0, x1), d01 = _mm512_sub_pd(x0, x1);
                const __m512d s23 = _mm512_add_pd(x2, x3), d23 = _mm512_sub_pd(x2, x3);
                _mm512_store_pd(buf + j, _mm512_add_pd(s01, s23));
                _mm512_store_pd(buf + j + 2 * h, _mm512_sub_pd(s01, s23));
                _mm512_store_pd(buf + j + h, _mm512_add_pd(d01, d23));
                _mm512_store_pd(buf + j + 3 * h, _mm512_sub_pd(d01, d23));
            }
    if (stages == 2) {
        for (int64_t i = 0; i < b; i += 4 * h)
            for (int64_t j = i; j < i + h; j += 8) {
                const __m512d x0 = _mm512_load_pd(buf + j), x1 = _mm512_load_pd(buf + j + h);
                const __m512d x2 = _mm512_load_pd(buf + j + 2 * h), x3 = _mm512_load_pd(buf + j + 3 * h);
                const __m512d s01 = _mm512_add_pd(x0, x1), d01 = _mm512_sub_pd(x0, x1);
                const __m512d s23 = _mm512_add_pd(x2, x3), d23 = _mm512_sub_pd(x2, x3);
                _mm256_storeu_ps(t + j, _mm512_cvtpd_ps(_mm512_mul_pd(_mm512_add_pd(s01, s23), norm)));
                _mm256_storeu_ps(t + j + 2 * h, _mm512_cvtpd_ps(_mm512_mul_pd(_mm512_sub_pd(s01, s23), norm)));
                _mm256_storeu_ps(t + j + h, _mm512_cvtpd_ps(_mm512_mul_pd(_mm512_add_pd(d01, d23), norm)));
                _mm256_storeu_ps(t + j + 3 * h, _mm512_cvtpd_ps(_mm512_mul_pd(_mm512_sub_pd(d01, d23), norm)));
            }
    } else {
        for (int64_t i = 0; i < b; i += 2 * h)
            for (int64_t j = i; j < i + h; j += 8) {
                const __m512d x0 = _mm512_load_pd(buf + j), x1 = _mm512_load_pd(buf + j + h);
                _mm256_storeu_ps(t + j, _mm512_cvtpd_ps(_mm512_mul_pd(_mm512_add_pd(x0, x1), norm)));
                _mm256_storeu_ps(t + j + h, _mm512_cvtpd_ps(_mm512_mul_pd(_mm512_sub_pd(x0, x1), norm)));
            }
    }
}

static int hq_rows_avx512(const lbq_hq_job *j, int64_t r0, int64_t r1, const lbq_scratch *s)
{
    const int64_t D = j->D, b = j->block;
    const __m512d norm = _mm512_set1_pd(j->norm);
    __mmask16 bad = 0;
    for (int64_t r = r0; r < r1; r++) {
        int64_t sq = 0;
        if (b <= 8) {
            /* Whole blocks per register: segments of LBQ_CHUNK elements, the
             * tail (a multiple of the block) under a write mask. */
            for (int64_t c0 = 0; c0 < D; c0 += LBQ_CHUNK) {
                const int64_t n = D - c0 < LBQ_CHUNK ? D - c0 : LBQ_CHUNK;
                const int64_t index = r * D + c0;
                const float *src = j->x + index;
                for (int64_t i = 0; i < n; i += 16) {
                    const __mmask16 k = tail_mask(n - i);
                    const __m512 xv = _mm512_maskz_loadu_ps(k, src + i);
                    bad |= nonfinite_mask(xv);
                    const __m512d a = _mm512_mul_pd(fwht_in_register(lo_pd(xv), b), norm);
                    const __m512d c = _mm512_mul_pd(fwht_in_register(hi_pd(xv), b), norm);
                    _mm512_mask_storeu_ps(s->t + i, k, join_ps(a, c));
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
            for (int64_t b0 = 0; b0 < D; b0 += b) {
                const int64_t index = r * D + b0;
                const float *src = j->x + index;
                for (int64_t i = 0; i < b; i += 16) {
                    const __m512 xv = _mm512_loadu_ps(src + i);
                    bad |= nonfinite_mask(xv);
                    _mm512_store_pd(s->blockd + i, fwht_in_register(lo_pd(xv), 8));
                    _mm512_store_pd(s->blockd + i + 8, fwht_in_register(hi_pd(xv), 8));
                }
                fwht_memory(s->blockd, b, 8, j->norm, s->t);
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
    return bad != 0;
}

/* ------------------------------------------------------------ reductions */

static int range_avx512(const float *x, int64_t n, float *mn, float *mx, float *amax)
{
    __m512 vmin = _mm512_set1_ps(x[0]), vmax = vmin, vabs = _mm512_setzero_ps();
    __mmask16 bad = 0;
    for (int64_t i = 0; i < n; i += 16) {
        const __mmask16 k = tail_mask(n - i);
        const __m512 v = _mm512_maskz_loadu_ps(k, x + i);
        bad |= nonfinite_mask(v) & k;
        vmin = _mm512_mask_min_ps(vmin, k, vmin, v);
        vmax = _mm512_mask_max_ps(vmax, k, vmax, v);
        vabs = _mm512_max_ps(vabs, _mm512_abs_ps(v));
    }
    float l[16], h[16], a[16];
    _mm512_storeu_ps(l, vmin);
    _mm512_storeu_ps(h, vmax);
    _mm512_storeu_ps(a, vabs);
    float lo = l[0], hi = h[0], ab = a[0];
    for (int k = 1; k < 16; k++) {
        lo = l[k] < lo ? l[k] : lo;
        hi = h[k] > hi ? h[k] : hi;
        ab = a[k] > ab ? a[k] : ab;
    }
    *mn = lo;
    *mx = hi;
    *amax = ab;
    return bad != 0;
}

static int check_unit_avx512(const float *u, int64_t n)
{
    __mmask16 bad = 0;
    for (int64_t i = 0; i < n; i += 16) {
        const __mmask16 k = tail_mask(n - i);
        const __m512 v = _mm512_maskz_loadu_ps(k, u + i);
        const __mmask16 ok = _mm512_cmp_ps_mask(v, _mm512_setzero_ps(), _CMP_GE_OQ) &
                             _mm512_cmp_ps_mask(v, _mm512_set1_ps(1.0f), _CMP_LT_OQ);
        bad |= (__mmask16)(~ok & k);
    }
    return bad != 0;
}

static int moments16_avx512(const float *x, int64_t n, double *lane_abs, double *lane_sq, float *amax)
{
    /* lanes 0..7 and 8..15 of the documented 16-lane order */
    __m512d sa0 = _mm512_setzero_pd(), sa1 = sa0, ss0 = sa0, ss1 = sa0;
    __m512 vmax = _mm512_setzero_ps();
    __mmask16 bad = 0;
    for (int64_t i = 0; i < n; i += 16) {
        const __mmask16 k = tail_mask(n - i);
        const __m512 v = _mm512_maskz_loadu_ps(k, x + i); /* masked lanes add +0 */
        bad |= nonfinite_mask(v);
        vmax = _mm512_max_ps(vmax, _mm512_abs_ps(v));
        const __m512d d0 = lo_pd(v), d1 = hi_pd(v);
        sa0 = _mm512_add_pd(sa0, _mm512_abs_pd(d0));
        sa1 = _mm512_add_pd(sa1, _mm512_abs_pd(d1));
        ss0 = _mm512_add_pd(ss0, _mm512_mul_pd(d0, d0));
        ss1 = _mm512_add_pd(ss1, _mm512_mul_pd(d1, d1));
    }
    _mm512_storeu_pd(lane_abs, sa0);
    _mm512_storeu_pd(lane_abs + 8, sa1);
    _mm512_storeu_pd(lane_sq, ss0);
    _mm512_storeu_pd(lane_sq + 8, ss1);
    float m[16];
    _mm512_storeu_ps(m, vmax);
    float mx = 0.0f;
    for (int k = 0; k < 16; k++) mx = m[k] > mx ? m[k] : mx;
    *amax = mx;
    return bad != 0;
}

/* ------------------------------------------------------------- bit split */

static void bit_split_rows_avx512(const lbq_bs_job *j, int64_t r0, int64_t r1, const lbq_scratch *s)
{
    const int64_t C = j->C;
    const int clean = j->mode == LB_BS_CLEAN;
    const __m512d m = _mm512_set1_pd(j->m), c98 = _mm512_set1_pd(98.0), c14d = _mm512_set1_pd(14.0);
    const __m512 sc = _mm512_set1_ps(j->sc), c14 = _mm512_set1_ps(14.0f);
    const __m512 lim = _mm512_set1_ps(clean ? 7.0f : 6.0f), nlim = _mm512_set1_ps(clean ? -7.0f : -6.0f);
    for (int64_t r = r0; r < r1; r++) {
        int64_t h2 = 0, l2 = 0;
        for (int64_t c0 = 0; c0 < C; c0 += LBQ_CHUNK) {
            const int64_t n = C - c0 < LBQ_CHUNK ? C - c0 : LBQ_CHUNK;
            const int64_t index = r * C + c0;
            const float *u = j->uniforms ? j->uniforms + index : s->u1;
            if (!j->uniforms) uniform_f32_avx512(j->seed, j->stream, (uint64_t)index, n, s->u1);
            int8_t *hi = lbq_codes_dst(&j->hi, index, s->codes);
            int8_t *lo = lbq_codes_dst(&j->lo, index, s->codes2);
            const float *g = j->g + index;
            __m512 hsq = _mm512_setzero_ps(), lsq = _mm512_setzero_ps();
            for (int64_t i = 0; i < n; i += 16) {
                const __mmask16 k = tail_mask(n - i);
                const __m512 gv = _mm512_maskz_loadu_ps(k, g + i);
                __m512 v, h;
                if (clean) {
                    v = join_ps(_mm512_div_pd(_mm512_mul_pd(lo_pd(gv), c98), m),
                                _mm512_div_pd(_mm512_mul_pd(hi_pd(gv), c98), m));
                    h = join_ps(rtn_pd(j->rounding, _mm512_div_pd(lo_pd(v), c14d)),
                                rtn_pd(j->rounding, _mm512_div_pd(hi_pd(v), c14d)));
                } else {
                    v = _mm512_mul_ps(gv, sc);
                    h = clamp_ps(rtn_ps(j->rounding, _mm512_div_ps(v, c14)), nlim, lim);
                }
                const __m512 rr = _mm512_sub_ps(v, _mm512_mul_ps(c14, h));
                const __m512 l = clamp_ps(floor_ps(_mm512_add_ps(rr, _mm512_maskz_loadu_ps(k, u + i))), nlim, lim);
                _mm512_mask_cvtepi32_storeu_epi8(hi + i, k, _mm512_cvtps_epi32(h));
                _mm512_mask_cvtepi32_storeu_epi8(lo + i, k, _mm512_cvtps_epi32(l));
                hsq = _mm512_add_ps(hsq, _mm512_mul_ps(h, h));
                lsq = _mm512_add_ps(lsq, _mm512_mul_ps(l, l));
            }
            h2 += hsum_int_ps(hsq);
            l2 += hsum_int_ps(lsq);
            lbq_codes_commit(&j->hi, index, hi, n);
            lbq_codes_commit(&j->lo, index, lo, n);
        }
        if (j->hi_sq) j->hi_sq[r] = h2;
        if (j->lo_sq) j->lo_sq[r] = l2;
    }
}

/* --------------------------------------------------------------------- LUQ */

static void luq_avx512(const lbq_luq_job *j, int64_t i0, int64_t i1, const lbq_scratch *s)
{
    const int su = j->underflow == LB_LUQ_UNDERFLOW_STOCHASTIC;
    const int sr = j->rounding == LB_LUQ_ROUND_STOCHASTIC;
    const __m512 zero = _mm512_setzero_ps(), one = _mm512_set1_ps(1.0f), half = _mm512_set1_ps(0.5f);
    const __m512 m = _mm512_set1_ps(j->m), top = _mm512_set1_ps(j->top), alpha = _mm512_set1_ps(j->alpha);
    const __m512i one_i = _mm512_set1_epi32(1), zero_i = _mm512_setzero_si512();
    for (int64_t c0 = i0; c0 < i1; c0 += LBQ_CHUNK) {
        const int64_t n = i1 - c0 < LBQ_CHUNK ? i1 - c0 : LBQ_CHUNK;
        if (su) uniform_f32_avx512(j->seed, j->stream_under, (uint64_t)c0, n, s->u1);
        if (sr) uniform_f32_avx512(j->seed, j->stream_round, (uint64_t)c0, n, s->u2);
        const float *x = j->x + c0;
        for (int64_t i = 0; i < n; i += 16) {
            const __mmask16 k = tail_mask(n - i);
            const __m512 xv = _mm512_maskz_loadu_ps(k, x + i);
            const __m512 a = _mm512_abs_ps(xv);
            const __m512 v = _mm512_mul_ps(_mm512_div_ps(a, m), top);
            __mmask16 keep = 0;
            if (su)
                keep = _mm512_cmp_ps_mask(v, _mm512_sub_ps(one, _mm512_maskz_loadu_ps(k, s->u1 + i)), _CMP_GE_OQ);
            else if (j->underflow == LB_LUQ_UNDERFLOW_NEAREST)
                keep = _mm512_cmp_ps_mask(v, half, _CMP_GE_OQ);
            const __m512i bits = _mm512_castps_si512(v);
            const __m512i e = _mm512_sub_epi32(_mm512_srli_epi32(bits, 23), _mm512_set1_epi32(126));
            const __m512 f = _mm512_sub_ps(
                _mm512_castsi512_ps(_mm512_or_si512(_mm512_and_si512(bits, _mm512_set1_epi32(0x7fffff)),
                                                    _mm512_set1_epi32(0x3f800000))),
                one);
            const __mmask16 up =
                sr ? _mm512_cmp_ps_mask(f, _mm512_sub_ps(one, _mm512_maskz_loadu_ps(k, s->u2 + i)), _CMP_GE_OQ)
                   : _mm512_cmp_ps_mask(f, half, _CMP_GE_OQ);
            const __m512i mag_log = _mm512_mask_add_epi32(e, up, e, one_i);
            const __mmask16 under = _mm512_cmp_ps_mask(v, one, _CMP_LT_OQ);
            __m512i mag = _mm512_mask_blend_epi32(under, mag_log, _mm512_maskz_mov_epi32(keep, one_i));
            mag = _mm512_maskz_mov_epi32(_mm512_cmp_ps_mask(a, zero, _CMP_GT_OQ), mag);
            const __mmask16 neg = _mm512_cmp_ps_mask(xv, zero, _CMP_LT_OQ);
            if (j->codes)
                _mm512_mask_cvtepi32_storeu_epi8(j->codes + c0 + i, k, _mm512_mask_sub_epi32(mag, neg, zero_i, mag));
            if (j->values) {
                const __m512i p2 = _mm512_slli_epi32(_mm512_add_epi32(mag, _mm512_set1_epi32(126)), 23);
                const __m512i sgn = _mm512_maskz_mov_epi32(neg, _mm512_set1_epi32((int)0x80000000u));
                const __m512 pw = _mm512_castsi512_ps(
                    _mm512_maskz_mov_epi32(_mm512_cmpneq_epi32_mask(mag, zero_i), _mm512_or_si512(p2, sgn)));
                _mm512_mask_storeu_ps(j->values + c0 + i, k, _mm512_mul_ps(alpha, pw));
            }
        }
    }
}

/* ------------------------------------------------------- scale quantizer */

static int scale_quantize_avx512(const lbq_sq_job *j, int64_t i0, int64_t i1, const lbq_scratch *s)
{
    const int sr = j->rounding == LB_ROUND_STOCHASTIC;
    const __m512 scale = _mm512_set1_ps(j->scale), lo = _mm512_set1_ps(j->qmin), hi = _mm512_set1_ps(j->qmax);
    __mmask16 bad = 0;
    for (int64_t c0 = i0; c0 < i1; c0 += LBQ_CHUNK) {
        const int64_t n = i1 - c0 < LBQ_CHUNK ? i1 - c0 : LBQ_CHUNK;
        if (sr) uniform_f32_avx512(j->seed, j->stream, (uint64_t)c0, n, s->u1);
        const float *x = j->x + c0;
        for (int64_t i = 0; i < n; i += 16) {
            const __mmask16 k = tail_mask(n - i);
            const __m512 xv = _mm512_maskz_loadu_ps(k, x + i);
            bad |= nonfinite_mask(xv);
            const __m512 v = _mm512_div_ps(xv, scale);
            __m512 q;
            if (sr)
                q = floor_ps(_mm512_add_ps(clamp_ps(v, lo, hi), _mm512_maskz_loadu_ps(k, s->u1 + i)));
            else
                q = rtn_ps(j->rounding, v);
            q = clamp_ps(q, lo, hi);
            const __m512i qi = _mm512_cvtps_epi32(q);
            _mm512_mask_cvtepi32_storeu_epi8(j->codes + c0 + i, k, qi);
            if (j->dequant) _mm512_mask_storeu_ps(j->dequant + c0 + i, k, _mm512_mul_ps(scale, _mm512_cvtepi32_ps(qi)));
        }
    }
    return bad != 0;
}

const lbq_kernels lbq_kernels_avx512 = {
    LB_ISA_AVX512,      "avx512",          uniform_f32_avx512, hq_rows_avx512,  range_avx512,
    check_unit_avx512,  bit_split_rows_avx512, luq_avx512,     moments16_avx512, scale_quantize_avx512,
};
