/* cpu/quant/quant_kernels.h — the per-ISA kernels of the fused quantizers
 * (include/lowbit/cpu_quant.h) and the jobs they run.
 *
 * cpu/quant/quant.c (compiled without ISA flags) checks arguments, computes
 * the per-tensor scalars (max, scale), picks a kernel table by the context's
 * ISA and splits the work statically over threads; a kernel handles one
 * contiguous range of rows or elements on one thread. The generic table is
 * always compiled; the avx2 and avx512 tables are in convenience libraries
 * built with their own -m flags and are only called after a CPU check.
 *
 * Every kernel evaluates the reference's arithmetic operation for operation
 * (quant_scalar.h has the scalar form each vector lane reproduces), so every
 * table returns the same bits.
 */
#ifndef LOWBIT_CPU_QUANT_KERNELS_H
#define LOWBIT_CPU_QUANT_KERNELS_H

#include <stddef.h>
#include <stdint.h>
#include "lowbit/context.h"
#include "lowbit/cpu.h"
#include "lowbit/ref/rounding.h"
#include "lowbit/ref/bit_split.h"
#include "lowbit/ref/luq.h"

/* Elements per chunk of a row or flat range: uniforms and codes of one chunk
 * live in per-thread scratch buffers (L1-sized) between the generating and
 * the consuming loop. A multiple of 64 (one AVX-512 Philox call). */
#define LBQ_CHUNK 1024

/* Where a kernel puts int8 codes: straight into an int8 output, or into the
 * thread's code buffer, then packed into nibbles at flat index `index`. */
typedef struct lbq_codes_out {
    lb_int_format fmt;
    void *base; /* int8_t * (LB_INT_S8) or uint8_t * (LB_INT_S4) */
} lbq_codes_out;

/* Per-thread scratch, sized by the driver for the job. */
typedef struct lbq_scratch {
    double *blockd; /* (max(block, 8)) HQ butterfly buffer */
    float *t;       /* (max(block, LBQ_CHUNK)) transformed values of one segment */
    int8_t *codes;  /* (max(block, LBQ_CHUNK)) codes before nibble packing */
    int8_t *codes2; /* (LBQ_CHUNK) second code buffer (bit split lo) */
    float *u1, *u2; /* (LBQ_CHUNK) uniforms of one chunk */
} lbq_scratch;

/* HQ: x (rows, D) -> codes (and quotient, transformed, row_sq) */
typedef struct lbq_hq_job {
    int64_t D, block;
    int log2_block;
    double norm;          /* 2^{-k/2} in double */
    const float *x;       // (rows, D)
    float step;
    float lo, hi;         /* clamp range [-Qn, Qp] */
    lb_rounding rounding; /* half-even or half-away */
    lbq_codes_out codes;  // (rows, D)
    float *quotient;      // (rows, D) or NULL
    float *transformed;   // (rows, D) or NULL
    int64_t *row_sq;      // (rows) or NULL
} lbq_hq_job;

/* Bit splitting: g (N, C) -> hi, lo (N, C), norms */
typedef struct lbq_bs_job {
    int64_t C;
    lb_bs_mode mode;
    lb_rounding rounding; /* tie rule of hi */
    const float *g;        // (N, C)
    const float *uniforms; // (N, C) or NULL: then the RNG
    uint64_t seed, stream;
    double m;     /* CLEAN: (double)max|g| (> 0) */
    float sc;     /* CODE: 196 / (2·M') */
    lbq_codes_out hi, lo; // (N, C)
    int64_t *hi_sq, *lo_sq; // (N) or NULL
} lbq_bs_job;

/* LUQ: x (n) -> codes, values */
typedef struct lbq_luq_job {
    const float *x; // (n)
    float m;        /* max|x| > 0 */
    float alpha;
    float top;      /* 2^(L-1) */
    lb_luq_underflow underflow;
    lb_luq_rounding rounding;
    uint64_t seed, stream_under, stream_round;
    int8_t *codes;  // (n) or NULL
    float *values;  // (n) or NULL
} lbq_luq_job;

/* Scale quantizer: codes = clamp(round(x / scale), qmin, qmax) (SAWB, uniform int8). */
typedef struct lbq_sq_job {
    const float *x; // (n)
    float scale;    /* > 0 */
    float qmin, qmax;
    lb_rounding rounding; /* half-even, half-away or stochastic (clamp v first) */
    uint64_t seed, stream;
    int8_t *codes;  // (n)
    float *dequant; // (n) or NULL: scale · (float)code
} lbq_sq_job;

/* A path's kernels. Functions returning int return 1 when they met a
 * non-finite input (their outputs are then unspecified), else 0. */
typedef struct lbq_kernels {
    lb_isa isa;
    const char *name;
    /* out (n) = lb_rng_uniform_f32(seed, stream, first + i) */
    void (*uniform_f32)(uint64_t seed, uint64_t stream, uint64_t first, int64_t n, float *out);
    /* rows [r0, r1) */
    int (*hq_rows)(const lbq_hq_job *job, int64_t r0, int64_t r1, const lbq_scratch *s);
    /* min, max, max|x| of x (n >= 1); 1 if a value is not finite */
    int (*range)(const float *x, int64_t n, float *mn, float *mx, float *amax);
    /* 1 if some u (n) is not in [0, 1) */
    int (*check_unit)(const float *u, int64_t n);
    /* rows [r0, r1) of the split */
    void (*bit_split_rows)(const lbq_bs_job *job, int64_t r0, int64_t r1, const lbq_scratch *s);
    /* elements [i0, i1) */
    void (*luq)(const lbq_luq_job *job, int64_t i0, int64_t i1, const lbq_scratch *s);
    /* SAWB moments: lanes (16) of Σ|x| and Σx² as documented in sawb.h, max|x| */
    int (*moments16)(const float *x, int64_t n, double *lane_abs, double *lane_sq, float *amax);
    /* elements [i0, i1) */
    int (*scale_quantize)(const lbq_sq_job *job, int64_t i0, int64_t i1, const lbq_scratch *s);
} lbq_kernels;

extern const lbq_kernels lbq_kernels_generic;
#ifdef HAVE_AVX2_BUILD
extern const lbq_kernels lbq_kernels_avx2;
#endif
#ifdef HAVE_AVX512_BUILD
extern const lbq_kernels lbq_kernels_avx512;
#endif

#endif
