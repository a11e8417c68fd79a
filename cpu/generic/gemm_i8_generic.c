/* cpu/generic/gemm_i8_generic.c — portable C micro-kernels of the integer
 * GEMM (the `scalar` path), 4 x 8 tile, k-groups of 1.
 *
 * Must equal lb_gemm_i8_ref exactly: int8 products summed in int32 over the
 * whole K (integer sums are exact, so the order of k does not matter).
 * Panels (cpu/gemm_i8_kernels.h): a (K, 4) int8, b (K, 8) int8, or b (K, 4
 * bytes) int4 with column j in the low nibble of byte j and column j + 4 in
 * its high nibble. No compensation (comp must be NULL: A is not shifted).
 */
#include "config.h"
#include "../gemm_i8_kernels.h"

#define MR 4
#define NR 8

/* Stores (or adds, for later K blocks) the tile; unsigned adds wrap like
 * the vector paths' (the final sum fits int32, see gemm_i8_kernels.h). */
static void store_tile(int32_t acc[MR][NR], int32_t *c /* (mr, ldc) */, int64_t ldc, int mr, int nr,
                       int accumulate)
{
    for (int r = 0; r < mr; r++)
        for (int j = 0; j < nr; j++)
            c[r * ldc + j] = accumulate ? (int32_t)((uint32_t)c[r * ldc + j] + (uint32_t)acc[r][j])
                                        : acc[r][j];
}

void lb_gemm_i8_ukernel_4x8_generic(int64_t kgroups, const void *a_panel, const void *b_panel,
                                    const int32_t *comp, int32_t *c, int64_t ldc, int mr, int nr,
                                    int accumulate)
{
    (void)comp;
    const int8_t *a = a_panel; /* (kgroups, MR) */
    const int8_t *b = b_panel; /* (kgroups, NR) */
    int32_t acc[MR][NR] = {{0}};
    for (int64_t k = 0; k < kgroups; k++) {
        for (int r = 0; r < MR; r++) {
            const int32_t av = a[k * MR + r];
            for (int j = 0; j < NR; j++) acc[r][j] += av * b[k * NR + j];
        }
    }
    store_tile(acc, c, ldc, mr, nr, accumulate);
}

void lb_gemm_i8_ukernel_4x8_s4b_generic(int64_t kgroups, const void *a_panel, const void *b_panel,
                                        const int32_t *comp, int32_t *c, int64_t ldc, int mr,
                                        int nr, int accumulate)
{
    (void)comp;
    const int8_t *a = a_panel;  /* (kgroups, MR) */
    const uint8_t *b = b_panel; /* (kgroups, NR / 2) nibble pairs */
    int32_t acc[MR][NR] = {{0}};
    for (int64_t k = 0; k < kgroups; k++) {
        int32_t bv[NR];
        for (int j = 0; j < NR / 2; j++) {
            const unsigned byte = b[k * (NR / 2) + j];
            bv[j] = (int32_t)((byte & 15u) ^ 8u) - 8;
            bv[j + NR / 2] = (int32_t)((byte >> 4) ^ 8u) - 8;
        }
        for (int r = 0; r < MR; r++) {
            const int32_t av = a[k * MR + r];
            for (int j = 0; j < NR; j++) acc[r][j] += av * bv[j];
        }
    }
    store_tile(acc, c, ldc, mr, nr, accumulate);
}
