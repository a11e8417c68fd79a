/* cli/cmd_check.c — `lowbit check --backend cpu`: one table of (op, shape,
 * params) cases, each run on every ISA path this machine has (and on the
 * peers, where an op has one) at 1 and N threads, against ref/.
 *
 * Integer outputs must match the reference bit for bit; float outputs (ops
 * added later) use |got - want| <= atol + rtol·|want| with the tolerance and
 * its reason in the case. Prints one line per (case, path, threads) and a
 * summary; exits 1 on any mismatch or error.
 *
 * Adding an op: write `static int run_<op>(lb_ctx *, const check_case *,
 * check_result *)` here or in check_layers.c (inputs from check_fill_s8 etc.
 * so they are reproducible), add it to check_ops[] and its shapes/params to
 * check_cases[]. An op whose
 * cpu code is ISA-dispatched has per_isa = 1 and runs once per available
 * path (the context's ISA is forced); a peer (oneDNN, OpenBLAS) has
 * per_isa = 0 and runs once per thread count.
 */
#include "config.h"
#include "cli.h"
#include "check.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "lowbit/lowbit.h"
#include "lowbit/cpu.h"
#include "lowbit/ref/int_gemm.h"
#include "lowbit/cpu_quant.h"
#include "lowbit/ref/hadamard_quantizer.h"
#include "lowbit/ref/bit_split.h"
#include "lowbit/ref/luq.h"
#ifdef _OPENMP
#include <omp.h>
#endif

int cmd_check(int argc, char **argv);

/* ------------------------------------------------------------ the table */

const char *const check_data_names[] = {"random", "extremes", "zeros", "outlier"};
#define data_names check_data_names

/* ------------------------------------------------------------ helpers */

/* x (n) of the data kind in [lo, hi], from the counter RNG at (seed, stream). */
static void check_fill_s8(int8_t *x, int64_t n, enum check_data kind, int lo, int hi,
                          uint64_t seed, uint64_t stream)
{
    const uint32_t span = (uint32_t)(hi - lo + 1);
    for (int64_t i = 0; i < n; i++) {
        const uint32_t r = lb_rng_u32(seed, stream, (uint64_t)i);
        switch (kind) {
        case DATA_RANDOM: x[i] = (int8_t)(lo + (int)(r % span)); break;
        case DATA_EXTREMES: x[i] = (int8_t)((r & 1) ? hi : lo); break;
        default: x[i] = 0; break;
        }
    }
    if (kind == DATA_OUTLIER && n > 0)
        x[lb_rng_u32(seed, stream, (uint64_t)n) % (uint64_t)n] = (int8_t)lo;
}

/* Two int4 per byte, low nibble first (lowbit/cpu.h). */
static void check_pack_s4(const int8_t *x, int64_t n, uint8_t *out)
{
    memset(out, 0, (size_t)lb_s4_bytes(n));
    for (int64_t e = 0; e < n; e++)
        out[e / 2] |= (uint8_t)(((unsigned)x[e] & 15u) << ((e & 1) ? 4 : 0));
}

/* Bit-exact comparison of int32 outputs viewed as (rows, cols). */
static void check_compare_i32(const int32_t *got, const int32_t *want, int64_t rows, int64_t cols,
                              check_result *r)
{
    for (int64_t i = 0; i < rows * cols; i++) {
        if (got[i] != want[i]) {
            r->outcome = CHECK_MISMATCH;
            snprintf(r->detail, sizeof r->detail, "first mismatch at [%" PRId64 "][%" PRId64
                     "]: got %d, want %d", i / cols, i % cols, got[i], want[i]);
            return;
        }
    }
    r->outcome = CHECK_OK;
}

void check_set_error(check_result *r, lb_ctx *ctx, lb_status st)
{
    r->outcome = st == LB_ERR_UNSUPPORTED ? CHECK_SKIP : CHECK_ERROR;
    snprintf(r->detail, sizeof r->detail, "%s: %s", lb_status_str(st), lb_ctx_error(ctx));
}

/* ------------------------------------------------------------ gemm ops */

/* shape: M, N, K; param: trans_a, trans_b, int4 B, int4 A. */
static void describe_gemm(const check_case *c, char *shape, size_t ns, char *params, size_t np)
{
    snprintf(shape, ns, "%" PRId64 "x%" PRId64 "x%" PRId64, c->shape[0], c->shape[1], c->shape[2]);
    snprintf(params, np, "%c%c A=%s B=%s %s", c->param[0] ? 'T' : 'N', c->param[1] ? 'T' : 'N',
             c->param[3] ? "s4" : "s8", c->param[2] ? "s4" : "s8", data_names[c->data]);
}

typedef struct gemm_inputs {
    int8_t *A, *B;
    uint8_t *A4, *B4;
    int32_t *want, *got;
} gemm_inputs;

static void gemm_inputs_free(gemm_inputs *g)
{
    lb_free(g->A);
    lb_free(g->B);
    lb_free(g->A4);
    lb_free(g->B4);
    lb_free(g->want);
    lb_free(g->got);
}

/* Inputs and the reference result for a gemm case; B limited to [-bmax, bmax]. */
static lb_status gemm_inputs_make(lb_ctx *ctx, const check_case *c, int bmax, gemm_inputs *g)
{
    const int64_t M = c->shape[0], N = c->shape[1], K = c->shape[2];
    const int s4b = c->param[2], s4a = c->param[3];
    memset(g, 0, sizeof *g);
    g->A = lb_alloc((size_t)(M * K));
    g->B = lb_alloc((size_t)(K * N));
    g->A4 = lb_alloc((size_t)lb_s4_bytes(M * K) + 1);
    g->B4 = lb_alloc((size_t)lb_s4_bytes(K * N) + 1);
    g->want = lb_alloc((size_t)(M * N) * sizeof(int32_t));
    g->got = lb_alloc((size_t)(M * N) * sizeof(int32_t));
    if (!g->A || !g->B || !g->A4 || !g->B4 || !g->want || !g->got) {
        gemm_inputs_free(g);
        return lb_error(ctx, LB_ERR_NOMEM, "out of memory for the check inputs");
    }
    const uint64_t seed = 0x6c62636865636bull; /* fixed: checks are reproducible */
    const uint64_t stream = lb_rng_stream("check.gemm", (uint64_t)(M * 1000003 + N * 1009 + K));
    check_fill_s8(g->A, M * K, c->data, s4a ? -8 : -128, s4a ? 7 : 127, seed, stream);
    const int hi = s4b ? 7 : bmax, lo = s4b ? -8 : (bmax == 127 ? -128 : -bmax);
    check_fill_s8(g->B, K * N, c->data, lo, hi, seed, stream + 1);
    check_pack_s4(g->A, M * K, g->A4);
    check_pack_s4(g->B, K * N, g->B4);
    return lb_gemm_i8_ref(ctx, c->param[0], c->param[1], M, N, K, g->A, g->B, g->want);
}

/* lowbit's cpu GEMM on the context's path: plain (int8) or packed (int4 operands). */
static void run_gemm(lb_ctx *ctx, const check_case *c, check_result *r)
{
    const int64_t M = c->shape[0], N = c->shape[1], K = c->shape[2];
    gemm_inputs g;
    lb_status st = gemm_inputs_make(ctx, c, 127, &g);
    if (st != LB_OK) {
        check_set_error(r, ctx, st);
        return;
    }
    if (!c->param[2] && !c->param[3]) {
        st = lb_gemm_i8(ctx, c->param[0], c->param[1], M, N, K, g.A, g.B, g.got);
    } else {
        lb_packed_i8 *pb = NULL;
        st = lb_gemm_i8_pack_b(ctx, c->param[2] ? LB_INT_S4 : LB_INT_S8, c->param[1], K, N,
                               c->param[2] ? (const void *)g.B4 : (const void *)g.B, &pb);
        if (st == LB_OK)
            st = lb_gemm_i8_packed(ctx, c->param[3] ? LB_INT_S4 : LB_INT_S8, c->param[0], M,
                                   c->param[3] ? (const void *)g.A4 : (const void *)g.A, pb, g.got);
        lb_packed_i8_free(pb);
    }
    if (st != LB_OK) check_set_error(r, ctx, st);
    else check_compare_i32(g.got, g.want, M, N, r);
    gemm_inputs_free(&g);
}

/* oneDNN's u8·s8 peer (int8 operands only; |B| <= 64 without VNNI). */
static void run_gemm_onednn(lb_ctx *ctx, const check_case *c, check_result *r)
{
    const int64_t M = c->shape[0], N = c->shape[1], K = c->shape[2];
    if (c->param[2] || c->param[3]) {
        r->outcome = CHECK_SKIP;
        snprintf(r->detail, sizeof r->detail, "int4 operands are not a oneDNN case");
        return;
    }
    gemm_inputs g;
    lb_status st = gemm_inputs_make(ctx, c, lb_onednn_int8_exact() ? 127 : 64, &g);
    if (st == LB_OK)
        st = lb_gemm_i8_onednn(ctx, c->param[0], c->param[1], M, N, K, g.A, g.B, g.got);
    if (st != LB_OK) check_set_error(r, ctx, st);
    else check_compare_i32(g.got, g.want, M, N, r);
    if (st == LB_OK && r->outcome == CHECK_OK && !lb_onednn_int8_exact())
        snprintf(r->detail, sizeof r->detail, "B in [-64, 64] (no VNNI)");
    gemm_inputs_free(&g);
}

/* ------------------------------------------------------ quantizer ops */

/* Float input x (n) of the data kind: uniform in [-1, 1), zeros, values on
 * rounding ties (k/2), or random with one element 1e4 times larger. */
void check_fill_f32(float *x, int64_t n, enum check_data kind, uint64_t stream)
{
    const uint64_t seed = 0x6c62636865636bull;
    for (int64_t i = 0; i < n; i++) {
        const float u = lb_rng_uniform_f32(seed, stream, (uint64_t)i);
        switch (kind) {
        case DATA_ZEROS: x[i] = 0.0f; break;
        case DATA_EXTREMES: x[i] = (float)((int)(u * 16.0f) - 8) * 0.5f; break;
        default: x[i] = 2.0f * u - 1.0f; break;
        }
    }
    if (kind == DATA_OUTLIER && n > 0) x[lb_rng_u32(seed, stream, (uint64_t)n) % (uint64_t)n] = 1e4f;
}

/* shape: rows, D (or N, C), block; param: unused. */
static void describe_quant(const check_case *c, char *shape, size_t ns, char *params, size_t np)
{
    snprintf(shape, ns, "%" PRId64 "x%" PRId64, c->shape[0], c->shape[1]);
    if (!strcmp(c->op, "hq"))
        snprintf(params, np, "block=%" PRId64 " %s", c->shape[2], data_names[c->data]);
    else
        snprintf(params, np, "%s", data_names[c->data]);
}

/* Byte-exact comparison of two buffers of n elements of `size` bytes. */
void check_compare_bytes(const char *what, const void *got, const void *want, int64_t n,
                         size_t size, check_result *r)
{
    const unsigned char *a = got, *b = want;
    for (int64_t i = 0; i < n; i++) {
        if (memcmp(a + (size_t)i * size, b + (size_t)i * size, size) != 0) {
            r->outcome = CHECK_MISMATCH;
            snprintf(r->detail, sizeof r->detail, "%s differ first at element %" PRId64, what, i);
            return;
        }
    }
    r->outcome = CHECK_OK;
}

/* Hadamard quantizer: codes, quotients and transformed values vs lb_hq_quantize_ref. */
static void run_hq(lb_ctx *ctx, const check_case *c, check_result *r)
{
    const int64_t rows = c->shape[0], D = c->shape[1], block = c->shape[2], n = rows * D;
    float *x = lb_alloc((size_t)n * 4), *q1 = lb_alloc((size_t)n * 4), *q2 = lb_alloc((size_t)n * 4);
    float *t1 = lb_alloc((size_t)n * 4), *t2 = lb_alloc((size_t)n * 4);
    int8_t *c1 = lb_alloc((size_t)n), *c2 = lb_alloc((size_t)n);
    lb_status st = (x && q1 && q2 && t1 && t2 && c1 && c2) ? LB_OK : LB_ERR_NOMEM;
    float step = 0.0f;
    if (st == LB_OK) {
        check_fill_f32(x, n, c->data, lb_rng_stream("check.hq", (uint64_t)n));
        st = lb_hq_init_step_ref(ctx, rows, D, block, x, &step);
    }
    if (st == LB_OK && !(step > 0.0f)) step = 1.0f; /* all-zero input */
    if (st == LB_OK)
        st = lb_hq_quantize_ref(ctx, LB_LSQ_RANGE_PAPER, LB_ROUND_HALF_EVEN, rows, D, block, x, step, c1, q1, t1);
    if (st == LB_OK)
        st = lb_hq_quantize_cpu(ctx, LB_LSQ_RANGE_PAPER, LB_ROUND_HALF_EVEN, rows, D, block, x, step,
                                LB_INT_S8, c2, q2, t2, NULL);
    if (st != LB_OK) {
        check_set_error(r, ctx, st);
    } else {
        check_compare_bytes("codes", c2, c1, n, 1, r);
        if (r->outcome == CHECK_OK) check_compare_bytes("quotients", q2, q1, n, 4, r);
        if (r->outcome == CHECK_OK) check_compare_bytes("transformed values", t2, t1, n, 4, r);
    }
    lb_free(x); lb_free(q1); lb_free(q2); lb_free(t1); lb_free(t2); lb_free(c1); lb_free(c2);
}

/* Bit splitting (clean mode: stochastic rounding from the counter RNG; even ties) vs lb_bit_split_ref. */
static void run_bit_split(lb_ctx *ctx, const check_case *c, check_result *r)
{
    const int64_t N = c->shape[0], C = c->shape[1], n = N * C;
    float *g = lb_alloc((size_t)n * 4);
    int8_t *h1 = lb_alloc((size_t)n), *l1 = lb_alloc((size_t)n), *h2 = lb_alloc((size_t)n), *l2 = lb_alloc((size_t)n);
    lb_status st = (g && h1 && l1 && h2 && l2) ? LB_OK : LB_ERR_NOMEM;
    float s1 = 0.0f, s2 = 0.0f;
    const uint64_t seed = 11, stream = lb_rng_stream("xi.bs", 3);
    if (st == LB_OK) {
        check_fill_f32(g, n, c->data, lb_rng_stream("check.bs", (uint64_t)n));
        st = lb_bit_split_ref(ctx, LB_BS_CLEAN, LB_ROUND_HALF_EVEN, n, g, NULL, seed, stream, h1, l1, &s1);
    }
    if (st == LB_OK)
        st = lb_bit_split_cpu(ctx, LB_BS_CLEAN, LB_ROUND_HALF_EVEN, N, C, g, NULL, seed, stream,
                              LB_INT_S8, h2, l2, &s2, NULL, NULL);
    if (st != LB_OK) {
        check_set_error(r, ctx, st);
    } else {
        check_compare_bytes("fine scale", &s2, &s1, 1, 4, r);
        if (r->outcome == CHECK_OK) check_compare_bytes("high nibbles", h2, h1, n, 1, r);
        if (r->outcome == CHECK_OK) check_compare_bytes("low nibbles", l2, l1, n, 1, r);
    }
    lb_free(g); lb_free(h1); lb_free(l1); lb_free(h2); lb_free(l2);
}

/* LUQ (default parameters: 8 levels, stochastic underflow and rounding) vs lb_luq_quantize_ref. */
static void run_luq(lb_ctx *ctx, const check_case *c, check_result *r)
{
    const int64_t n = c->shape[0] * c->shape[1];
    float *x = lb_alloc((size_t)n * 4), *v1 = lb_alloc((size_t)n * 4), *v2 = lb_alloc((size_t)n * 4);
    int8_t *c1 = lb_alloc((size_t)n), *c2 = lb_alloc((size_t)n);
    lb_status st = (x && v1 && v2 && c1 && c2) ? LB_OK : LB_ERR_NOMEM;
    lb_luq_params p = lb_luq_default_params();
    p.seed = 5;
    float a1 = 0.0f, a2 = 0.0f;
    if (st == LB_OK) {
        check_fill_f32(x, n, c->data, lb_rng_stream("check.luq", (uint64_t)n));
        st = lb_luq_quantize_ref(ctx, &p, x, (size_t)n, c1, v1, &a1);
    }
    if (st == LB_OK) st = lb_luq_quantize_cpu(ctx, &p, x, (size_t)n, c2, v2, &a2);
    if (st != LB_OK) {
        check_set_error(r, ctx, st);
    } else {
        check_compare_bytes("alpha", &a2, &a1, 1, 4, r);
        if (r->outcome == CHECK_OK) check_compare_bytes("codes", c2, c1, n, 1, r);
        if (r->outcome == CHECK_OK) check_compare_bytes("values", v2, v1, n, 4, r);
    }
    lb_free(x); lb_free(v1); lb_free(v2); lb_free(c1); lb_free(c2);
}

static const check_op check_ops[] = {
    {"gemm-i8", 1, NULL, describe_gemm, run_gemm},
    {"gemm-i8-onednn", 0, "onednn", describe_gemm, run_gemm_onednn},
    {"hq", 1, NULL, describe_quant, run_hq},
    {"bit-split", 1, NULL, describe_quant, run_bit_split},
    {"luq", 1, NULL, describe_quant, run_luq},
    {"hadamard", 1, NULL, check_describe_rows, check_run_hadamard},
    {"lsq-backward", 1, NULL, check_describe_rows, check_run_lsq_backward},
    {"qlinear-hq", 1, NULL, check_describe_layer, check_run_qlinear_hq},
    {"qlinear-luq", 1, NULL, check_describe_layer, check_run_qlinear_luq},
};

#define GEMM(op, M, N, K, ta, tb, s4b, s4a, data) {op, {M, N, K, 0}, {ta, tb, s4b, s4a}, data}
static const check_case check_cases[] = {
    /* nn.Linear forward (NT), dgrad (NN), wgrad (TN) and TT, int8 */
    GEMM("gemm-i8", 1, 1, 1, 0, 1, 0, 0, DATA_EXTREMES),
    GEMM("gemm-i8", 7, 15, 17, 0, 1, 0, 0, DATA_RANDOM),
    GEMM("gemm-i8", 33, 65, 31, 0, 0, 0, 0, DATA_RANDOM),
    GEMM("gemm-i8", 63, 17, 129, 1, 0, 0, 0, DATA_RANDOM),
    GEMM("gemm-i8", 16, 8, 3, 1, 1, 0, 0, DATA_OUTLIER),
    GEMM("gemm-i8", 127, 129, 255, 0, 1, 0, 0, DATA_EXTREMES),
    GEMM("gemm-i8", 64, 64, 1023, 0, 1, 0, 0, DATA_RANDOM),
    GEMM("gemm-i8", 255, 33, 64, 0, 1, 0, 0, DATA_ZEROS),
    GEMM("gemm-i8", 2, 3, LB_GEMM_I8_MAX_K, 0, 1, 0, 0, DATA_EXTREMES),
    /* int4 weights (and activations), packed two per byte */
    GEMM("gemm-i8", 65, 127, 63, 0, 1, 1, 0, DATA_RANDOM),
    GEMM("gemm-i8", 31, 33, 1023, 1, 0, 1, 1, DATA_EXTREMES),
    GEMM("gemm-i8", 129, 16, 15, 0, 1, 1, 1, DATA_RANDOM),
    /* the oneDNN peer */
    GEMM("gemm-i8-onednn", 7, 15, 17, 0, 1, 0, 0, DATA_RANDOM),
    GEMM("gemm-i8-onednn", 127, 129, 255, 0, 1, 0, 0, DATA_EXTREMES),
    GEMM("gemm-i8-onednn", 63, 17, 129, 1, 0, 0, 0, DATA_RANDOM),
    GEMM("gemm-i8-onednn", 64, 64, 1023, 0, 0, 0, 0, DATA_RANDOM),
#define QUANT(op, rows, cols, block, data) {op, {rows, cols, block, 0}, {0, 0, 0, 0}, data}
    /* fused quantizers (cpu/quant) vs ref: codes, scales and uniforms bit for bit */
    QUANT("hq", 1, 1, 1, DATA_RANDOM),
    QUANT("hq", 17, 64, 32, DATA_RANDOM),
    QUANT("hq", 129, 256, 256, DATA_OUTLIER),
    QUANT("hq", 33, 96, 32, DATA_EXTREMES),
    QUANT("hq", 8, 128, 16, DATA_ZEROS),
    QUANT("bit-split", 1, 7, 0, DATA_RANDOM),
    QUANT("bit-split", 255, 129, 0, DATA_RANDOM),
    QUANT("bit-split", 64, 33, 0, DATA_OUTLIER),
    QUANT("bit-split", 31, 65, 0, DATA_EXTREMES),
    QUANT("luq", 1, 3, 0, DATA_RANDOM),
    QUANT("luq", 127, 129, 0, DATA_RANDOM),
    QUANT("luq", 1023, 17, 0, DATA_OUTLIER),
    QUANT("luq", 15, 63, 0, DATA_EXTREMES),
    /* the transform and the LSQ backward of the layers (check_layers.c) */
    QUANT("hadamard", 3, 96, 32, DATA_RANDOM),
    QUANT("hadamard", 65, 256, 256, DATA_OUTLIER),
    QUANT("lsq-backward", 1, 7, 0, DATA_RANDOM),
    QUANT("lsq-backward", 129, 1025, 0, DATA_EXTREMES),
    QUANT("lsq-backward", 3, 4097, 1, DATA_OUTLIER), /* block: the authors' range and tie rule */
#define LAYER(op, N, D, C, block, mode, data) {op, {N, D, C, block}, {mode, 0, 0, 0}, data}
    /* whole layers, forward + backward (lowbit/cpu_qlinear.h) vs the oracle layers */
    LAYER("qlinear-hq", 33, 16, 17, 8, 0, DATA_RANDOM),      /* paper config, bernoulli LSS */
    LAYER("qlinear-hq", 130, 96, 40, 32, 1, DATA_RANDOM),    /* budget N/3: rows with p < 1 */
    LAYER("qlinear-hq", 64, 64, 64, 16, 2, DATA_OUTLIER),    /* authors' config, nonzero LSS */
    LAYER("qlinear-luq", 33, 17, 65, 0, 0, DATA_RANDOM),     /* L = 8, one sample */
    LAYER("qlinear-luq", 200, 48, 130, 0, 1, DATA_OUTLIER),  /* L = 16, three pieces */
    LAYER("qlinear-luq", 64, 64, 64, 0, 2, DATA_RANDOM),     /* SMP, 3 samples */
};

/* ---------------------------------------------------------------- driver */

static const char check_usage[] =
    "usage: lowbit check --backend cpu [--threads N] [--isa LIST] [--op NAME] [--verbose]\n"
    "  Runs every (op, shape, params) case of the check table on each ISA path this\n"
    "  machine has (and on the peers) at 1 and N threads against the reference;\n"
    "  integer outputs must match bit for bit. Exits 1 on any mismatch.\n"
    "options:\n"
    "  --backend cpu      the backend to check (cpu)\n"
    "  --threads N        the second thread count (default: all OpenMP threads)\n"
    "  --isa LIST         only these paths (comma separated: scalar,avx2,avx512,avx512vnni)\n"
    "  --op NAME          only cases of this op\n"
    "  --verbose          print the detail of passing cases too\n";

static const check_op *find_op(const char *name)
{
    for (size_t i = 0; i < sizeof check_ops / sizeof check_ops[0]; i++)
        if (strcmp(check_ops[i].name, name) == 0) return &check_ops[i];
    return NULL;
}

int cmd_check(int argc, char **argv)
{
    const char *backend = NULL, *only_op = NULL;
    int verbose = 0;
    int64_t threads_n = 1;
#ifdef _OPENMP
    threads_n = omp_get_max_threads();
#endif
    unsigned isa_mask = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (cli_is_help(a)) {
            printf("%s", check_usage);
            return CLI_EXIT_OK;
        }
        if (strcmp(a, "--verbose") == 0) {
            verbose = 1;
            continue;
        }
        if (i + 1 >= argc) {
            fprintf(stderr, "lowbit check: option %s needs a value (or is unknown)\n%s", a,
                    check_usage);
            return CLI_EXIT_USAGE;
        }
        const char *v = argv[++i];
        if (strcmp(a, "--backend") == 0) {
            backend = v;
        } else if (strcmp(a, "--threads") == 0) {
            if (!cli_parse_i64(v, 1, 1024, &threads_n)) {
                fprintf(stderr, "lowbit check: bad --threads '%s'\n", v);
                return CLI_EXIT_USAGE;
            }
        } else if (strcmp(a, "--op") == 0) {
            only_op = v;
            if (!find_op(v)) {
                fprintf(stderr, "lowbit check: unknown op '%s'\n", v);
                return CLI_EXIT_USAGE;
            }
        } else if (strcmp(a, "--isa") == 0) {
            char buf[128];
            snprintf(buf, sizeof buf, "%s", v);
            for (char *save = NULL, *tok = strtok_r(buf, ",", &save); tok;
                 tok = strtok_r(NULL, ",", &save)) {
                lb_isa isa;
                if (lb_isa_from_name(tok, &isa) != LB_OK || isa == LB_ISA_AUTO) {
                    fprintf(stderr, "lowbit check: unknown ISA path '%s'\n", tok);
                    return CLI_EXIT_USAGE;
                }
                isa_mask |= 1u << isa;
            }
        } else {
            fprintf(stderr, "lowbit check: unknown option %s\n%s", a, check_usage);
            return CLI_EXIT_USAGE;
        }
    }
    if (!backend || strcmp(backend, "cpu") != 0) {
        fprintf(stderr, "lowbit check: %s\n%s",
                backend ? "only --backend cpu is checked by this command so far"
                        : "--backend is required",
                check_usage);
        return CLI_EXIT_USAGE;
    }

    lb_ctx *ctx = NULL;
    if (lb_ctx_create(&ctx) != LB_OK) {
        /* LOWBIT_ISA is ignored here: every available path is checked. */
        lb_ctx_clear_error(ctx);
    }
    if (!ctx) {
        fprintf(stderr, "lowbit check: out of memory\n");
        return CLI_EXIT_FAIL;
    }
    const lb_isa paths[] = {LB_ISA_SCALAR, LB_ISA_AVX2, LB_ISA_AVX512, LB_ISA_AVX512VNNI};
    printf("lowbit check --backend cpu: paths");
    for (size_t p = 0; p < sizeof paths / sizeof paths[0]; p++)
        printf(" %s=%s", lb_isa_name(paths[p]),
               lb_cpu_isa_available(paths[p]) ? "yes"
               : lb_gemm_i8_kernel_name(paths[p])[0] ? "no(cpu)" : "no(build)");
    printf(", oneDNN=%s, threads 1 and %" PRId64 "\n",
           !lb_onednn_available()  ? "no"
           : lb_onednn_int8_exact() ? "yes(vnni)"
                                    : "yes(no vnni: B in [-64, 64])",
           threads_n);
    printf("%-16s %-14s %-26s %-11s %7s  %s\n", "op", "shape", "params", "isa", "threads",
           "result");

    int passed = 0, failed = 0, skipped = 0;
    for (size_t ci = 0; ci < sizeof check_cases / sizeof check_cases[0]; ci++) {
        const check_case *c = &check_cases[ci];
        const check_op *op = find_op(c->op);
        if (!op || (only_op && strcmp(only_op, c->op) != 0)) continue;
        char shape[64], params[96];
        op->describe(c, shape, sizeof shape, params, sizeof params);
        for (size_t p = 0; p < (op->per_isa ? sizeof paths / sizeof paths[0] : 1); p++) {
            const lb_isa isa = op->per_isa ? paths[p] : LB_ISA_AUTO;
            if (op->per_isa && (!lb_cpu_isa_available(isa) ||
                                (isa_mask && !((isa_mask >> isa) & 1u))))
                continue;
            lb_ctx_set_isa(ctx, isa);
            for (int ti = 0; ti < (threads_n > 1 ? 2 : 1); ti++) {
                const int threads = ti == 0 ? 1 : (int)threads_n;
                check_result r = {CHECK_OK, ""};
                lb_status st = lb_ctx_set_threads(ctx, threads);
                if (st != LB_OK) check_set_error(&r, ctx, st);
                else op->run(ctx, c, &r);
                lb_ctx_clear_error(ctx);
                static const char *const words[] = {"ok", "MISMATCH", "ERROR", "skip"};
                printf("%-16s %-14s %-26s %-11s %7d  %s", c->op, shape, params,
                       op->per_isa ? lb_isa_name(isa) : op->isa_label, threads,
                       words[r.outcome]);
                if (r.detail[0] && (r.outcome != CHECK_OK || verbose)) printf(" (%s)", r.detail);
                printf("\n");
                passed += r.outcome == CHECK_OK;
                failed += r.outcome == CHECK_MISMATCH || r.outcome == CHECK_ERROR;
                skipped += r.outcome == CHECK_SKIP;
            }
        }
    }
    lb_ctx_free(ctx);
    printf("%d passed, %d failed, %d skipped\n", passed, failed, skipped);
    return failed ? CLI_EXIT_FAIL : CLI_EXIT_OK;
}
