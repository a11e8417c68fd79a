/* ref/hadamard.c — block-diagonal Walsh–Hadamard transform, the fixed
 * orthonormal rotation of the Hadamard quantizer (HQ).
 *
 * Computes out = in · BlockDiag(H_k, ..., H_k) for a row-major (rows, D)
 * matrix, H_k the Sylvester-ordered normalised Hadamard matrix of size 2^k
 * applied to consecutive blocks of 2^k entries of each row (spec
 * int4_training.md §1.3; Xi et al. 2023, §3.3 and Eq. 3, where the blocks
 * run along the reduction dimension D of the forward GEMM).
 *
 * Leaves out: learnable Hadamard matrices (the authors' --learnable_hadamard,
 * off in every published run), bit-reversed or sequency orderings, blocks
 * that are not powers of two. The exact operation order is specified in
 * lowbit/ref/hadamard.h so that fast paths can match bit for bit.
 *
 * Shapes: in, out (rows, D); block | D.
 */
#include "config.h"
#include "lowbit/ref/hadamard.h"
#include "lowbit/alloc.h"

#include <math.h>

int lb_hadamard_log2(int64_t block)
{
    if (block < 1 || (block & (block - 1)) != 0) return -1;
    int k = 0;
    while (((int64_t)1 << k) < block) k++;
    return k;
}

int lb_hadamard_block_valid(int64_t D, int64_t block)
{
    return D >= 1 && lb_hadamard_log2(block) >= 0 && D % block == 0;
}

/* 2^{-k/2} as the correctly rounded double (ldexp is exact). */
static double hadamard_norm(int k)
{
    return ldexp((k & 1) ? 0.70710678118654752440 : 1.0, -(k / 2));
}

double lb_hadamard_entry(int64_t block, int64_t i, int64_t j)
{
    int k = lb_hadamard_log2(block);
    if (k < 0 || i < 0 || j < 0 || i >= block || j >= block) return 0.0;
    unsigned long long bits = (unsigned long long)(i & j);
    int parity = 0;
    while (bits) {
        parity ^= (int)(bits & 1u);
        bits >>= 1;
    }
    double h = hadamard_norm(k);
    return parity ? -h : h;
}

/* In-place normalised transform of one block x (b = 2^k entries), in the
 * documented butterfly order. */
static void fwht_block(double *x, int64_t b, int k)
{
    for (int64_t h = 1; h < b; h *= 2) {
        for (int64_t i = 0; i < b; i += 2 * h) {
            for (int64_t j = i; j < i + h; j++) {
                double a = x[j], c = x[j + h];
                x[j] = a + c;
                x[j + h] = a - c;
            }
        }
    }
    double s = hadamard_norm(k);
    for (int64_t j = 0; j < b; j++) x[j] *= s;
}

static lb_status check_args(lb_ctx *ctx, int64_t rows, int64_t D, int64_t block, const void *in,
                            const void *out)
{
    if (rows < 0 || D < 0) return lb_error(ctx, LB_ERR_ARG, "hadamard: negative shape (%lld, %lld)",
                                           (long long)rows, (long long)D);
    if (rows * D > 0 && (!in || !out)) return lb_error(ctx, LB_ERR_ARG, "hadamard: NULL tensor");
    if (D > 0 && !lb_hadamard_block_valid(D, block))
        return lb_error(ctx, LB_ERR_ARG, "hadamard: block %lld is not a power of two dividing D=%lld",
                        (long long)block, (long long)D);
    return LB_OK;
}

lb_status lb_hadamard_ref(lb_ctx *ctx, int64_t rows, int64_t D, int64_t block, const float *in,
                          float *out)
{
    lb_status st = check_args(ctx, rows, D, block, in, out);
    if (st != LB_OK || rows * D == 0) return st;
    int k = lb_hadamard_log2(block);
    double *x = lb_alloc((size_t)block * sizeof *x); // (block)
    if (!x) return lb_error(ctx, LB_ERR_NOMEM, "hadamard: out of memory");
    for (int64_t r = 0; r < rows; r++) {
        for (int64_t b0 = 0; b0 < D; b0 += block) {
            const float *src = in + r * D + b0;
            float *dst = out + r * D + b0;
            for (int64_t j = 0; j < block; j++) x[j] = (double)src[j];
            fwht_block(x, block, k);
            for (int64_t j = 0; j < block; j++) dst[j] = (float)x[j];
        }
    }
    lb_free(x);
    return LB_OK;
}

lb_status lb_hadamard_f64_ref(lb_ctx *ctx, int64_t rows, int64_t D, int64_t block, const double *in,
                              double *out)
{
    lb_status st = check_args(ctx, rows, D, block, in, out);
    if (st != LB_OK || rows * D == 0) return st;
    int k = lb_hadamard_log2(block);
    for (int64_t r = 0; r < rows; r++) {
        for (int64_t b0 = 0; b0 < D; b0 += block) {
            double *dst = out + r * D + b0;
            if (dst != in + r * D + b0)
                for (int64_t j = 0; j < block; j++) dst[j] = in[r * D + b0 + j];
            fwht_block(dst, block, k);
        }
    }
    return LB_OK;
}
