/* cpu/avx512/gemm_i8_avx512.c — AVX-512BW micro-kernels of the integer GEMM
 * for CPUs without VNNI: 8 x 32 tile, k in pairs (c2), exact widen +
 * vpmaddwd sequence.
 *
 * Must equal lb_gemm_i8_ref exactly. No vpmaddubsw (its int16 pair sums
 * saturate); A and B are int16 (A widened when packed, int8 B widened once
 * when the weight is packed, int4 B widened in registers) and vpmaddwd sums
 * two int16 products into an int32 lane: |a0·b0 + a1·b1| <= 32768 fits.
 *
 * Per k-pair: 2 zmm B loads (32 columns x 2 k of int16), 8 broadcasts of an
 * A (row, k-pair) int16 pair, 16 vpmaddwd + 16 vpaddd into 16 zmm
 * accumulators. Panels (cpu/gemm_i8_kernels.h): a (kpairs, 8, 2) int16;
 * b (kpairs, 32, 2) int16, or int4: 32 bytes per k-pair, low nibbles =
 * columns 0..15, high nibbles = columns 16..31.
 * Compiled with -mavx512f -mavx512bw -mavx512vl -mavx512dq; called only after
 * a CPU check (dispatch.c).
 */
#include "config.h"
#include "../gemm_i8_kernels.h"

#include <immintrin.h>
#include <string.h>

#define MR 8
#define NR 32

static inline __attribute__((always_inline)) __m512i bcast_pair(const int16_t *p)
{
    int32_t v;
    memcpy(&v, p, sizeof v);
    return _mm512_set1_epi32(v);
}

/* Sign-extends 32 two's-complement nibbles (one per byte, 0..15) to int8. */
static inline __attribute__((always_inline)) __m256i s4_to_s8(__m256i nibbles)
{
    const __m256i lut = _mm256_setr_epi8(0, 1, 2, 3, 4, 5, 6, 7, -8, -7, -6, -5, -4, -3, -2, -1,
                                         0, 1, 2, 3, 4, 5, 6, 7, -8, -7, -6, -5, -4, -3, -2, -1);
    return _mm256_shuffle_epi8(lut, nibbles);
}

/* Stores a row of the tile (first K block) or adds it to C (later blocks). */
static inline __attribute__((always_inline)) void store_row(int32_t *c, __m512i v0, __m512i v1,
                                                            int nr, int accumulate)
{
    if (nr == NR) {
        if (accumulate) {
            v0 = _mm512_add_epi32(v0, _mm512_loadu_si512((const void *)c));
            v1 = _mm512_add_epi32(v1, _mm512_loadu_si512((const void *)(c + 16)));
        }
        _mm512_storeu_si512((void *)c, v0);
        _mm512_storeu_si512((void *)(c + 16), v1);
        return;
    }
    const __mmask16 m0 = (__mmask16)(nr >= 16 ? 0xFFFFu : (1u << nr) - 1u);
    const __mmask16 m1 = (__mmask16)(nr <= 16 ? 0u : (1u << (nr - 16)) - 1u);
    if (accumulate) {
        v0 = _mm512_add_epi32(v0, _mm512_maskz_loadu_epi32(m0, (const void *)c));
        v1 = _mm512_add_epi32(v1, _mm512_maskz_loadu_epi32(m1, (const void *)(c + 16)));
    }
    _mm512_mask_storeu_epi32((void *)c, m0, v0);
    _mm512_mask_storeu_epi32((void *)(c + 16), m1, v1);
}

/* The tile body; `mr` and `s4` are compile-time constants at each call site. */
static inline __attribute__((always_inline)) void tile(int mr, int s4, int64_t kpairs,
                                                       const int16_t *a, const void *b_panel,
                                                       int32_t *c, int64_t ldc, int nr,
                                                       int accumulate)
{
    __m512i acc0[MR], acc1[MR];
    _Pragma("GCC unroll 8") for (int r = 0; r < mr; r++) acc0[r] = acc1[r] = _mm512_setzero_si512();
    const int16_t *b16 = b_panel;
    const uint8_t *b4 = b_panel;
    const __m256i low4 = _mm256_set1_epi8(0x0F);
    for (int64_t k = 0; k < kpairs; k++) {
        __m512i b0, b1;
        if (s4) {
            const __m256i v = _mm256_loadu_si256((const __m256i *)(const void *)(b4 + k * 32));
            b0 = _mm512_cvtepi8_epi16(s4_to_s8(_mm256_and_si256(v, low4)));
            b1 = _mm512_cvtepi8_epi16(s4_to_s8(_mm256_and_si256(_mm256_srli_epi16(v, 4), low4)));
        } else {
            b0 = _mm512_loadu_si512((const void *)(b16 + k * 64));
            b1 = _mm512_loadu_si512((const void *)(b16 + k * 64 + 32));
        }
        _Pragma("GCC unroll 8") for (int r = 0; r < mr; r++) {
            const __m512i av = bcast_pair(a + (k * MR + r) * 2);
            acc0[r] = _mm512_add_epi32(acc0[r], _mm512_madd_epi16(av, b0));
            acc1[r] = _mm512_add_epi32(acc1[r], _mm512_madd_epi16(av, b1));
        }
    }
    _Pragma("GCC unroll 8") for (int r = 0; r < mr; r++)
        store_row(c + r * ldc, acc0[r], acc1[r], nr, accumulate);
}

#define TILE_ARGS kgroups, a_panel, b_panel, c, ldc, nr, accumulate
/* Instantiates the tile body for each row count (mr is then a constant). */
#define TILE_CASES(S4)                                                                \
    switch (mr) {                                                                     \
    case 1: tile(1, S4, TILE_ARGS); break;                                            \
    case 2: tile(2, S4, TILE_ARGS); break;                                            \
    case 3: tile(3, S4, TILE_ARGS); break;                                            \
    case 4: tile(4, S4, TILE_ARGS); break;                                            \
    case 5: tile(5, S4, TILE_ARGS); break;                                            \
    case 6: tile(6, S4, TILE_ARGS); break;                                            \
    case 7: tile(7, S4, TILE_ARGS); break;                                            \
    default: tile(8, S4, TILE_ARGS); break;                                           \
    }

void lb_gemm_i8_ukernel_8x32c2_avx512(int64_t kgroups, const void *a_panel, const void *b_panel,
                                      const int32_t *comp, int32_t *c, int64_t ldc, int mr, int nr,
                                      int accumulate)
{
    (void)comp;
    TILE_CASES(0)
}

void lb_gemm_i8_ukernel_8x32c2_s4b_avx512(int64_t kgroups, const void *a_panel,
                                          const void *b_panel, const int32_t *comp, int32_t *c,
                                          int64_t ldc, int mr, int nr, int accumulate)
{
    (void)comp;
    TILE_CASES(1)
}
