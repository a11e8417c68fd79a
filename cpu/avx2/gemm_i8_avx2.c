/* cpu/avx2/gemm_i8_avx2.c — AVX2 micro-kernels of the integer GEMM:
 * 6 x 16 tile, k in pairs (c2), exact widen + vpmaddwd sequence.
 *
 * Must equal lb_gemm_i8_ref exactly. No vpmaddubsw: its int16 pair sums
 * saturate (255·127 + 255·127 > 32767). Instead A and B are int16 (A widened
 * when packed, int8 B widened once when the weight is packed, int4 B widened
 * in registers), and vpmaddwd sums two int16 products into an int32 lane:
 * |a0·b0 + a1·b1| <= 2·128·128 = 32768 fits, and the int32 accumulation is
 * exact for K <= LB_GEMM_I8_MAX_K.
 *
 * Per k-pair: 2 B loads (16 columns x 2 k of int16), 6 broadcasts of an A
 * (row, k-pair) int16 pair, 12 vpmaddwd + 12 vpaddd into 12 ymm accumulators.
 * Panels (cpu/gemm_i8_kernels.h): a (kpairs, 6, 2) int16; b (kpairs, 16, 2)
 * int16, or int4: 16 bytes per k-pair, low nibbles = columns 0..7, high
 * nibbles = columns 8..15 (each column's pair adjacent).
 * Compiled with -mavx2 -mfma; called only after a CPU check (dispatch.c).
 */
#include "config.h"
#include "../gemm_i8_kernels.h"

#include <immintrin.h>
#include <string.h>

#define MR 6
#define NR 16

static inline __attribute__((always_inline)) __m256i bcast_pair(const int16_t *p)
{
    int32_t v;
    memcpy(&v, p, sizeof v);
    return _mm256_set1_epi32(v);
}

/* Sign-extends 16 two's-complement nibbles (one per byte, 0..15) to int8. */
static inline __attribute__((always_inline)) __m128i s4_to_s8(__m128i nibbles)
{
    const __m128i lut = _mm_setr_epi8(0, 1, 2, 3, 4, 5, 6, 7, -8, -7, -6, -5, -4, -3, -2, -1);
    return _mm_shuffle_epi8(lut, nibbles);
}

/* Stores a row of the tile (first K block) or adds it to C (later blocks). */
static inline __attribute__((always_inline)) void store_row(int32_t *c, __m256i v0, __m256i v1,
                                                            int nr, int accumulate)
{
    if (nr == NR) {
        if (accumulate) {
            v0 = _mm256_add_epi32(v0, _mm256_loadu_si256((const __m256i *)(const void *)c));
            v1 = _mm256_add_epi32(v1, _mm256_loadu_si256((const __m256i *)(const void *)(c + 8)));
        }
        _mm256_storeu_si256((__m256i *)(void *)c, v0);
        _mm256_storeu_si256((__m256i *)(void *)(c + 8), v1);
        return;
    }
    const __m256i idx = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    const __m256i m0 = _mm256_cmpgt_epi32(_mm256_set1_epi32(nr), idx);
    const __m256i m1 = _mm256_cmpgt_epi32(_mm256_set1_epi32(nr - 8), idx);
    if (accumulate) {
        v0 = _mm256_add_epi32(v0, _mm256_maskload_epi32((const int *)c, m0));
        v1 = _mm256_add_epi32(v1, _mm256_maskload_epi32((const int *)(c + 8), m1));
    }
    _mm256_maskstore_epi32((int *)c, m0, v0);
    _mm256_maskstore_epi32((int *)(c + 8), m1, v1);
}

/* The tile body; `mr` and `s4` are compile-time constants at each call site. */
static inline __attribute__((always_inline)) void tile(int mr, int s4, int64_t kpairs,
                                                       const int16_t *a, const void *b_panel,
                                                       int32_t *c, int64_t ldc, int nr,
                                                       int accumulate)
{
    __m256i acc0[MR], acc1[MR];
    _Pragma("GCC unroll 8") for (int r = 0; r < mr; r++) acc0[r] = acc1[r] = _mm256_setzero_si256();
    const int16_t *b16 = b_panel;
    const uint8_t *b4 = b_panel;
    const __m128i low4 = _mm_set1_epi8(0x0F);
    for (int64_t k = 0; k < kpairs; k++) {
        __m256i b0, b1;
        if (s4) {
            const __m128i v = _mm_loadu_si128((const __m128i *)(const void *)(b4 + k * 16));
            b0 = _mm256_cvtepi8_epi16(s4_to_s8(_mm_and_si128(v, low4)));
            b1 = _mm256_cvtepi8_epi16(s4_to_s8(_mm_and_si128(_mm_srli_epi16(v, 4), low4)));
        } else {
            b0 = _mm256_loadu_si256((const __m256i *)(const void *)(b16 + k * 32));
            b1 = _mm256_loadu_si256((const __m256i *)(const void *)(b16 + k * 32 + 16));
        }
        _Pragma("GCC unroll 8") for (int r = 0; r < mr; r++) {
            const __m256i av = bcast_pair(a + (k * MR + r) * 2);
            acc0[r] = _mm256_add_epi32(acc0[r], _mm256_madd_epi16(av, b0));
            acc1[r] = _mm256_add_epi32(acc1[r], _mm256_madd_epi16(av, b1));
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
    default: tile(6, S4, TILE_ARGS); break;                                           \
    }

void lb_gemm_i8_ukernel_6x16c2_avx2(int64_t kgroups, const void *a_panel, const void *b_panel,
                                    const int32_t *comp, int32_t *c, int64_t ldc, int mr, int nr,
                                    int accumulate)
{
    (void)comp;
    TILE_CASES(0)
}

void lb_gemm_i8_ukernel_6x16c2_s4b_avx2(int64_t kgroups, const void *a_panel, const void *b_panel,
                                        const int32_t *comp, int32_t *c, int64_t ldc, int mr,
                                        int nr, int accumulate)
{
    (void)comp;
    TILE_CASES(1)
}
