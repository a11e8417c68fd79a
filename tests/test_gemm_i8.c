/* tests/test_gemm_i8.c — every cpu integer GEMM path and the oneDNN peer
 * against lb_gemm_i8_ref, bit for bit.
 *
 * Cases: sampled (M, N, K) from {1, 2, 3, 7, 8, 15, 16, 17, 31, 33, 63, 64,
 * 65, 127, 129, 255} (K often not a multiple of 4 or 64) plus a few larger
 * ones (1023), all four transpositions, a packed weight reused across calls,
 * int4 (packed two per byte) weights and activations, and the data kinds:
 * uniform random int8, all-extremes (-128/127 mixtures), zeros, one outlier
 * in zeros, and the largest K (wrap-around of the VNNI shifted sum). Each
 * path runs at 1 and 2 threads. A path the CPU (or build) lacks is skipped
 * (cmocka skip); the scalar path always runs, so the program never exits 77.
 * Failures print the path, the case and the first mismatching index.
 */
#include "config.h"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "lowbit/lowbit.h"
#include "lowbit/cpu.h"
#include "lowbit/ref/int_gemm.h"
#include "test_util.h"

enum data_kind { DATA_RANDOM, DATA_EXTREMES, DATA_MIN_MIN, DATA_ZEROS, DATA_OUTLIER, DATA_KINDS };
static const char *const data_names[] = {"random", "extremes", "all-128", "zeros", "outlier"};

/* How the GEMM is called. */
enum variant {
    VAR_PLAIN,    /* lb_gemm_i8 (B packed per call), trans from the case */
    VAR_PACKED,   /* lb_gemm_i8_pack_b once, lb_gemm_i8_packed twice */
    VAR_S4_B,     /* int4 B (packed nibbles), int8 A */
    VAR_S4_AB,    /* int4 A and B */
    VAR_COUNT
};
static const char *const variant_names[] = {"plain", "packed", "int4-B", "int4-A+B"};

typedef struct gemm_case {
    int64_t M, N, K;
    int trans_a, trans_b;
    enum variant var;
    enum data_kind data;
    uint64_t seed;
} gemm_case;

/* Fills x (n) with values of the data kind, limited to [lo, hi]. */
static void fill(int8_t *x, int64_t n, enum data_kind kind, int lo, int hi, uint64_t seed,
                 uint64_t stream)
{
    const uint32_t span = (uint32_t)(hi - lo + 1);
    for (int64_t i = 0; i < n; i++) {
        const uint32_t r = lb_rng_u32(seed, stream, (uint64_t)i);
        switch (kind) {
        case DATA_RANDOM: x[i] = (int8_t)(lo + (int)(r % span)); break;
        case DATA_EXTREMES: x[i] = (int8_t)((r & 1) ? hi : lo); break;
        case DATA_MIN_MIN: x[i] = (int8_t)lo; break;
        default: x[i] = 0; break;
        }
    }
    if (kind == DATA_OUTLIER && n > 0)
        x[lb_rng_u32(seed, stream + 1, 0) % (uint64_t)n] = (int8_t)((stream & 1) ? lo : hi);
}

/* Packs int8 values in [-8, 7] two per byte (flat element e in byte e / 2,
 * low nibble first), as lowbit/cpu.h documents. */
static void pack_s4(const int8_t *x, int64_t n, uint8_t *out)
{
    memset(out, 0, (size_t)lb_s4_bytes(n));
    for (int64_t e = 0; e < n; e++)
        out[e / 2] |= (uint8_t)(((unsigned)x[e] & 15u) << ((e & 1) ? 4 : 0));
}

typedef struct gemm_data {
    int8_t *A, *B;     /* int8 values (int4 cases: in [-8, 7]) */
    uint8_t *A4, *B4;  /* packed int4 copies */
    int32_t *want, *got;
} gemm_data;

static void data_free(gemm_data *d)
{
    free(d->A);
    free(d->B);
    free(d->A4);
    free(d->B4);
    free(d->want);
    free(d->got);
}

static void data_make(const gemm_case *c, gemm_data *d)
{
    const int64_t MK = c->M * c->K, KN = c->K * c->N, MN = c->M * c->N;
    const int s4a = c->var == VAR_S4_AB, s4b = c->var == VAR_S4_B || c->var == VAR_S4_AB;
    d->A = malloc((size_t)(MK ? MK : 1));
    d->B = malloc((size_t)(KN ? KN : 1));
    d->A4 = malloc((size_t)(lb_s4_bytes(MK) + 1));
    d->B4 = malloc((size_t)(lb_s4_bytes(KN) + 1));
    d->want = malloc((size_t)(MN ? MN : 1) * sizeof(int32_t));
    d->got = malloc((size_t)(MN ? MN : 1) * sizeof(int32_t));
    assert_non_null(d->A);
    assert_non_null(d->B);
    assert_non_null(d->A4);
    assert_non_null(d->B4);
    assert_non_null(d->want);
    assert_non_null(d->got);
    fill(d->A, MK, c->data, s4a ? -8 : -128, s4a ? 7 : 127, c->seed, 2);
    fill(d->B, KN, c->data, s4b ? -8 : -128, s4b ? 7 : 127, c->seed, 5);
    pack_s4(d->A, MK, d->A4);
    pack_s4(d->B, KN, d->B4);
    assert_int_equal(lb_gemm_i8_ref(NULL, c->trans_a, c->trans_b, c->M, c->N, c->K, d->A, d->B,
                                    d->want),
                     LB_OK);
}

static void describe(char *buf, size_t n, const gemm_case *c)
{
    snprintf(buf, n, "M=%lld N=%lld K=%lld trans_a=%d trans_b=%d %s data=%s", (long long)c->M,
             (long long)c->N, (long long)c->K, c->trans_a, c->trans_b, variant_names[c->var],
             data_names[c->data]);
}

/* Returns 0 when got == want; else prints the first mismatch and returns 1. */
static int compare(const char *path, int threads, const gemm_case *c, const int32_t *want,
                   const int32_t *got)
{
    for (int64_t i = 0; i < c->M * c->N; i++) {
        if (got[i] != want[i]) {
            char desc[160];
            describe(desc, sizeof desc, c);
            print_message("MISMATCH path=%s threads=%d %s: first at C[%lld][%lld] got %d want %d\n",
                          path, threads, desc, (long long)(i / c->N), (long long)(i % c->N),
                          got[i], want[i]);
            return 1;
        }
    }
    return 0;
}

/* Runs one case on the context's path; returns the number of failures. */
static int run_case(lb_ctx *ctx, const char *path, int threads, const gemm_case *c,
                    gemm_data *d)
{
    const int64_t MN = c->M * c->N;
    lb_status st = LB_OK;
    memset(d->got, 0x5A, (size_t)(MN ? MN : 1) * sizeof(int32_t)); /* poison */
    if (c->var == VAR_PLAIN) {
        st = lb_gemm_i8(ctx, c->trans_a, c->trans_b, c->M, c->N, c->K, d->A, d->B, d->got);
    } else {
        lb_packed_i8 *pb = NULL;
        const int s4b = c->var != VAR_PACKED;
        st = lb_gemm_i8_pack_b(ctx, s4b ? LB_INT_S4 : LB_INT_S8, c->trans_b, c->K, c->N,
                               s4b ? (const void *)d->B4 : (const void *)d->B, &pb);
        const int s4a = c->var == VAR_S4_AB;
        const void *A = s4a ? (const void *)d->A4 : (const void *)d->A;
        const lb_int_format fa = s4a ? LB_INT_S4 : LB_INT_S8;
        if (st == LB_OK) st = lb_gemm_i8_packed(ctx, fa, c->trans_a, c->M, A, pb, d->got);
        /* The packed weight is reusable: a second call gives the same bits. */
        if (st == LB_OK && c->var == VAR_PACKED) {
            if (compare(path, threads, c, d->want, d->got) != 0) {
                lb_packed_i8_free(pb);
                return 1;
            }
            memset(d->got, 0x5A, (size_t)(MN ? MN : 1) * sizeof(int32_t));
            st = lb_gemm_i8_packed(ctx, fa, c->trans_a, c->M, A, pb, d->got);
        }
        lb_packed_i8_free(pb);
    }
    if (st != LB_OK) {
        char desc[160];
        describe(desc, sizeof desc, c);
        print_message("ERROR path=%s threads=%d %s: %s: %s\n", path, threads, desc,
                      lb_status_str(st), lb_ctx_error(ctx));
        return 1;
    }
    return compare(path, threads, c, d->want, d->got);
}

static const int64_t sizes[] = {1, 2, 3, 7, 8, 15, 16, 17, 31, 33, 63, 64, 65, 127, 129, 255};
#define NSIZES ((int)(sizeof sizes / sizeof sizes[0]))

/* The case list: deterministic samples of the size grid plus fixed extras. */
static size_t make_cases(gemm_case *cases, size_t cap)
{
    size_t n = 0;
    const uint64_t stream = lb_rng_stream("test_gemm_i8.cases", 0);
    /* Each size appears as M, N and K at least once (the diagonal, shifted). */
    for (int i = 0; i < NSIZES && n < cap; i++) {
        gemm_case c = {sizes[i], sizes[(i + 5) % NSIZES], sizes[(i + 11) % NSIZES],
                       i & 1, (i >> 1) & 1, (enum variant)(i % VAR_COUNT),
                       (enum data_kind)(i % DATA_KINDS), 1000u + (uint64_t)i};
        cases[n++] = c;
    }
    /* Random samples of the grid; the volume is capped to keep the test fast. */
    for (uint64_t i = 0; n < cap && i < 4000 && n < 140; i++) {
        gemm_case c;
        c.M = sizes[lb_rng_u32(7, stream, 4 * i) % NSIZES];
        c.N = sizes[lb_rng_u32(7, stream, 4 * i + 1) % NSIZES];
        c.K = sizes[lb_rng_u32(7, stream, 4 * i + 2) % NSIZES];
        if (c.M * c.N * c.K > 600000) continue;
        const uint32_t r = lb_rng_u32(7, stream, 4 * i + 3);
        c.trans_a = (int)(r & 1);
        c.trans_b = (int)((r >> 1) & 1);
        c.var = (enum variant)((r >> 2) % VAR_COUNT);
        c.data = (enum data_kind)((r >> 8) % DATA_KINDS);
        c.seed = 2000u + i;
        cases[n++] = c;
    }
    /* Larger and adversarial extras: 1023, K just past multiples of 4/64,
     * and the largest K with the values that make the shifted sum wrap. */
    static const gemm_case extra[] = {
        {33, 1023, 65, 0, 1, VAR_PACKED, DATA_RANDOM, 1},
        {1023, 17, 129, 0, 1, VAR_PLAIN, DATA_EXTREMES, 2},
        {64, 64, 1023, 1, 0, VAR_PLAIN, DATA_RANDOM, 3},
        {17, 65, 1023, 0, 1, VAR_S4_B, DATA_RANDOM, 4},
        {31, 33, 1023, 1, 1, VAR_S4_AB, DATA_EXTREMES, 5},
        {255, 255, 255, 0, 1, VAR_PACKED, DATA_EXTREMES, 6},
        {129, 1023, 5, 0, 0, VAR_PLAIN, DATA_OUTLIER, 7},
        {3, 5, LB_GEMM_I8_MAX_K, 0, 1, VAR_PLAIN, DATA_MIN_MIN, 8},
        {3, 33, LB_GEMM_I8_MAX_K, 0, 1, VAR_PACKED, DATA_EXTREMES, 9},
        {2, 3, LB_GEMM_I8_MAX_K - 2, 1, 0, VAR_PLAIN, DATA_RANDOM, 10},
        {8, 32, 4, 0, 1, VAR_PLAIN, DATA_ZEROS, 11},
        {9, 33, 68, 0, 1, VAR_S4_B, DATA_MIN_MIN, 12},
        /* transposed A: pairs of full panels (vector transposes), a partial
         * panel and k past the last whole group and a 64-k chunk */
        {50, 40, 131, 1, 0, VAR_PACKED, DATA_EXTREMES, 13},
        {300, 24, 257, 1, 1, VAR_PLAIN, DATA_RANDOM, 14},
    };
    for (size_t i = 0; i < sizeof extra / sizeof extra[0] && n < cap; i++) cases[n++] = extra[i];
    return n;
}

/* All cases on one path at 1 and 2 threads. */
static void run_path(lb_isa isa)
{
    if (!lb_cpu_isa_available(isa)) {
        print_message("SKIP: the %s path is not available on this CPU/build\n", lb_isa_name(isa));
        skip();
    }
    lb_ctx *ctx = NULL;
    assert_int_equal(lb_ctx_create(&ctx), LB_OK);
    assert_int_equal(lb_ctx_set_isa(ctx, isa), LB_OK);
    static gemm_case cases[256];
    const size_t ncases = make_cases(cases, sizeof cases / sizeof cases[0]);
    int failures = 0;
    for (size_t i = 0; i < ncases; i++) {
        gemm_data d;
        data_make(&cases[i], &d);
        for (int threads = 1; threads <= 2; threads++) {
            if (lb_ctx_set_threads(ctx, threads) != LB_OK) continue; /* no OpenMP: 1 only */
            failures += run_case(ctx, lb_isa_name(isa), threads, &cases[i], &d);
        }
        data_free(&d);
        if (failures > 10) break;
    }
    lb_ctx_free(ctx);
    assert_int_equal(failures, 0);
}

static void test_scalar(void **state) { (void)state; run_path(LB_ISA_SCALAR); }
static void test_avx2(void **state) { (void)state; run_path(LB_ISA_AVX2); }
static void test_avx512(void **state) { (void)state; run_path(LB_ISA_AVX512); }
static void test_avx512vnni(void **state) { (void)state; run_path(LB_ISA_AVX512VNNI); }
static void test_auto(void **state) { (void)state; run_path(LB_ISA_AUTO); }

/* The dequantize epilogue fused into the tiles (lb_gemm_i8_packed_dequant)
 * equals the reference GEMM followed by lb_gemm_i8_dequant_ref bit for bit,
 * with the products kept or not, with and without bias, on every path at 1
 * and 2 threads; shapes with partial row and column tiles, several column
 * tiles, several K blocks, K = 0 and int4 operands. */
static void test_packed_dequant(void **state)
{
    (void)state;
    static const gemm_case cases[] = {
        {1, 1, 1, 0, 1, VAR_PACKED, DATA_RANDOM, 31},
        {37, 70, 45, 0, 1, VAR_PACKED, DATA_RANDOM, 32},
        {300, 530, 96, 0, 1, VAR_PACKED, DATA_EXTREMES, 33},
        {129, 1100, 2050, 1, 1, VAR_PACKED, DATA_RANDOM, 34},
        {64, 96, 200, 0, 0, VAR_S4_AB, DATA_RANDOM, 35},
        {5, 40, 0, 0, 1, VAR_PACKED, DATA_RANDOM, 36},
    };
    static const lb_isa paths[] = {LB_ISA_SCALAR, LB_ISA_AVX2, LB_ISA_AVX512, LB_ISA_AVX512VNNI};
    lb_ctx *ctx = NULL;
    assert_int_equal(lb_ctx_create(&ctx), LB_OK);
    int failures = 0, ran = 0;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const gemm_case *c = &cases[i];
        const int64_t MN = c->M * c->N;
        gemm_data d;
        data_make(c, &d);
        float *bias = malloc((size_t)c->N * sizeof *bias);
        float *want = malloc((size_t)(MN ? MN : 1) * sizeof *want);
        float *got = malloc((size_t)(MN ? MN : 1) * sizeof *got);
        assert_true(bias && want && got);
        for (int64_t n = 0; n < c->N; n++)
            bias[n] = (float)((int)(lb_rng_u32(c->seed, 9, (uint64_t)n) % 2001) - 1000) * 0.37f;
        const int s4 = c->var == VAR_S4_AB;
        for (int with_bias = 0; with_bias < 2; with_bias++) {
            lb_gemm_i8_dequant ref = {want, 0.0123f, with_bias ? bias : NULL};
            lb_gemm_i8_dequant_ref(&ref, d.want, c->M, c->N);
            for (size_t pi = 0; pi < sizeof paths / sizeof paths[0]; pi++) {
                if (!lb_cpu_isa_available(paths[pi])) continue;
                assert_int_equal(lb_ctx_set_isa(ctx, paths[pi]), LB_OK);
                lb_packed_i8 *pb = NULL;
                assert_int_equal(lb_gemm_i8_pack_b(ctx, s4 ? LB_INT_S4 : LB_INT_S8, c->trans_b, c->K,
                                                   c->N, s4 ? (const void *)d.B4 : d.B, &pb),
                                 LB_OK);
                for (int threads = 1; threads <= 2; threads++) {
                    if (lb_ctx_set_threads(ctx, threads) != LB_OK) continue;
                    for (int keep = 0; keep < 2; keep++) {
                        lb_gemm_i8_dequant dq = {got, ref.scale, ref.bias};
                        memset(got, 0xff, (size_t)(MN ? MN : 1) * sizeof *got);
                        memset(d.got, 0, (size_t)(MN ? MN : 1) * sizeof *d.got);
                        assert_int_equal(lb_gemm_i8_packed_dequant(ctx, s4 ? LB_INT_S4 : LB_INT_S8,
                                                                   c->trans_a, c->M,
                                                                   s4 ? (const void *)d.A4 : d.A, pb,
                                                                   keep ? d.got : NULL, &dq),
                                         LB_OK);
                        ran++;
                        if (memcmp(got, want, (size_t)MN * sizeof *got) != 0 ||
                            (keep && memcmp(d.got, d.want, (size_t)MN * sizeof *d.got) != 0)) {
                            char desc[160];
                            describe(desc, sizeof desc, c);
                            print_message("ERROR dequant %s threads=%d keep=%d bias=%d %s\n",
                                          lb_isa_name(paths[pi]), threads, keep, with_bias, desc);
                            failures++;
                        }
                    }
                }
                lb_packed_i8_free(pb);
            }
        }
        free(bias);
        free(want);
        free(got);
        data_free(&d);
    }
    /* bad arguments: no epilogue, an epilogue without an output */
    {
        gemm_data d;
        const gemm_case c = {4, 8, 12, 0, 1, VAR_PACKED, DATA_RANDOM, 37};
        data_make(&c, &d);
        lb_packed_i8 *pb = NULL;
        assert_int_equal(lb_ctx_set_isa(ctx, LB_ISA_AUTO), LB_OK);
        assert_int_equal(lb_gemm_i8_pack_b(ctx, LB_INT_S8, 1, c.K, c.N, d.B, &pb), LB_OK);
        const lb_gemm_i8_dequant no_out = {NULL, 1.0f, NULL};
        assert_int_equal(lb_gemm_i8_packed_dequant(ctx, LB_INT_S8, 0, c.M, d.A, pb, NULL, NULL),
                         LB_ERR_ARG);
        assert_int_equal(lb_gemm_i8_packed_dequant(ctx, LB_INT_S8, 0, c.M, d.A, pb, d.got, &no_out),
                         LB_ERR_ARG);
        assert_non_null(strstr(lb_ctx_error(ctx), "dequantize"));
        lb_packed_i8_free(pb);
        data_free(&d);
    }
    lb_ctx_free(ctx);
    assert_int_equal(failures, 0);
    assert_true(ran > 0);
}

/* An output large enough to be written with non-temporal stores (one K
 * block, 64-byte aligned rows, >= 8 MiB: the driver's rule) against the
 * reference, with partial column tiles at the end of each row, on every
 * path at 1 and 2 threads; and an unaligned C of the same shape (plain
 * stores) for comparison. */
static void test_streamed_output(void **state)
{
    (void)state;
    const gemm_case c = {2050, 1040, 76, 0, 1, VAR_PLAIN, DATA_RANDOM, 41};
    gemm_data d;
    data_make(&c, &d);
    const size_t bytes = (size_t)(c.M * c.N) * sizeof(int32_t);
    int32_t *aligned = aligned_alloc(64, (bytes + 63) / 64 * 64);
    assert_non_null(aligned);
    static const lb_isa paths[] = {LB_ISA_SCALAR, LB_ISA_AVX2, LB_ISA_AVX512, LB_ISA_AVX512VNNI};
    lb_ctx *ctx = NULL;
    assert_int_equal(lb_ctx_create(&ctx), LB_OK);
    int failures = 0;
    for (size_t pi = 0; pi < sizeof paths / sizeof paths[0]; pi++) {
        if (!lb_cpu_isa_available(paths[pi])) continue;
        assert_int_equal(lb_ctx_set_isa(ctx, paths[pi]), LB_OK);
        for (int threads = 1; threads <= 2; threads++) {
            if (lb_ctx_set_threads(ctx, threads) != LB_OK) continue;
            for (int unaligned = 0; unaligned < 2; unaligned++) {
                int32_t *out = unaligned ? d.got : aligned;
                memset(out, 0x5a, bytes);
                assert_int_equal(lb_gemm_i8(ctx, c.trans_a, c.trans_b, c.M, c.N, c.K, d.A, d.B, out),
                                 LB_OK);
                failures += compare(lb_isa_name(paths[pi]), threads, &c, d.want, out);
            }
        }
    }
    lb_ctx_free(ctx);
    free(aligned);
    data_free(&d);
    assert_int_equal(failures, 0);
}

/* The oneDNN peer: exact on VNNI for all int8; without VNNI only for
 * |B| <= 64, so there the weights are drawn from [-64, 64] and a weight of
 * 127 must be refused (LB_ERR_UNSUPPORTED), never answered wrongly. */
static void test_onednn(void **state)
{
    (void)state;
    if (!lb_onednn_available()) {
        print_message("SKIP: built without oneDNN\n");
        skip();
    }
    const int exact = lb_onednn_int8_exact();
    lb_ctx *ctx = NULL;
    assert_int_equal(lb_ctx_create(&ctx), LB_OK);
    static gemm_case cases[256];
    const size_t ncases = make_cases(cases, sizeof cases / sizeof cases[0]);
    int failures = 0, ran = 0;
    for (size_t i = 0; i < ncases; i++) {
        gemm_case c = cases[i];
        c.var = VAR_PLAIN;
        if (c.K > 65793) continue; /* the peer's documented limit */
        if (c.M * c.N * c.K == 0) continue;
        gemm_data d;
        data_make(&c, &d);
        if (!exact) {
            /* Keep B in [-64, 64] and recompute the reference. */
            for (int64_t j = 0; j < c.K * c.N; j++) d.B[j] = (int8_t)(d.B[j] / 2);
            assert_int_equal(lb_gemm_i8_ref(NULL, c.trans_a, c.trans_b, c.M, c.N, c.K, d.A, d.B,
                                            d.want),
                             LB_OK);
        }
        for (int threads = 1; threads <= 2; threads++) {
            if (lb_ctx_set_threads(ctx, threads) != LB_OK) continue;
            lb_status st = lb_gemm_i8_onednn(ctx, c.trans_a, c.trans_b, c.M, c.N, c.K, d.A, d.B,
                                             d.got);
            if (st != LB_OK) {
                char desc[160];
                describe(desc, sizeof desc, &c);
                print_message("ERROR onednn threads=%d %s: %s: %s\n", threads, desc,
                              lb_status_str(st), lb_ctx_error(ctx));
                failures++;
                continue;
            }
            failures += compare("onednn", threads, &c, d.want, d.got);
            ran++;
        }
        data_free(&d);
        if (failures > 10) break;
    }
    assert_int_equal(failures, 0);
    assert_true(ran > 0);

    /* A created object runs many times with the same bits (weights reordered once). */
    {
        gemm_case c = {65, 33, 129, 0, 1, VAR_PLAIN, DATA_RANDOM, 77};
        gemm_data d;
        data_make(&c, &d);
        if (!exact) {
            for (int64_t j = 0; j < c.K * c.N; j++) d.B[j] = (int8_t)(d.B[j] / 2);
            assert_int_equal(lb_gemm_i8_ref(NULL, 0, 1, c.M, c.N, c.K, d.A, d.B, d.want), LB_OK);
        }
        lb_onednn_gemm_i8 *g = NULL;
        assert_int_equal(lb_onednn_gemm_i8_create(ctx, 0, 1, c.M, c.N, c.K, d.B, &g), LB_OK);
        assert_true(strlen(lb_onednn_gemm_i8_impl(g)) > 0);
        for (int rep = 0; rep < 3; rep++) {
            memset(d.got, 0, (size_t)(c.M * c.N) * sizeof(int32_t));
            assert_int_equal(lb_onednn_gemm_i8_run(ctx, g, d.A, d.got), LB_OK);
            assert_int_equal(compare("onednn-object", 2, &c, d.want, d.got), 0);
        }
        lb_onednn_gemm_i8_free(g);
        /* Without VNNI a full-range weight must be refused. */
        if (!exact) {
            d.B[0] = 127;
            g = NULL;
            assert_int_equal(lb_onednn_gemm_i8_create(ctx, 0, 1, c.M, c.N, c.K, d.B, &g),
                             LB_ERR_UNSUPPORTED);
            assert_null(g);
        }
        data_free(&d);
    }
    lb_onednn_gemm_i8_free(NULL);
    lb_ctx_free(ctx);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_scalar),     cmocka_unit_test(test_avx2),
        cmocka_unit_test(test_avx512),     cmocka_unit_test(test_avx512vnni),
        cmocka_unit_test(test_auto),       cmocka_unit_test(test_onednn),
        cmocka_unit_test(test_packed_dequant),     cmocka_unit_test(test_streamed_output),
    };
    return LB_RUN_TESTS(tests);
}
