/* cpu/gemm_i8_kernels.h — internal: the integer GEMM micro-kernels of each
 * ISA path, the packed-operand layouts they read, and the driver entry
 * points shared by cpu/dispatch.c and cpu/gemm_i8.c.
 *
 * A micro-kernel computes one MR x NR tile of C over a block of k-groups:
 *
 *   t[r][j] = sum over the block's k-groups of a_panel[kg][r][:] · b_panel[kg][j][:]
 *   c (mr, ldc) [r][j] = t[r][j] - comp[j]     first K block (accumulate == 0)
 *   c (mr, ldc) [r][j] += t[r][j]              later K blocks (accumulate != 0)
 *                                              (r < mr, j < nr)
 *
 * with K grouped by G (G = 4 for vpdpbusd quads, 2 for vpmaddwd pairs, 1 for
 * scalar). Panels (both padded with zeros up to whole groups and tiles):
 *   a_panel (kgroups, MR, G)  packed per call from A (see a_kind),
 *   b_panel (kgroups, NR, G)  packed once from B (int8, int16 or int4, below).
 * int4 b panels keep, for each k-group, the NR·G elements e = j·G + i of the
 * int8 layout in NR·G/2 bytes: byte t holds element t in its low nibble and
 * element t + NR·G/2 in its high nibble. So one load, an `and`, a shift and a
 * 16-entry sign-extending table lookup give the two halves of the int8 (or,
 * after vpmovsxbw, int16) panel in registers.
 *
 * Micro-kernels never saturate: vpdpbusd sums four u8·s8 products straight
 * into int32, and the non-VNNI paths widen to int16 and use vpmaddwd (two
 * int16 products summed into int32; |sum| <= 2·128·128 fits). The VNNI path
 * takes A + 128 as u8 (a_kind LB_APACK_U8X: byte xor 0x80) and subtracts
 * comp[j] = 128·colsum(B)[j] at the store; int32 wrap-around in between is
 * harmless because the final value fits int32 (exact modulo 2^32).
 */
#ifndef LOWBIT_CPU_GEMM_I8_KERNELS_H
#define LOWBIT_CPU_GEMM_I8_KERNELS_H

#include <stddef.h>
#include <stdint.h>
#include "lowbit/cpu.h"

/* What a micro-kernel does with its tile (its `accumulate` argument). */
enum {
    LB_TILE_STORE = 0, /* store it (the first K block) */
    LB_TILE_ADD = 1,   /* add it to C (later K blocks) */
    /* store it with non-temporal stores: the only K block of an output too
     * large to stay in cache (no line is read before it is written); only
     * for kernels with `stream` set, rows of C 64-byte aligned */
    LB_TILE_STREAM = 2
};

/* One MR x NR tile: see above. kgroups >= 1; 1 <= mr <= MR; 1 <= nr <= NR;
 * comp (NR) may be NULL (no compensation). int32 additions wrap (vector
 * adds), which is harmless: the final sum fits int32. */
typedef void (*lb_gemm_i8_ukernel_fn)(int64_t kgroups, const void *a_panel, const void *b_panel,
                                      const int32_t *comp, int32_t *c, int64_t ldc, int mr, int nr,
                                      int accumulate);

/* How A is packed into (kgroups, MR, G) panels. */
typedef enum lb_apack_kind {
    LB_APACK_S8 = 0,  /* int8 as is */
    LB_APACK_U8X = 1, /* int8 xor 0x80 = A + 128 as u8 (vpdpbusd's unsigned operand) */
    LB_APACK_S16 = 2  /* int8 widened to int16 (vpmaddwd) */
} lb_apack_kind;

/* A path's micro-kernel and the layouts it reads. */
typedef struct lb_gemm_i8_kernel {
    lb_isa isa;
    const char *name;             /* "8x32c4_avx512vnni" */
    int mr, nr, g;                /* register tile and k-group */
    lb_apack_kind a_kind;         /* A panel element type */
    int b_s16;                    /* int8 B panels stored as int16 (else int8) */
    int comp;                     /* subtract 128·colsum(B) (A shifted to u8) */
    lb_gemm_i8_ukernel_fn ukernel_s8; /* int8 (or int16) b panels */
    lb_gemm_i8_ukernel_fn ukernel_s4; /* int4 b panels */
    int stream;                   /* the ukernels take LB_TILE_STREAM */
} lb_gemm_i8_kernel;

/* The kernel of a path, or NULL when the path is not compiled (dispatch.c). */
const lb_gemm_i8_kernel *lb_gemm_i8_kernel_for(lb_isa isa);

/* The packed B operand (opaque in the public header). */
struct lb_packed_i8 {
    const lb_gemm_i8_kernel *kernel;
    lb_int_format fmt; /* LB_INT_S4: int4 b panels */
    int64_t K, N;
    int64_t kgroups;     /* ceil(K / G) */
    int64_t npanels;     /* ceil(N / NR) */
    size_t panel_bytes;  /* bytes of one (kgroups, NR, G) panel, a multiple of 64 */
    unsigned char *data; /* (npanels, kgroups, NR, G) */
    int32_t *comp;       /* (npanels · NR) 128·colsum(B), or NULL */
};

/* The driver with an explicit kernel (no CPU check; dispatch.c checks). */
lb_status lb_gemm_i8_pack_b_with(lb_ctx *ctx, const lb_gemm_i8_kernel *kernel, lb_int_format fmt,
                                 int trans_b, int64_t K, int64_t N, const void *B,
                                 lb_packed_i8 **out);
/* C = op(A) · op(B); with `dequant` not NULL also its out from each tile
 * of C while the tile is in cache (C may then be NULL: per-thread tiles). */
lb_status lb_gemm_i8_packed_run(lb_ctx *ctx, lb_int_format fmt_a, int trans_a, int64_t M,
                                const void *A, const lb_packed_i8 *B, int32_t *C,
                                const lb_gemm_i8_dequant *dequant);

/* Micro-kernels of each path (generic/ always; the others when compiled). */
void lb_gemm_i8_ukernel_4x8_generic(int64_t, const void *, const void *, const int32_t *,
                                    int32_t *, int64_t, int, int, int);
void lb_gemm_i8_ukernel_4x8_s4b_generic(int64_t, const void *, const void *, const int32_t *,
                                        int32_t *, int64_t, int, int, int);
void lb_gemm_i8_ukernel_6x16c2_avx2(int64_t, const void *, const void *, const int32_t *,
                                    int32_t *, int64_t, int, int, int);
void lb_gemm_i8_ukernel_6x16c2_s4b_avx2(int64_t, const void *, const void *, const int32_t *,
                                        int32_t *, int64_t, int, int, int);
void lb_gemm_i8_ukernel_8x32c2_avx512(int64_t, const void *, const void *, const int32_t *,
                                      int32_t *, int64_t, int, int, int);
void lb_gemm_i8_ukernel_8x32c2_s4b_avx512(int64_t, const void *, const void *, const int32_t *,
                                          int32_t *, int64_t, int, int, int);
void lb_gemm_i8_ukernel_8x32c4_avx512vnni(int64_t, const void *, const void *, const int32_t *,
                                          int32_t *, int64_t, int, int, int);
void lb_gemm_i8_ukernel_8x32c4_s4b_avx512vnni(int64_t, const void *, const void *,
                                              const int32_t *, int32_t *, int64_t, int, int, int);

/* Peak probes: 12 independent chains of the path's multiply-add sequence,
 * `iters` iterations; return a value derived from the accumulators (so the
 * loop is not optimised away). Multiply-adds per iteration: 12·64 (vnni),
 * 12·32 (avx512), 12·16 (avx2). */
int64_t lb_int8_peak_loop_avx2(int64_t iters);
int64_t lb_int8_peak_loop_avx512(int64_t iters);
int64_t lb_int8_peak_loop_avx512vnni(int64_t iters);

#endif
