/* cpu/avx512vnni/gemm_i8_avx512vnni.c — AVX-512 VNNI micro-kernels of the
 * integer GEMM: 8 x 32 tile, k in quads (c4), vpdpbusd.
 *
 * Must equal lb_gemm_i8_ref exactly. vpdpbusd multiplies u8 by s8 and adds
 * the four products of each 32-bit lane straight into int32 (no
 * saturation). A is packed as A + 128 (u8) and the kernel subtracts
 * comp[j] = 128·colsum(B)[j], precomputed when B was packed:
 *   sum_k (a + 128)·b - 128·sum_k b = sum_k a·b.
 * The shifted sum may exceed int32 for large K; vpdpbusd and vpsubd wrap
 * modulo 2^32 and the true result fits int32, so the stored value is exact.
 *
 * Per k-quad: 2 zmm B loads (32 columns x 4 k of int8, or one 64-byte load
 * of int4 nibbles split and sign-extended with vpshufb), 8 broadcasts of an
 * A (row, k-quad) u8 quad, 16 vpdpbusd into 16 zmm accumulators.
 * Panels (cpu/gemm_i8_kernels.h): a (kquads, 8, 4) u8; b (kquads, 32, 4)
 * s8, or int4: 64 bytes per k-quad, low nibbles = columns 0..15, high
 * nibbles = columns 16..31.
 * Compiled with -mavx512f -mavx512bw -mavx512vl -mavx512vnni; called only
 * after a CPU check (dispatch.c).
 */
#include "config.h"
#include "../gemm_i8_kernels.h"

#include <immintrin.h>
#include <string.h>

#define MR 8
#define NR 32

static inline __attribute__((always_inline)) __m512i bcast_quad(const uint8_t *p)
{
    int32_t v;
    memcpy(&v, p, sizeof v);
    return _mm512_set1_epi32(v);
}

/* acc += the four u8 (a) x s8 (b) products of each 32-bit lane. GCC 12
 * compiles _mm512_dpbusd_epi32 in a loop with a register copy per call
 * (the builtin does not tie the accumulator to the destination), which
 * costs as many moves as dot products here; the inline asm form updates the
 * accumulator in place. LB_NO_INLINE_ASM selects the plain intrinsic. */
static inline __attribute__((always_inline)) __m512i dpbusd(__m512i acc, __m512i a, __m512i b)
{
#if defined(__GNUC__) && !defined(LB_NO_INLINE_ASM)
    __asm__("vpdpbusd %2, %1, %0" : "+v"(acc) : "v"(a), "v"(b));
    return acc;
#else
    return _mm512_dpbusd_epi32(acc, a, b);
#endif
}

/* Sign-extends 64 two's-complement nibbles (one per byte, 0..15) to int8. */
static inline __attribute__((always_inline)) __m512i s4_to_s8(__m512i nibbles)
{
    const __m512i lut = _mm512_broadcast_i32x4(
        _mm_setr_epi8(0, 1, 2, 3, 4, 5, 6, 7, -8, -7, -6, -5, -4, -3, -2, -1));
    return _mm512_shuffle_epi8(lut, nibbles);
}

/* Stores a row of the tile (first K block; non-temporal stores for
 * LB_TILE_STREAM, c then 64-byte aligned) or adds it to C (later blocks). */
static inline __attribute__((always_inline)) void store_row(int32_t *c, __m512i v0, __m512i v1,
                                                            int nr, int mode)
{
    const int accumulate = mode == LB_TILE_ADD;
    if (nr == NR) {
        if (mode == LB_TILE_STREAM) {
            _mm512_stream_si512((void *)c, v0);
            _mm512_stream_si512((void *)(c + 16), v1);
            return;
        }
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
static inline __attribute__((always_inline)) void tile(int mr, int s4, int64_t kquads,
                                                       const uint8_t *a, const void *b_panel,
                                                       const int32_t *comp, int32_t *c,
                                                       int64_t ldc, int nr, int mode)
{
    const int accumulate = mode == LB_TILE_ADD;
    __m512i acc0[MR], acc1[MR];
    _Pragma("GCC unroll 8") for (int r = 0; r < mr; r++) acc0[r] = acc1[r] = _mm512_setzero_si512();
    const int8_t *b8 = b_panel;
    const uint8_t *b4 = b_panel;
    const __m512i low4 = _mm512_set1_epi8(0x0F);
    for (int64_t k = 0; k < kquads; k++) {
        __m512i b0, b1;
        if (s4) {
            const __m512i v = _mm512_loadu_si512((const void *)(b4 + k * 64));
            b0 = s4_to_s8(_mm512_and_si512(v, low4));
            b1 = s4_to_s8(_mm512_and_si512(_mm512_srli_epi16(v, 4), low4));
        } else {
            b0 = _mm512_loadu_si512((const void *)(b8 + k * 128));
            b1 = _mm512_loadu_si512((const void *)(b8 + k * 128 + 64));
        }
        _Pragma("GCC unroll 8") for (int r = 0; r < mr; r++) {
            const __m512i av = bcast_quad(a + (k * MR + r) * 4);
            acc0[r] = dpbusd(acc0[r], av, b0);
            acc1[r] = dpbusd(acc1[r], av, b1);
        }
    }
    /* The compensation is subtracted once, with the first K block. */
    const __m512i comp0 =
        accumulate ? _mm512_setzero_si512() : _mm512_loadu_si512((const void *)comp);
    const __m512i comp1 =
        accumulate ? _mm512_setzero_si512() : _mm512_loadu_si512((const void *)(comp + 16));
    _Pragma("GCC unroll 8") for (int r = 0; r < mr; r++)
        store_row(c + r * ldc, _mm512_sub_epi32(acc0[r], comp0), _mm512_sub_epi32(acc1[r], comp1),
                  nr, mode);
    if (mode == LB_TILE_STREAM) _mm_sfence(); /* ordered before any later read of C */
}

#define TILE_ARGS kgroups, a_panel, b_panel, comp, c, ldc, nr, accumulate
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

/* comp (NR): 128·colsum(B) of this panel's columns (never NULL on this path). */
void lb_gemm_i8_ukernel_8x32c4_avx512vnni(int64_t kgroups, const void *a_panel,
                                          const void *b_panel, const int32_t *comp, int32_t *c,
                                          int64_t ldc, int mr, int nr, int accumulate)
{
    TILE_CASES(0)
}

void lb_gemm_i8_ukernel_8x32c4_s4b_avx512vnni(int64_t kgroups, const void *a_panel,
                                              const void *b_panel, const int32_t *comp,
                                              int32_t *c, int64_t ldc, int mr, int nr,
                                              int accumulate)
{
    TILE_CASES(1)
}
