/* cpu/gemm_i8.c — the integer GEMM driver of the cpu backend: packs B once
 * into the micro-kernel's panel layout, packs A per block, and runs the
 * path's MR x NR micro-kernel over a static grid of output tiles.
 *
 * Matches lb_gemm_i8_ref (ref/int_gemm.c) bit for bit: every C element is
 * one int32 sum over all of K, computed by one micro-kernel call (one
 * thread); integer addition is exact and associative, so the grouping of K
 * (quads, pairs) and the tiling cannot change a bit. The VNNI path's +128
 * shift is undone exactly by the compensation (cpu/gemm_i8_kernels.h).
 *
 * Compiled without ISA flags: only the micro-kernels are ISA specific.
 *
 * Blocking (shapes only, never the thread count, decide the tiles):
 *   KC k per K block: a B panel's K block (NR, KC) fits ~16 KiB (L1),
 *   MC rows of A per block: the A block's K block (MC, KC) fits ~128 KiB (L2),
 *   NC columns per block: the B block's K block (NC, KC) fits ~512 KiB (L2),
 *   then MC, NC halved until there are >= 16 tiles (thread balance).
 *   Tile t = (row block t / tiles_n, column block t % tiles_n), split
 *   statically over threads in consecutive runs; a thread packs its A block
 *   (MC, all of K) only when its row block changes. Inside a tile: for each K
 *   block (in increasing k), for each B panel (NR columns), for each MR-row A
 *   panel: one micro-kernel call that stores (first K block) or adds into C.
 */
#include "config.h"
#include "gemm_i8_kernels.h"
#include "../runtime/clones.h"
#include "loops.h"

#include <string.h>
#include "lowbit/alloc.h"
#include "lowbit/ref/int_gemm.h"
#ifdef _OPENMP
#include <omp.h>
#endif

#define LB_B_PANEL_L1_BYTES (16 * 1024) /* a B panel's K block (int8/int16 layout) */
#define LB_A_BLOCK_BYTES (128 * 1024)   /* the A block's K block */
#define LB_B_BLOCK_BYTES (512 * 1024)   /* the B block's K block */
#define LB_MIN_TILES 16
/* Outputs (bytes) from which a one-K-block GEMM streams its stores. */
#define LB_STREAM_MIN_BYTES ((uint64_t)8 << 20)

int64_t lb_s4_bytes(int64_t numel) { return numel <= 0 ? 0 : (numel + 1) / 2; }

/* Sign-extends the two's-complement nibble of flat element e. */
static inline int8_t s4_get(const uint8_t *p, int64_t e)
{
    unsigned byte = p[e >> 1];
    unsigned nibble = (e & 1) ? (byte >> 4) : (byte & 15u);
    return (int8_t)((int)(nibble ^ 8u) - 8);
}

static int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

/* ------------------------------------------------------------ B packing */

/* Element B(k, n) of op(B) (K, N) stored as fmt/trans_b. */
static inline __attribute__((always_inline)) int8_t b_elem(lb_int_format fmt, int trans_b,
                                                           const void *B, int64_t K, int64_t N,
                                                           int64_t k, int64_t n)
{
    int64_t e = trans_b ? n * K + k : k * N + n;
    return fmt == LB_INT_S4 ? s4_get((const uint8_t *)B, e) : ((const int8_t *)B)[e];
}

/* Sixteen bytes in the compiler's generic vector extension. */
typedef uint8_t u8x16 __attribute__((vector_size(16)));
#if defined(__clang__)
#define SHUF16(a, b, ...) __builtin_shufflevector((a), (b), __VA_ARGS__)
#else
#define SHUF16(a, b, ...) __builtin_shuffle((a), (b), (u8x16){__VA_ARGS__})
#endif

/* K-groups [kg0, kg1) of the VNNI panels p0..p1−1 of B stored (K, N)
 * (panel p at data + p·pb, (kgroups, 32, 4): byte j·4 + i of k-group kg is
 * B[4·kg + i][32·p + j]; columns past N and k past K zero), and the
 * columns' sums of those k-groups added to colsum[32·p0 ..] (when not NULL).
 * Each k-group's four rows are read once, in order, across all the panels
 * (streams the hardware prefetches); full groups go through a byte
 * interleave, 16 columns at a time. */
LB_ISA_CLONES
static void pack_b_vnni_rows(const int8_t *B, int64_t K, int64_t N, int64_t kg0, int64_t kg1,
                             int64_t p0, int64_t p1, unsigned char *data, size_t pb,
                             int32_t *colsum)
{
    const int64_t c1 = p1 * 32 < N ? p1 * 32 : N; /* the real columns of the panels */
    for (int64_t kg = kg0; kg < kg1; kg++) {
        const int full_k = kg * 4 + 4 <= K;
        for (int64_t p = p0; p < p1; p++) {
            const int64_t n0 = p * 32;
            unsigned char *dst = data + (size_t)p * pb + (size_t)kg * 128;
            if (full_k && n0 + 32 <= N) {
                for (int h = 0; h < 2; h++) {
                    u8x16 r[4];
                    for (int i = 0; i < 4; i++) memcpy(&r[i], B + (kg * 4 + i) * N + n0 + 16 * h, 16);
                    /* rows 0,1 and 2,3 byte-interleaved, then 16-bit interleaved */
                    const u8x16 a_lo = SHUF16(r[0], r[1], 0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
                    const u8x16 a_hi = SHUF16(r[0], r[1], 8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31);
                    const u8x16 b_lo = SHUF16(r[2], r[3], 0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
                    const u8x16 b_hi = SHUF16(r[2], r[3], 8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31);
                    const u8x16 o[4] = {
                        SHUF16(a_lo, b_lo, 0, 1, 16, 17, 2, 3, 18, 19, 4, 5, 20, 21, 6, 7, 22, 23),
                        SHUF16(a_lo, b_lo, 8, 9, 24, 25, 10, 11, 26, 27, 12, 13, 28, 29, 14, 15, 30, 31),
                        SHUF16(a_hi, b_hi, 0, 1, 16, 17, 2, 3, 18, 19, 4, 5, 20, 21, 6, 7, 22, 23),
                        SHUF16(a_hi, b_hi, 8, 9, 24, 25, 10, 11, 26, 27, 12, 13, 28, 29, 14, 15, 30, 31)};
                    memcpy(dst + 64 * h, o, 64);
                }
            } else {
                for (int j = 0; j < 32; j++)
                    for (int i = 0; i < 4; i++) {
                        const int64_t k = kg * 4 + i, n = n0 + j;
                        dst[j * 4 + i] = (unsigned char)(k < K && n < N ? B[k * N + n] : 0);
                    }
            }
        }
        if (!colsum) continue;
        /* the k-group's rows again (in L1): their sums per column */
        for (int i = 0; i < 4 && kg * 4 + i < K; i++) {
            const int8_t *row = B + (kg * 4 + i) * N;
#pragma omp simd
            for (int64_t c = p0 * 32; c < c1; c++) colsum[c - p0 * 32] += row[c];
        }
    }
}

/* Packs panel p (columns p·NR ..) of op(B) and its compensation. The
 * always_inline body is instantiated for each (fmt, trans_b) below so the
 * element fetch has no run-time branches. */
static inline __attribute__((always_inline)) void
pack_b_panel(int NR, int G, int b_s16, lb_int_format fmt, int trans_b, int s4_store,
             const void *B, int64_t K, int64_t N, int64_t kgroups, int64_t p,
             unsigned char *panel /* (kgroups, NR, G) */, int32_t *comp /* (NR) or NULL */)
{
    const int64_t half = (int64_t)NR * G / 2; /* int4: bytes per k-group */
    int32_t colsum[64] = {0};                 /* NR <= 64 */
    const int64_t n0 = p * NR;
    if (fmt == LB_INT_S8 && !s4_store && n0 + NR <= N) {
        /* Fast path: int8 source, a full panel; only the last k-group may be
         * partial (zero padded). */
        const int8_t *B8 = B;
        for (int64_t kg = 0; kg < kgroups; kg++) {
            const int full = (kg + 1) * G <= K;
            for (int j = 0; j < NR; j++) {
                for (int i = 0; i < G; i++) {
                    const int64_t k = kg * G + i;
                    const int8_t v = (full || k < K)
                                         ? (trans_b ? B8[(n0 + j) * K + k] : B8[k * N + n0 + j])
                                         : 0;
                    colsum[j] += v;
                    if (b_s16) ((int16_t *)(void *)panel)[(kg * NR + j) * G + i] = v;
                    else ((int8_t *)panel)[(kg * NR + j) * G + i] = v;
                }
            }
        }
        if (comp)
            for (int j = 0; j < NR; j++) comp[j] = colsum[j] * 128;
        return;
    }
    /* Loop order follows the storage: trans_b = 1 (B (N, K)) reads each
     * column's k contiguously; trans_b = 0 (B (K, N)) reads NR columns of one
     * k contiguously. Every element is written exactly once either way. */
    for (int64_t outer = 0; outer < (trans_b ? NR : kgroups * G); outer++) {
        for (int64_t inner = 0; inner < (trans_b ? kgroups * G : NR); inner++) {
            const int j = (int)(trans_b ? outer : inner);
            const int64_t k = trans_b ? inner : outer;
            const int64_t n = p * NR + j, kg = k / G;
            const int i = (int)(k % G);
            const int8_t v = (n < N && k < K) ? b_elem(fmt, trans_b, B, K, N, k, n) : 0;
            colsum[j] += v;
            const int64_t idx = (kg * NR + j) * G + i; /* element in the int8 layout */
            if (s4_store) {
                const int64_t e = (int64_t)j * G + i; /* within the k-group */
                unsigned char *byte = panel + kg * half + (e % half);
                const unsigned nib = (unsigned)v & 15u;
                *byte = (unsigned char)(e < half ? ((*byte & 0xF0u) | nib)
                                                 : ((*byte & 0x0Fu) | (nib << 4)));
            } else if (b_s16) {
                ((int16_t *)(void *)panel)[idx] = v;
            } else {
                ((int8_t *)panel)[idx] = v;
            }
        }
    }
    /* |colsum| <= LB_GEMM_I8_MAX_K·128, so 128·colsum fits int32. */
    if (comp)
        for (int j = 0; j < NR; j++) comp[j] = colsum[j] * 128;
}

/* Instantiates pack_b_panel for each kernel shape and (fmt, trans_b), so
 * that the tile sizes and element types are constants in the loops. */
#define PACK_B_TRANS(NR, G, S16, FMT, S4)                                                      \
    do {                                                                                       \
        if (trans_b) pack_b_panel(NR, G, S16, FMT, 1, S4, B, K, N, kgroups, p, dst, cp);       \
        else pack_b_panel(NR, G, S16, FMT, 0, S4, B, K, N, kgroups, p, dst, cp);               \
    } while (0)
#define PACK_B_FORMATS(NR, G, S16)                                                             \
    do {                                                                                       \
        if (fmt == LB_INT_S4) PACK_B_TRANS(NR, G, S16, LB_INT_S4, 1);                          \
        else PACK_B_TRANS(NR, G, S16, LB_INT_S8, 0);                                           \
    } while (0)

static void pack_b_dispatch(const lb_gemm_i8_kernel *kn, lb_int_format fmt, int trans_b,
                            const void *B, int64_t K, int64_t N, int64_t kgroups, int64_t p,
                            unsigned char *dst, int32_t *cp)
{
    if (kn->nr == 32 && kn->g == 4 && !kn->b_s16) PACK_B_FORMATS(32, 4, 0);      /* vnni */
    else if (kn->nr == 32 && kn->g == 2 && kn->b_s16) PACK_B_FORMATS(32, 2, 1);  /* avx512 */
    else if (kn->nr == 16 && kn->g == 2 && kn->b_s16) PACK_B_FORMATS(16, 2, 1);  /* avx2 */
    else PACK_B_FORMATS(kn->nr, kn->g, kn->b_s16);                               /* any other */
}

lb_status lb_gemm_i8_pack_b_with(lb_ctx *ctx, const lb_gemm_i8_kernel *kn, lb_int_format fmt,
                                 int trans_b, int64_t K, int64_t N, const void *B,
                                 lb_packed_i8 **out)
{
    if (!out) return lb_error(ctx, LB_ERR_ARG, "NULL output for the packed GEMM operand");
    *out = NULL;
    if (!kn) return lb_error(ctx, LB_ERR_ARG, "no GEMM kernel");
    if (fmt != LB_INT_S8 && fmt != LB_INT_S4)
        return lb_error(ctx, LB_ERR_ARG, "unknown integer format %d", (int)fmt);
    if (K < 0 || N < 0)
        return lb_error(ctx, LB_ERR_ARG, "negative GEMM size K=%lld N=%lld", (long long)K,
                        (long long)N);
    if (K > LB_GEMM_I8_MAX_K)
        return lb_error(ctx, LB_ERR_ARG,
                        "GEMM K=%lld exceeds %d: int32 accumulation could overflow", (long long)K,
                        LB_GEMM_I8_MAX_K);
    if (K > 0 && N > 0 && !B) return lb_error(ctx, LB_ERR_ARG, "NULL GEMM operand B");

    lb_packed_i8 *pk = lb_calloc(1, sizeof *pk);
    if (!pk) return lb_error(ctx, LB_ERR_NOMEM, "out of memory packing B (%lld x %lld)",
                             (long long)K, (long long)N);
    pk->kernel = kn;
    pk->fmt = fmt;
    pk->K = K;
    pk->N = N;
    pk->kgroups = ceil_div(K, kn->g);
    pk->npanels = ceil_div(N, kn->nr);
    const int s4_store = fmt == LB_INT_S4;
    size_t elem_bytes = (size_t)kn->nr * (size_t)kn->g * (kn->b_s16 ? 2u : 1u);
    if (s4_store) elem_bytes = (size_t)kn->nr * (size_t)kn->g / 2;
    size_t panel = 0, total = 0, comp_count = 0;
    if (!lb_mul_size((size_t)pk->kgroups, elem_bytes, &panel) ||
        !lb_add_size(panel, 63, &panel) ||
        !lb_mul_size(panel / 64 * 64, (size_t)pk->npanels, &total) ||
        !lb_mul_size((size_t)pk->npanels, (size_t)kn->nr, &comp_count)) {
        lb_free(pk);
        return lb_error(ctx, LB_ERR_ARG, "packed GEMM operand size overflows (K=%lld N=%lld)",
                        (long long)K, (long long)N);
    }
    pk->panel_bytes = panel / 64 * 64;
    /* Packing writes every element; int4 nibbles are or-ed into zeroed bytes. */
    pk->data = s4_store ? lb_calloc(total ? total : 1, 1) : lb_alloc(total ? total : 1);
    if (kn->comp) pk->comp = lb_calloc(comp_count ? comp_count : 1, sizeof(int32_t));
    if (!pk->data || (kn->comp && !pk->comp)) {
        lb_packed_i8_free(pk);
        return lb_error(ctx, LB_ERR_NOMEM, "out of memory packing B (%zu bytes)", total);
    }

    const int64_t npanels = pk->npanels, kgroups = pk->kgroups;
    const size_t pb = pk->panel_bytes;
    unsigned char *data = pk->data;
    int32_t *comp = pk->comp;
    const int nthreads = lb_cpu_threads(ctx);
    if (fmt == LB_INT_S8 && !trans_b && kn->nr == 32 && kn->g == 4 && !kn->b_s16) {
        /* VNNI from B stored (K, N): each thread takes a contiguous range of
         * panels and reads the rows once, in order, every panel of the range
         * taking its 32 columns of each k-group (a panel at a time would read
         * B with a row stride, defeating the prefetchers, once per panel
         * pair). */
        int nt = nthreads < npanels ? nthreads : (int)npanels;
        if (nt < 1) nt = 1;
#pragma omp parallel num_threads(nt) if (nt > 1)
        {
            int tid = 0;
#ifdef _OPENMP
            tid = omp_get_thread_num();
#endif
            const int64_t p0 = npanels * tid / nt, p1 = npanels * (tid + 1) / nt;
            pack_b_vnni_rows(B, K, N, 0, kgroups, p0, p1, data, pb, comp ? comp + p0 * 32 : NULL);
            if (comp) /* the compensation of the +128 shift of A (|sum| <= MAX_K·128) */
                for (int64_t j = p0 * 32; j < p1 * 32; j++) comp[j] *= 128;
        }
        *out = pk;
        return LB_OK;
    }
    /* Each panel is written by one thread; the result does not depend on the split. */
#pragma omp parallel for schedule(static) num_threads(nthreads) if (nthreads > 1 && npanels > 1)
    for (int64_t p = 0; p < npanels; p++) {
        unsigned char *dst = data + (size_t)p * pb;
        int32_t *cp = comp ? comp + p * kn->nr : NULL;
        pack_b_dispatch(kn, fmt, trans_b, B, K, N, kgroups, p, dst, cp);
    }
    *out = pk;
    return LB_OK;
}

void lb_packed_i8_free(lb_packed_i8 *p)
{
    if (!p) return;
    lb_free(p->data);
    lb_free(p->comp);
    lb_free(p);
}

lb_isa lb_packed_i8_isa(const lb_packed_i8 *p) { return p ? p->kernel->isa : LB_ISA_AUTO; }
int64_t lb_packed_i8_k(const lb_packed_i8 *p) { return p ? p->K : 0; }
int64_t lb_packed_i8_n(const lb_packed_i8 *p) { return p ? p->N : 0; }

/* ------------------------------------------------------------ A packing */

/* Converts an int8 A value to the panel encoding of `kind`. */
#define A_STORE(kind, dst, idx, v)                                                          \
    do {                                                                                    \
        if ((kind) == LB_APACK_U8X) ((uint8_t *)(dst))[idx] = (uint8_t)((uint8_t)(v) ^ 0x80u); \
        else if ((kind) == LB_APACK_S16) ((int16_t *)(void *)(dst))[idx] = (int16_t)(v);    \
        else ((int8_t *)(dst))[idx] = (int8_t)(v);                                          \
    } while (0)

/* Four 32-bit lanes in the compiler's generic vector extension (SSE2 on any
 * x86-64, NEON elsewhere); shuffles through the compiler's builtin. */
typedef uint32_t u32x4 __attribute__((vector_size(16)));
#if defined(__clang__)
#define SHUF4(a, b, i, j, k, l) __builtin_shufflevector((a), (b), i, j, k, l)
#else
#define SHUF4(a, b, i, j, k, l) __builtin_shuffle((a), (b), (u32x4){i, j, k, l})
#endif

/* Packs the whole k-groups of 8 full rows (src (8, K), row stride K) in
 * steps of four k-groups into the U8X panel layout (k-group, row) of 4-byte
 * groups: rows 0-3 and 4-7 each go through a 4x4 dword transpose, every byte
 * xor 0x80. Returns the number of k-groups written (a multiple of 4). */
static int64_t pack_u8x_rows8(const int8_t *src, int64_t K, unsigned char *pd)
{
    const u32x4 flip = {0x80808080u, 0x80808080u, 0x80808080u, 0x80808080u};
    int64_t kg = 0;
    for (; (kg + 4) * 4 <= K; kg += 4) {
        u32x4 r[8];
        for (int i = 0; i < 8; i++) {
            memcpy(&r[i], src + i * K + kg * 4, 16);
            r[i] ^= flip;
        }
        for (int h = 0; h < 2; h++) {
            const u32x4 *q = r + 4 * h;
            const u32x4 t0 = SHUF4(q[0], q[1], 0, 4, 1, 5); /* a0 b0 a1 b1 */
            const u32x4 t1 = SHUF4(q[2], q[3], 0, 4, 1, 5); /* c0 d0 c1 d1 */
            const u32x4 t2 = SHUF4(q[0], q[1], 2, 6, 3, 7); /* a2 b2 a3 b3 */
            const u32x4 t3 = SHUF4(q[2], q[3], 2, 6, 3, 7); /* c2 d2 c3 d3 */
            const u32x4 g[4] = {SHUF4(t0, t1, 0, 1, 4, 5), SHUF4(t0, t1, 2, 3, 6, 7),
                                SHUF4(t2, t3, 0, 1, 4, 5), SHUF4(t2, t3, 2, 3, 6, 7)};
            for (int j = 0; j < 4; j++) memcpy(pd + (size_t)((kg + j) * 8 + 4 * h) * 4, &g[j], 16);
        }
    }
    return kg;
}

/* Eight 16-bit lanes (u8x16 and SHUF16 are defined with the B packing). */
typedef uint16_t u16x8 __attribute__((vector_size(16)));
#if defined(__clang__)
#define SHUF8(a, b, ...) __builtin_shufflevector((a), (b), __VA_ARGS__)
#else
#define SHUF8(a, b, ...) __builtin_shuffle((a), (b), (u16x8){__VA_ARGS__})
#endif

/* The transposed A of the U8X encoding (A stored (K, M), MR = 8): k-groups
 * [g0, g1) of two full panels (rows m .. m+15 of op(A), m = the first panel's
 * first row) into pd0 and pd1. Per k-group the four k rows' 16 bytes are
 * interleaved byte-wise (k0 k1, k2 k3), then 16-bit-wise, which leaves each
 * row's 4-byte group (k0 k1 k2 k3) in order; every byte xor 0x80. The k-groups
 * must lie inside K. */
static void pack_u8x_trans_pair(const int8_t *A, int64_t M, int64_t m, int64_t g0, int64_t g1,
                                unsigned char *pd0, unsigned char *pd1)
{
    const u8x16 flip = {0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80,
                        0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80};
    for (int64_t kg = g0; kg < g1; kg++) {
        u8x16 x[4];
        for (int i = 0; i < 4; i++) {
            memcpy(&x[i], A + (kg * 4 + i) * M + m, 16);
            x[i] ^= flip;
        }
        const u8x16 a_lo = SHUF16(x[0], x[1], 0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
        const u8x16 a_hi = SHUF16(x[0], x[1], 8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31);
        const u8x16 b_lo = SHUF16(x[2], x[3], 0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
        const u8x16 b_hi = SHUF16(x[2], x[3], 8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31);
        u16x8 p[4] = {(u16x8)a_lo, (u16x8)b_lo, (u16x8)a_hi, (u16x8)b_hi};
        const u16x8 r03 = SHUF8(p[0], p[1], 0, 8, 1, 9, 2, 10, 3, 11);
        const u16x8 r47 = SHUF8(p[0], p[1], 4, 12, 5, 13, 6, 14, 7, 15);
        const u16x8 r8b = SHUF8(p[2], p[3], 0, 8, 1, 9, 2, 10, 3, 11);
        const u16x8 rcf = SHUF8(p[2], p[3], 4, 12, 5, 13, 6, 14, 7, 15);
        memcpy(pd0 + kg * 32, &r03, 16);
        memcpy(pd0 + kg * 32 + 16, &r47, 16);
        memcpy(pd1 + kg * 32, &r8b, 16);
        memcpy(pd1 + kg * 32 + 16, &rcf, 16);
    }
}

/* Packs rows m0 .. m0+mc-1 of op(A) into ceil(mc / MR) panels (kgroups, MR,
 * G), rows past mc and k past K padded with the kind's encoding of 0. The
 * always_inline body is instantiated per (kind, fmt, trans_a) so the inner
 * loops have no run-time branches: int8 A is read contiguously
 * (trans_a = 0: along each row's k; trans_a = 1: the block's rows for each k). */
static inline __attribute__((always_inline)) void
pack_a_block(lb_apack_kind kind, lb_int_format fmt, int trans_a, int MR, const void *A, int64_t M,
             int64_t K, int64_t kgroups, int64_t m0, int64_t mc, unsigned char *dst)
{
    const int G = kind == LB_APACK_U8X ? 4 : kind == LB_APACK_S16 ? 2 : 1;
    const int64_t Kp = kgroups * G;
    const int64_t npan = ceil_div(mc, MR);
    const int8_t *A8 = A;
    const size_t panel_bytes = (size_t)(kgroups * MR * G) * (kind == LB_APACK_S16 ? 2u : 1u);
    if (fmt == LB_INT_S8 && trans_a) {
        /* A stored (K, M): each k is a contiguous run of the block's mc rows.
         * Chunks of 64 k keep the rows read in L1 while every panel takes
         * its (contiguous) share of the chunk. */
        /* VNNI encoding: pairs of full panels over the whole k-groups by
         * vector transposes, the rest element by element. */
        const int64_t vec_pan = kind == LB_APACK_U8X && MR == 8 ? mc / 16 * 2 : 0;
        const int64_t vec_k = vec_pan > 0 ? K / 4 * 4 : 0;
        for (int64_t k0 = 0; k0 < Kp; k0 += 64) {
            const int64_t k1 = k0 + 64 < Kp ? k0 + 64 : Kp;
            const int64_t kv = k1 < vec_k ? k1 : vec_k;
            for (int64_t pi = 0; pi < vec_pan && k0 < kv; pi += 2)
                pack_u8x_trans_pair(A8, M, m0 + pi * MR, k0 / 4, kv / 4,
                                    dst + (size_t)pi * panel_bytes,
                                    dst + (size_t)(pi + 1) * panel_bytes);
            for (int64_t pi = 0; pi < npan; pi++) {
                unsigned char *pd = dst + (size_t)pi * panel_bytes;
                for (int64_t k = pi < vec_pan && kv > k0 ? kv : k0; k < k1; k++) {
                    const int64_t base = (k / G) * MR * G + k % G;
                    const int8_t *src = k < K ? A8 + k * M + m0 + pi * MR : NULL;
                    for (int r = 0; r < MR; r++) {
                        const int8_t v = (src && pi * MR + r < mc) ? src[r] : 0;
                        A_STORE(kind, pd, base + r * G, v);
                    }
                }
            }
        }
        return;
    }
    if (kind == LB_APACK_U8X && fmt == LB_INT_S8 && MR == 8) {
        /* A stored (M, K), VNNI encoding: each k-group is 4 bytes of one row,
         * stored with the 0x80 of every byte flipped, the panel in order
         * (k-group, row). Full panels move 16 bytes (4 k-groups) of each of
         * the 8 rows at a time through a 4x4 dword transpose per half. */
        for (int64_t pi = 0; pi < npan; pi++) {
            unsigned char *pd = dst + (size_t)pi * panel_bytes;
            const int64_t rows = mc - pi * MR < MR ? mc - pi * MR : MR;
            const int8_t *src = A8 + (m0 + pi * MR) * K;
            int64_t kg = 0;
            if (rows == MR) kg = pack_u8x_rows8(src, K, pd);
            for (; kg < kgroups; kg++) {
                for (int r = 0; r < MR; r++) {
                    unsigned char w[4] = {0x80, 0x80, 0x80, 0x80};
                    for (int i = 0; i < 4 && r < rows; i++) {
                        const int64_t k = kg * 4 + i;
                        if (k < K) w[i] = (unsigned char)((uint8_t)src[r * K + k] ^ 0x80u);
                    }
                    memcpy(pd + (size_t)(kg * MR + r) * 4, w, 4);
                }
            }
        }
        return;
    }
    for (int64_t pi = 0; pi < npan; pi++) {
        unsigned char *pd = dst + (size_t)pi * panel_bytes;
        const int64_t rows = mc - pi * MR < MR ? mc - pi * MR : MR;
        for (int r = 0; r < MR; r++) {
            const int64_t m = m0 + pi * MR + r;
            if (r >= rows) {
                for (int64_t k = 0; k < Kp; k++) A_STORE(kind, pd, (k / G * MR + r) * G + k % G, 0);
                continue;
            }
            if (fmt == LB_INT_S8) {
                /* A stored (M, K): one contiguous row. */
                const int8_t *src = A8 + m * K;
                int64_t kg = 0;
                for (; kg < K / G; kg++)
                    for (int i = 0; i < G; i++)
                        A_STORE(kind, pd, (kg * MR + r) * G + i, src[kg * G + i]);
                for (int64_t k = kg * G; k < Kp; k++)
                    A_STORE(kind, pd, (k / G * MR + r) * G + k % G, k < K ? src[k] : 0);
            } else {
                for (int64_t k = 0; k < Kp; k++) {
                    const int64_t e = trans_a ? k * M + m : m * K + k;
                    A_STORE(kind, pd, (k / G * MR + r) * G + k % G,
                            k < K ? s4_get((const uint8_t *)A, e) : 0);
                }
            }
        }
    }
}

#define PACK_A_FORMATS(kind)                                                                  \
    do {                                                                                      \
        if (fmt == LB_INT_S4)                                                                 \
            pack_a_block(kind, LB_INT_S4, trans_a, MR, A, M, K, kgroups, m0, mc, dst);        \
        else if (trans_a)                                                                     \
            pack_a_block(kind, LB_INT_S8, 1, MR, A, M, K, kgroups, m0, mc, dst);              \
        else                                                                                  \
            pack_a_block(kind, LB_INT_S8, 0, MR, A, M, K, kgroups, m0, mc, dst);              \
    } while (0)

static void pack_a_dispatch(const lb_gemm_i8_kernel *kn, lb_int_format fmt, int trans_a,
                            const void *A, int64_t M, int64_t K, int64_t kgroups, int64_t m0,
                            int64_t mc, unsigned char *dst)
{
    const int MR = kn->mr;
    switch (kn->a_kind) {
    case LB_APACK_U8X: PACK_A_FORMATS(LB_APACK_U8X); break;
    case LB_APACK_S16: PACK_A_FORMATS(LB_APACK_S16); break;
    default: PACK_A_FORMATS(LB_APACK_S8); break;
    }
}

/* ---------------------------------------------------------------- driver */

lb_status lb_gemm_i8_packed_run(lb_ctx *ctx, lb_int_format fmt_a, int trans_a, int64_t M,
                                const void *A, const lb_packed_i8 *B, int32_t *C,
                                const lb_gemm_i8_dequant *dequant)
{
    if (!B) return lb_error(ctx, LB_ERR_ARG, "NULL packed GEMM operand");
    if (fmt_a != LB_INT_S8 && fmt_a != LB_INT_S4)
        return lb_error(ctx, LB_ERR_ARG, "unknown integer format %d", (int)fmt_a);
    const int64_t N = B->N, K = B->K;
    if (M < 0) return lb_error(ctx, LB_ERR_ARG, "negative GEMM size M=%lld", (long long)M);
    if (M > 0 && N > 0 && !C && !dequant) return lb_error(ctx, LB_ERR_ARG, "NULL GEMM output");
    if (M > 0 && N > 0 && dequant && !dequant->out)
        return lb_error(ctx, LB_ERR_ARG, "NULL GEMM dequantize output");
    if (M > 0 && K > 0 && !A) return lb_error(ctx, LB_ERR_ARG, "NULL GEMM operand A");
    if (M == 0 || N == 0) return LB_OK;
    if (K == 0) {
        if (C) memset(C, 0, (size_t)M * (size_t)N * sizeof *C);
        if (dequant) /* every product is the integer 0 */
            for (int64_t m = 0; m < M; m++)
                for (int64_t n = 0; n < N; n++) {
                    float y = dequant->scale * (float)0;
                    if (dequant->bias) y += dequant->bias[n];
                    dequant->out[m * N + n] = y;
                }
        return LB_OK;
    }
    const lb_gemm_i8_kernel *kn = B->kernel;
    const int MR = kn->mr, NR = kn->nr, G = kn->g;
    const int64_t kgroups = B->kgroups;
    const size_t a_esize = kn->a_kind == LB_APACK_S16 ? 2u : 1u;
    const size_t a_panel_bytes = (size_t)kgroups * (size_t)MR * (size_t)G * a_esize;
    /* Bytes of one k-group of a B panel (int4: half of int8). */
    const size_t b_group_int8 = (size_t)NR * (size_t)G * (kn->b_s16 ? 2u : 1u);
    const size_t b_group_bytes = B->fmt == LB_INT_S4 ? (size_t)NR * (size_t)G / 2 : b_group_int8;

    /* Blocking, from the shape alone (never from the thread count):
     * KC k-groups per K block so that a B panel's block stays in L1;
     * MC rows so that the A block's K block stays in L2; NC panels so that
     * the B block's K block stays in L2; then smaller blocks until there are
     * at least LB_MIN_TILES tiles, so that threads get balanced work. */
    int64_t kc = (int64_t)(LB_B_PANEL_L1_BYTES / b_group_int8);
    if (kc < 1) kc = 1;
    if (kc > kgroups) kc = kgroups;
    const int64_t m_panels = ceil_div(M, MR);
    const size_t a_group_bytes = (size_t)MR * (size_t)G * a_esize;
    int64_t mc_panels = (int64_t)(LB_A_BLOCK_BYTES / ((size_t)kc * a_group_bytes));
    if (mc_panels < 1) mc_panels = 1;
    if (mc_panels > m_panels) mc_panels = m_panels;
    int64_t nc_panels = (int64_t)(LB_B_BLOCK_BYTES / ((size_t)kc * b_group_bytes));
    if (nc_panels < 1) nc_panels = 1;
    if (nc_panels > B->npanels) nc_panels = B->npanels;
    while (ceil_div(m_panels, mc_panels) * ceil_div(B->npanels, nc_panels) < LB_MIN_TILES) {
        if (mc_panels >= 4) mc_panels = (mc_panels + 1) / 2;
        else if (nc_panels >= 2) nc_panels = (nc_panels + 1) / 2;
        else break;
    }
    /* Even out the row blocks: same count, sizes differing by at most one panel. */
    mc_panels = ceil_div(m_panels, ceil_div(m_panels, mc_panels));
    const int64_t MC = mc_panels * MR;
    const int64_t tiles_m = ceil_div(M, MC), tiles_n = ceil_div(B->npanels, nc_panels);
    const int64_t tiles = tiles_m * tiles_n;

    /* A large output computed in one K block goes to memory with
     * non-temporal stores (it cannot stay in cache; plain stores would first
     * read every line), when the kernel has them and C's rows are aligned. */
    const int stream = kn->stream && C && !dequant && kgroups <= kc && N % 16 == 0 &&
                       ((uintptr_t)C & 63) == 0 &&
                       (uint64_t)M * (uint64_t)N * sizeof *C >= LB_STREAM_MIN_BYTES;
    int nthreads = lb_cpu_threads(ctx);
    if ((int64_t)nthreads > tiles) nthreads = (int)tiles;
    if (nthreads < 1) nthreads = 1;
    const size_t a_block_bytes = (size_t)mc_panels * a_panel_bytes;
    /* Without C, each thread's tile of products goes to its own buffer
     * (row stride NCW), converted by the epilogue before the next tile. */
    const int64_t NCW = nc_panels * NR;
    const size_t tile_bytes = !C ? ((size_t)MC * (size_t)NCW * sizeof(int32_t) + 63) / 64 * 64 : 0;
    size_t buf_bytes;
    if (!lb_mul_size(a_block_bytes + tile_bytes, (size_t)nthreads, &buf_bytes))
        return lb_error(ctx, LB_ERR_ARG, "GEMM workspace size overflows");
    unsigned char *abuf = lb_alloc(buf_bytes);
    if (!abuf)
        return lb_error(ctx, LB_ERR_NOMEM, "out of memory for the GEMM workspace (%zu bytes)",
                        buf_bytes);

#pragma omp parallel num_threads(nthreads) if (nthreads > 1)
    {
        int tid = 0;
#ifdef _OPENMP
        tid = omp_get_thread_num();
#endif
        unsigned char *ablock = abuf + (size_t)tid * (a_block_bytes + tile_bytes);
        int32_t *tile = C ? NULL : (int32_t *)(void *)(ablock + a_block_bytes);
        int64_t packed_tm = -1;
#pragma omp for schedule(static)
        for (int64_t t = 0; t < tiles; t++) {
            const int64_t tm = t / tiles_n, tn = t % tiles_n;
            const int64_t m0 = tm * MC;
            const int64_t mc = (M - m0 < MC) ? M - m0 : MC;
            if (tm != packed_tm) {
                pack_a_dispatch(kn, fmt_a, trans_a, A, M, K, kgroups, m0, mc, ablock);
                packed_tm = tm;
            }
            const int64_t p_end = (tn + 1) * nc_panels < B->npanels ? (tn + 1) * nc_panels
                                                                     : B->npanels;
            /* Each C element: K blocks in increasing order, all on this thread. */
            for (int64_t k0 = 0; k0 < kgroups; k0 += kc) {
                const int64_t kn_groups = kgroups - k0 < kc ? kgroups - k0 : kc;
                for (int64_t p = tn * nc_panels; p < p_end; p++) {
                    const unsigned char *bp =
                        B->data + (size_t)p * B->panel_bytes + (size_t)k0 * b_group_bytes;
                    const int32_t *cp = B->comp ? B->comp + p * NR : NULL;
                    const int64_t n0 = p * NR;
                    const int nr = (int)(N - n0 < NR ? N - n0 : NR);
                    for (int64_t r0 = 0; r0 < mc; r0 += MR) {
                        const int mr = (int)(mc - r0 < MR ? mc - r0 : MR);
                        const unsigned char *ap =
                            ablock + (size_t)(r0 / MR) * a_panel_bytes + (size_t)k0 * a_group_bytes;
                        int32_t *c = C ? C + (m0 + r0) * N + n0
                                       : tile + r0 * NCW + (p - tn * nc_panels) * NR;
                        const int64_t ldc = C ? N : NCW;
                        const int mode = k0 > 0 ? LB_TILE_ADD : stream ? LB_TILE_STREAM : LB_TILE_STORE;
                        if (B->fmt == LB_INT_S4)
                            kn->ukernel_s4(kn_groups, ap, bp, cp, c, ldc, mr, nr, mode);
                        else
                            kn->ukernel_s8(kn_groups, ap, bp, cp, c, ldc, mr, nr, mode);
                    }
                }
            }
            if (dequant) { /* the tile is complete: its epilogue while it is in cache */
                const int64_t n0 = tn * nc_panels * NR, n1 = p_end * NR < N ? p_end * NR : N;
                if (C) lb_cpu_dequant_block(dequant, C + m0 * N + n0, N, N, m0, mc, n0, n1);
                else lb_cpu_dequant_block(dequant, tile, NCW, N, m0, mc, n0, n1);
            }
        }
    }
    lb_free(abuf);
    return LB_OK;
}
