/* tests/test_cpu_quant.c — the fused cpu quantizers (lowbit/cpu_quant.h)
 * against their references, bit for bit (memcmp of codes, packed nibbles,
 * scales, quotients, uniforms, norms and scores).
 *
 * Every ISA path (scalar, avx2, avx512, avx512vnni, auto) runs at 1 and 2
 * threads; a path this CPU or build lacks is skipped (cmocka skip), the
 * scalar path always runs. Sizes 1, 2, 3, 7, 8, 15, 16, 17, 31, 33, 63, 64,
 * 65, 127, 129, 255, 1023 (not multiples of the vector widths), a few rows
 * counts, and tensors above the parallel threshold; data: random, zeros
 * (with -0.0), constants, one huge outlier, values exactly at rounding ties,
 * subnormals and wide dynamic ranges; Philox at odd offsets and across the
 * 2^32 block boundary. A failure prints the path, threads, case and the
 * first mismatching index.
 */
#include "config.h"

#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "lowbit/lowbit.h"
#include "lowbit/cpu.h"
#include "lowbit/cpu_quant.h"
#include "lowbit/rng.h"
#include "lowbit/ref/hadamard.h"
#include "lowbit/ref/lsq.h"
#include "lowbit/ref/hadamard_quantizer.h"
#include "lowbit/ref/leverage_sampling.h"
#include "lowbit/ref/range_estimators.h"
#include "test_util.h"

static const int64_t kSizes[] = {1, 2, 3, 7, 8, 15, 16, 17, 31, 33, 63, 64, 65, 127, 129, 255, 1023};
#define NSIZES (sizeof kSizes / sizeof kSizes[0])

enum data_kind { D_RANDOM, D_ZEROS, D_CONST, D_OUTLIER, D_TIES, D_WIDE, D_CANCEL, D_KINDS };
static const char *const data_names[] = {"random", "zeros", "constant", "outlier", "ties", "wide", "cancel"};

/* Deterministic test data of a kind. D_TIES: half-integers and integers in
 * [-9, 9] (exact ties for step 1); D_WIDE: random signs, log-uniform
 * magnitudes over 2^-140 .. 2^20 (subnormals included), some exact zeros;
 * D_CANCEL: ±2^30 mixed with values in [2^-24, 2^-19): the big parts of a
 * butterfly sum often cancel exactly after its double sums have rounded, so
 * the order of the additions shows in the float result. */
static void fill(float *x, int64_t n, enum data_kind kind, uint64_t seed)
{
    const uint64_t st = lb_rng_stream("test.cpu_quant", (uint64_t)kind);
    for (int64_t i = 0; i < n; i++) {
        const uint32_t r = lb_rng_u32(seed, st, (uint64_t)i);
        const float u = lb_rng_uniform_f32(seed, st + 1, (uint64_t)i);
        switch (kind) {
        case D_RANDOM: x[i] = (u - 0.5f) * 6.0f + (float)(int)(r % 3) - 1.0f; break;
        case D_ZEROS: x[i] = (r & 1) ? -0.0f : 0.0f; break;
        case D_CONST: x[i] = 0.3f; break;
        case D_OUTLIER: x[i] = (u - 0.5f) * 0.01f; break;
        case D_TIES: x[i] = (float)((int)(r % 37) - 18) * 0.5f; break;
        case D_WIDE:
            x[i] = (r % 7 == 0) ? 0.0f : ldexpf(1.0f + u, (int)(r % 161) - 140) * ((r & 8) ? -1.0f : 1.0f);
            break;
        case D_CANCEL:
            x[i] = (r & 1) ? ((r & 2) ? -0x1p30f : 0x1p30f) : ldexpf(1.0f + u, -20 - (int)((r >> 2) % 5));
            break;
        default: x[i] = 0.0f; break;
        }
    }
    if (kind == D_OUTLIER && n > 0) x[lb_rng_u32(seed, st, 1u << 30) % (uint64_t)n] = 3.0e7f;
}

/* Index of the first differing element (elem bytes each), or -1. */
static int64_t first_diff(const void *a, const void *b, int64_t n, size_t elem)
{
    const unsigned char *p = a, *q = b;
    for (int64_t i = 0; i < n; i++)
        if (memcmp(p + (size_t)i * elem, q + (size_t)i * elem, elem) != 0) return i;
    return -1;
}

static void pack_s4(const int8_t *x, int64_t n, uint8_t *out)
{
    memset(out, 0, (size_t)lb_s4_bytes(n));
    for (int64_t e = 0; e < n; e++) out[e / 2] |= (uint8_t)(((unsigned)x[e] & 15u) << ((e & 1) ? 4 : 0));
}

typedef struct path_ctx {
    lb_ctx *ctx;
    const char *isa;
    int threads;
    int failures;
    char what[200];
} path_ctx;

/* Records a mismatch (prints once per check). */
static void check_same(path_ctx *p, const char *name, const void *got, const void *want, int64_t n,
                       size_t elem)
{
    const int64_t i = first_diff(got, want, n, elem);
    if (i < 0) return;
    p->failures++;
    if (p->failures > 12) return;
    double g = 0, w = 0;
    if (elem == 1) {
        g = ((const int8_t *)got)[i];
        w = ((const int8_t *)want)[i];
    } else if (elem == 4) {
        g = ((const float *)got)[i];
        w = ((const float *)want)[i];
    } else if (elem == 8) {
        g = ((const double *)got)[i];
        w = ((const double *)want)[i];
    }
    print_message("MISMATCH path=%s threads=%d %s: %s[%lld] got %.9g want %.9g\n", p->isa, p->threads,
                  p->what, name, (long long)i, g, w);
}

static void check_status(path_ctx *p, const char *name, lb_status got, lb_status want)
{
    if (got == want) return;
    p->failures++;
    print_message("STATUS path=%s threads=%d %s: %s returned %s (%s), want %s\n", p->isa, p->threads,
                  p->what, name, lb_status_str(got), lb_ctx_error(p->ctx), lb_status_str(want));
}

/* ------------------------------------------------------------------ Philox */

static void philox_cases(path_ctx *p)
{
    static const uint64_t firsts[] = {0, 1, 2, 3, 5, 61, 63, 64, 65, 1001, (1ull << 34) - 7,
                                      (1ull << 34) - 130};
    static const int64_t ns[] = {1, 2, 3, 7, 17, 63, 64, 65, 129, 1023, 5000, 70001};
    for (size_t a = 0; a < sizeof firsts / sizeof firsts[0]; a++)
        for (size_t b = 0; b < sizeof ns / sizeof ns[0]; b++) {
            const int64_t n = ns[b];
            float *got = malloc((size_t)n * sizeof *got), *want = malloc((size_t)n * sizeof *want);
            const uint64_t seed = 0x1234567890abcdefull + a, stream = lb_rng_stream("x", b);
            lb_rng_fill_uniform_f32(seed, stream, firsts[a], (size_t)n, want);
            snprintf(p->what, sizeof p->what, "philox first=%llu n=%lld", (unsigned long long)firsts[a],
                     (long long)n);
            check_status(p, "fill", lb_rng_fill_uniform_f32_cpu(p->ctx, seed, stream, firsts[a], n, got),
                         LB_OK);
            check_same(p, "u", got, want, n, 4);
            /* and against the element function, at the ends */
            if (lb_rng_uniform_f32(seed, stream, firsts[a] + (uint64_t)n - 1) != got[n - 1]) p->failures++;
            free(got);
            free(want);
        }
}

/* ---------------------------------------------------------------------- HQ */

/* x (rows, D) whose transform t = x·H is exactly y (half-integers and
 * integers) for even log2(block): the rounding ties of RTN land in t. */
static void fill_hq_ties(float *x, int64_t rows, int64_t D, int64_t block, uint64_t seed)
{
    fill(x, rows * D, D_TIES, seed);
    if (lb_hadamard_log2(block) % 2 == 0) lb_hadamard_ref(NULL, rows, D, block, x, x);
}

static void hq_case(path_ctx *p, int64_t rows, int64_t D, int64_t block, enum data_kind kind, uint64_t seed)
{
    const int64_t n = rows * D;
    float *x = malloc((size_t)n * sizeof *x);
    if (kind == D_TIES)
        fill_hq_ties(x, rows, D, block, seed);
    else
        fill(x, n, kind, seed);
    int8_t *want = malloc((size_t)n), *got = malloc((size_t)n);
    float *wq = malloc((size_t)n * 4), *gq = malloc((size_t)n * 4);
    float *wt = malloc((size_t)n * 4), *gt = malloc((size_t)n * 4);
    uint8_t *w4 = malloc((size_t)lb_s4_bytes(n)), *g4 = malloc((size_t)lb_s4_bytes(n));
    int64_t *wsq = malloc((size_t)rows * 8), *gsq = malloc((size_t)rows * 8);
    for (int mode = 0; mode < 4; mode++) {
        const lb_lsq_range range = (mode & 1) ? LB_LSQ_RANGE_CODE : LB_LSQ_RANGE_PAPER;
        const lb_rounding rounding = (mode & 2) ? LB_ROUND_HALF_AWAY : LB_ROUND_HALF_EVEN;
        float step = kind == D_TIES ? 1.0f : (kind == D_OUTLIER ? 0.003f : 0.37f);
        if (kind == D_WIDE) step = 1e-30f;
        snprintf(p->what, sizeof p->what, "hq rows=%lld D=%lld block=%lld data=%s range=%d rounding=%d",
                 (long long)rows, (long long)D, (long long)block, data_names[kind], (int)range,
                 (int)rounding);
        assert_int_equal(lb_hq_quantize_ref(NULL, range, rounding, rows, D, block, x, step, want, wq, wt),
                         LB_OK);
        for (int64_t r = 0; r < rows; r++) {
            wsq[r] = 0;
            for (int64_t d = 0; d < D; d++) wsq[r] += (int64_t)want[r * D + d] * want[r * D + d];
        }
        check_status(p, "hq", lb_hq_quantize_cpu(p->ctx, range, rounding, rows, D, block, x, step, LB_INT_S8,
                                                 got, gq, gt, gsq),
                     LB_OK);
        check_same(p, "codes", got, want, n, 1);
        check_same(p, "quotient", gq, wq, n, 4);
        check_same(p, "transformed", gt, wt, n, 4);
        check_same(p, "row_sq", gsq, wsq, rows, 8);
        if (mode == 0 && kind != D_WIDE) { /* the transform alone, out of place and in place */
            assert_int_equal(lb_hadamard_ref(NULL, rows, D, block, x, wt), LB_OK);
            check_status(p, "hadamard", lb_hadamard_cpu(p->ctx, rows, D, block, x, gt), LB_OK);
            check_same(p, "hadamard", gt, wt, n, 4);
            memcpy(gt, x, (size_t)n * sizeof *gt);
            check_status(p, "hadamard in place", lb_hadamard_cpu(p->ctx, rows, D, block, gt, gt), LB_OK);
            check_same(p, "hadamard in place", gt, wt, n, 4);
        }
        /* packed int4, codes only */
        pack_s4(want, n, w4);
        memset(g4, 0xa5, (size_t)lb_s4_bytes(n));
        check_status(p, "hq s4", lb_hq_quantize_cpu(p->ctx, range, rounding, rows, D, block, x, step,
                                                    LB_INT_S4, g4, NULL, NULL, NULL),
                     LB_OK);
        check_same(p, "codes_s4", g4, w4, lb_s4_bytes(n), 1);
    }
    free(x); free(want); free(got); free(wq); free(gq); free(wt); free(gt); free(w4); free(g4);
    free(wsq); free(gsq);
}

static void hq_cases(path_ctx *p)
{
    static const int64_t rowss[] = {1, 3, 2};
    for (size_t s = 0; s < NSIZES; s++) {
        const int64_t D = kSizes[s];
        for (int64_t block = 1; block <= D && block <= 1024; block *= 2) {
            if (D % block) continue;
            for (enum data_kind k = 0; k < D_KINDS; k++)
                hq_case(p, rowss[(s + (size_t)k) % 3], D, block, k, 7 + s);
        }
    }
    /* powers of two with every block, and rows not a multiple of anything */
    static const int64_t Ds[] = {128, 256, 1024, 2048};
    for (size_t s = 0; s < sizeof Ds / sizeof Ds[0]; s++)
        for (int64_t block = 1; block <= 1024 && block <= Ds[s]; block *= 2) {
            hq_case(p, 5, Ds[s], block, D_RANDOM, 100 + (uint64_t)block);
            hq_case(p, 3, Ds[s], block, D_TIES, 200 + (uint64_t)block);
        }
    /* above the parallel threshold (2 threads split the rows) */
    hq_case(p, 67, 1024, 256, D_RANDOM, 300);
    hq_case(p, 67, 1024, 1024, D_TIES, 301);
    hq_case(p, 4097, 17, 1, D_RANDOM, 302); /* odd D: int4 rows split in pairs */
    hq_case(p, 2049, 32, 8, D_OUTLIER, 303);
    /* blocks above the scratch chunk (LBQ_CHUNK = 1024) */
    hq_case(p, 2, 4096, 4096, D_RANDOM, 304);
    hq_case(p, 3, 4096, 2048, D_CANCEL, 305);

    /* init step */
    for (size_t s = 0; s < 4; s++) {
        const int64_t rows = 3, D = 64 << s, block = 16 << s;
        float *x = malloc((size_t)(rows * D) * 4);
        fill(x, rows * D, D_RANDOM, s);
        float a = 0, b = 0;
        assert_int_equal(lb_hq_init_step_ref(NULL, rows, D, block, x, &a), LB_OK);
        snprintf(p->what, sizeof p->what, "hq init step D=%lld block=%lld", (long long)D, (long long)block);
        check_status(p, "init", lb_hq_init_step_cpu(p->ctx, rows, D, block, x, &b), LB_OK);
        check_same(p, "step", &b, &a, 1, 4);
        free(x);
    }
}

/* --------------------------------------------------------- bit split + LSS */

static void bs_case(path_ctx *p, int64_t N, int64_t C, enum data_kind kind, int given_uniforms, uint64_t seed)
{
    const int64_t n = N * C;
    float *g = malloc((size_t)(n ? n : 1) * 4), *u = malloc((size_t)(n ? n : 1) * 4);
    fill(g, n, kind, seed);
    if (kind == D_TIES && n > 0) {
        /* max|g| = 98 and integer g: v = g exactly, so v = 14k + 7 are ties of hi */
        for (int64_t i = 0; i < n; i++) g[i] = (float)(14 * ((int)(g[i] * 2.0f) % 7) + 7);
        g[n / 2] = -98.0f;
    }
    lb_rng_fill_uniform_f32(seed, 99, 0, (size_t)n, u);
    for (int64_t i = 0; i < n; i += 5) u[i] = i % 2 ? 0.0f : 0x1.fffffep-1f; /* extremes of [0, 1) */
    int8_t *wh = malloc((size_t)(n ? n : 1)), *wl = malloc((size_t)(n ? n : 1));
    int8_t *gh = malloc((size_t)(n ? n : 1)), *gl = malloc((size_t)(n ? n : 1));
    uint8_t *w4 = malloc((size_t)lb_s4_bytes(n) + 1), *g4h = malloc((size_t)lb_s4_bytes(n) + 1);
    uint8_t *g4l = malloc((size_t)lb_s4_bytes(n) + 1), *w4l = malloc((size_t)lb_s4_bytes(n) + 1);
    int64_t *hsq = malloc((size_t)(N ? N : 1) * 8), *lsq = malloc((size_t)(N ? N : 1) * 8);
    double *ws = malloc((size_t)(2 * N + 1) * 8), *gs = malloc((size_t)(2 * N + 1) * 8);
    for (int mode = 0; mode < 4; mode++) {
        const lb_bs_mode bm = (mode & 1) ? LB_BS_CODE : LB_BS_CLEAN;
        const lb_rounding rounding = (mode & 2) ? LB_ROUND_HALF_AWAY : LB_ROUND_HALF_EVEN;
        const float *uu = given_uniforms ? u : NULL;
        const uint64_t stream = lb_rng_stream("xi.bs", (uint64_t)mode << 32 | 5);
        snprintf(p->what, sizeof p->what, "bit split N=%lld C=%lld data=%s mode=%d rounding=%d uniforms=%d",
                 (long long)N, (long long)C, data_names[kind], (int)bm, (int)rounding, given_uniforms);
        float wf = -1, gf = -2;
        assert_int_equal(lb_bit_split_ref(NULL, bm, rounding, n, g, uu, seed, stream, wh, wl, &wf), LB_OK);
        check_status(p, "bs", lb_bit_split_cpu(p->ctx, bm, rounding, N, C, g, uu, seed, stream, LB_INT_S8,
                                               gh, gl, &gf, hsq, lsq),
                     LB_OK);
        check_same(p, "hi", gh, wh, n, 1);
        check_same(p, "lo", gl, wl, n, 1);
        check_same(p, "fine_scale", &gf, &wf, 1, 4);
        /* LSS scores from the fused norms vs the reference from codes (∇X
         * form, and ∇W form with the ∇Y codes standing in for X̂). */
        assert_int_equal(lb_lss_bs_scores_ref(NULL, N, C, wh, wl, 0, NULL, ws), LB_OK);
        check_status(p, "scores", lb_lss_bs_scores_cpu(p->ctx, N, hsq, lsq, NULL, gs), LB_OK);
        check_same(p, "scores_dx", gs, ws, 2 * N, 8);
        assert_int_equal(lb_lss_bs_scores_ref(NULL, N, C, wh, wl, C, wl, ws), LB_OK);
        check_status(p, "scores", lb_lss_bs_scores_cpu(p->ctx, N, hsq, lsq, lsq, gs), LB_OK);
        check_same(p, "scores_dw", gs, ws, 2 * N, 8);
        /* packed */
        pack_s4(wh, n, w4);
        pack_s4(wl, n, w4l);
        memset(g4h, 0x5a, (size_t)lb_s4_bytes(n));
        memset(g4l, 0x5a, (size_t)lb_s4_bytes(n));
        check_status(p, "bs s4", lb_bit_split_cpu(p->ctx, bm, rounding, N, C, g, uu, seed, stream, LB_INT_S4,
                                                  g4h, g4l, &gf, NULL, NULL),
                     LB_OK);
        check_same(p, "hi_s4", g4h, w4, lb_s4_bytes(n), 1);
        check_same(p, "lo_s4", g4l, w4l, lb_s4_bytes(n), 1);
    }
    free(g); free(u); free(wh); free(wl); free(gh); free(gl); free(w4); free(g4h); free(g4l); free(w4l);
    free(hsq); free(lsq); free(ws); free(gs);
}

static void bs_cases(path_ctx *p)
{
    static const int64_t Ns[] = {1, 2, 3, 7};
    for (size_t s = 0; s < NSIZES; s++)
        for (enum data_kind k = 0; k < D_KINDS; k++)
            bs_case(p, Ns[(s + (size_t)k) % 4], kSizes[s], k, (int)((s + (size_t)k) & 1), 11 + s);
    bs_case(p, 0, 5, D_RANDOM, 0, 1);
    bs_case(p, 3, 0, D_RANDOM, 0, 1);
    bs_case(p, 65, 1023, D_RANDOM, 0, 2);  /* parallel, odd C (int4 rows in pairs) */
    bs_case(p, 129, 257, D_OUTLIER, 1, 3);
    bs_case(p, 33, 2048, D_WIDE, 0, 4);
}

/* --------------------------------------------------------------------- LUQ */

static void luq_case(path_ctx *p, int64_t n, enum data_kind kind, const lb_luq_params *lp)
{
    float *x = malloc((size_t)(n ? n : 1) * 4);
    fill(x, n, kind, lp->seed + (uint64_t)n);
    if (kind == D_TIES && n > 0) {
        /* exact powers of two and 1.5·2^k of the max: f = 0 and f = 1/2 */
        for (int64_t i = 0; i < n; i++) x[i] = ldexpf((i & 1) ? 1.5f : 1.0f, -(int)(i % 12)) * ((i & 2) ? -1.f : 1.f);
        x[0] = 4.0f;
    }
    int8_t *wc = malloc((size_t)(n ? n : 1)), *gc = malloc((size_t)(n ? n : 1));
    float *wv = malloc((size_t)(n ? n : 1) * 4), *gv = malloc((size_t)(n ? n : 1) * 4);
    float wa = -1, ga = -2;
    snprintf(p->what, sizeof p->what, "luq n=%lld data=%s levels=%d underflow=%d rounding=%d sample=%llu",
             (long long)n, data_names[kind], lp->levels, (int)lp->underflow, (int)lp->rounding,
             (unsigned long long)lp->sample);
    assert_int_equal(lb_luq_quantize_ref(NULL, lp, x, (size_t)n, wc, wv, &wa), LB_OK);
    check_status(p, "luq", lb_luq_quantize_cpu(p->ctx, lp, x, (size_t)n, gc, gv, &ga), LB_OK);
    check_same(p, "codes", gc, wc, n, 1);
    check_same(p, "values", gv, wv, n, 4);
    check_same(p, "alpha", &ga, &wa, 1, 4);
    free(x); free(wc); free(gc); free(wv); free(gv);
}

static void luq_cases(path_ctx *p)
{
    static const int levels[] = {8, 1, 5, 7, 16};
    int c = 0;
    for (size_t s = 0; s < NSIZES; s++)
        for (enum data_kind k = 0; k < D_KINDS; k++, c++) {
            lb_luq_params lp = lb_luq_default_params();
            lp.levels = levels[c % 5];
            lp.underflow = (lb_luq_underflow)(c % 3);
            lp.rounding = (lb_luq_rounding)((c / 3) % 2);
            lp.seed = 77 + (uint64_t)c;
            lp.sample = (uint64_t)c % 4;
            luq_case(p, kSizes[s], k, &lp);
        }
    lb_luq_params lp = lb_luq_default_params();
    luq_case(p, 0, D_RANDOM, &lp);
    luq_case(p, 100003, D_WIDE, &lp); /* parallel */
    lp.underflow = LB_LUQ_UNDERFLOW_NEAREST;
    lp.rounding = LB_LUQ_ROUND_NEAREST;
    luq_case(p, 70001, D_TIES, &lp);
}

/* -------------------------------------------------------------------- SAWB */

static void sawb_case(path_ctx *p, int64_t n, enum data_kind kind, const lb_sawb_params *sp)
{
    float *x = malloc((size_t)(n ? n : 1) * 4);
    fill(x, n, kind, (uint64_t)n);
    if (kind == D_CONST && n > 1) x[n - 1] = -0.3f; /* ±c: clip <= 0, the fallback */
    snprintf(p->what, sizeof p->what, "sawb n=%lld data=%s q=[%d, %d]", (long long)n, data_names[kind],
             sp->qn, sp->qp);
    double a1, a2, b1, b2;
    float am, bm;
    assert_int_equal(lb_sawb_moments_ref(NULL, x, (size_t)n, &a1, &a2, &am), LB_OK);
    check_status(p, "moments", lb_sawb_moments_cpu(p->ctx, x, (size_t)n, &b1, &b2, &bm), LB_OK);
    check_same(p, "sum_abs", &b1, &a1, 1, 8);
    check_same(p, "sum_sq", &b2, &a2, 1, 8);
    check_same(p, "max_abs", &bm, &am, 1, 4);
    float ws = -1, gs = -2;
    double wclip = 0, gclip = 1;
    int wfb = -1, gfb = -2;
    assert_int_equal(lb_sawb_scale_ref(NULL, sp, x, (size_t)n, &ws, &wclip, &wfb), LB_OK);
    check_status(p, "scale", lb_sawb_scale_cpu(p->ctx, sp, x, (size_t)n, &gs, &gclip, &gfb), LB_OK);
    check_same(p, "scale", &gs, &ws, 1, 4);
    check_same(p, "clip", &gclip, &wclip, 1, 8);
    if (gfb != wfb) p->failures++;
    int8_t *wc = malloc((size_t)(n ? n : 1)), *gc = malloc((size_t)(n ? n : 1));
    float *wd = malloc((size_t)(n ? n : 1) * 4), *gd = malloc((size_t)(n ? n : 1) * 4);
    assert_int_equal(lb_sawb_quantize_ref(NULL, sp, x, (size_t)n, wc, &ws, wd), LB_OK);
    check_status(p, "quantize", lb_sawb_quantize_cpu(p->ctx, sp, x, (size_t)n, gc, &gs, gd), LB_OK);
    check_same(p, "codes", gc, wc, n, 1);
    check_same(p, "dequant", gd, wd, n, 4);
    check_same(p, "scale", &gs, &ws, 1, 4);
    /* frozen scales, including 0 and ties (scale 0.5, half-integer x / 0.5) */
    static const float scales[] = {0.0f, 0.5f, 0.25f, 1e-3f};
    for (size_t i = 0; i < 4; i++) {
        assert_int_equal(lb_sawb_quantize_with_scale_ref(NULL, sp->qn, sp->qp, scales[i], x, (size_t)n, wc, wd),
                         LB_OK);
        check_status(p, "with scale",
                     lb_sawb_quantize_with_scale_cpu(p->ctx, sp->qn, sp->qp, scales[i], x, (size_t)n, gc, gd),
                     LB_OK);
        check_same(p, "codes(scale)", gc, wc, n, 1);
        check_same(p, "dequant(scale)", gd, wd, n, 4);
    }
    free(x); free(wc); free(gc); free(wd); free(gd);
}

static void sawb_cases(path_ctx *p)
{
    lb_sawb_params sp = lb_sawb_default_params();
    for (size_t s = 0; s < NSIZES; s++)
        for (enum data_kind k = 0; k < D_KINDS; k++) {
            sp.qn = (s + (size_t)k) % 3 == 0 ? -8 : ((s + (size_t)k) % 3 == 1 ? -7 : 0);
            sp.qp = sp.qn == -8 ? 8 : (sp.qn == 0 ? 15 : 7);
            sawb_case(p, kSizes[s], k, &sp);
        }
    sp = lb_sawb_default_params();
    sawb_case(p, 0, D_RANDOM, &sp);
    sawb_case(p, 100003, D_RANDOM, &sp);
    sp.qn = -128;
    sp.qp = 127;
    sawb_case(p, 70001, D_TIES, &sp);
}

/* ------------------------------------------------------------ uniform int8 */

static void uniform_case(path_ctx *p, int64_t n, enum data_kind kind, lb_rounding rounding, int bits)
{
    float *x = malloc((size_t)(n ? n : 1) * 4);
    fill(x, n, kind, (uint64_t)n + 5);
    lb_uniform_config cfg = lb_uniform_config_default();
    cfg.rounding = rounding;
    cfg.bits = bits;
    cfg.seed = 1234;
    const lb_qgroups gr = {1, 1, n};
    int32_t *w32 = malloc((size_t)(n ? n : 1) * 4);
    int8_t *want = malloc((size_t)(n ? n : 1)), *got = malloc((size_t)(n ? n : 1));
    snprintf(p->what, sizeof p->what, "uniform s8 n=%lld data=%s rounding=%d bits=%d", (long long)n,
             data_names[kind], (int)rounding, bits);
    /* fixed scales (0.5: the ties of D_TIES are ties of x / scale) */
    static const float scales[] = {0.5f, 0.031f, 1e-30f};
    for (size_t i = 0; i < 3; i++) {
        assert_int_equal(lb_uniform_quantize_ref(NULL, &cfg, &gr, x, &scales[i], NULL, w32), LB_OK);
        for (int64_t j = 0; j < n; j++) want[j] = (int8_t)w32[j];
        check_status(p, "uniform", lb_uniform_quantize_s8_cpu(p->ctx, &cfg, n, x, scales[i], got), LB_OK);
        check_same(p, "codes", got, want, n, 1);
    }
    /* min-max scale + codes */
    float lo, hi, s_ref, s_got = -1, lo2 = 1, hi2 = 1;
    const lb_qgroups gt = {1, 1, n};
    assert_int_equal(lb_range_minmax_ref(NULL, &gt, x, &lo, &hi), LB_OK);
    check_status(p, "minmax", lb_minmax_cpu(p->ctx, n, x, &lo2, &hi2), LB_OK);
    check_same(p, "lo", &lo2, &lo, 1, 4);
    check_same(p, "hi", &hi2, &hi, 1, 4);
    assert_int_equal(lb_uniform_qparams_ref(NULL, &cfg, 1, &lo, &hi, &s_ref, NULL), LB_OK);
    assert_int_equal(lb_uniform_quantize_ref(NULL, &cfg, &gr, x, &s_ref, NULL, w32), LB_OK);
    for (int64_t j = 0; j < n; j++) want[j] = (int8_t)w32[j];
    check_status(p, "minmax quantize", lb_uniform_minmax_quantize_s8_cpu(p->ctx, &cfg, n, x, got, &s_got), LB_OK);
    check_same(p, "scale", &s_got, &s_ref, 1, 4);
    check_same(p, "codes(minmax)", got, want, n, 1);
    free(x); free(w32); free(want); free(got);
}

static void uniform_cases(path_ctx *p)
{
    int c = 0;
    for (size_t s = 0; s < NSIZES; s++)
        for (enum data_kind k = 0; k < D_KINDS; k++, c++)
            uniform_case(p, kSizes[s], k, (lb_rounding)(c % 3), c % 4 == 3 ? 4 : 8);
    uniform_case(p, 100003, D_RANDOM, LB_ROUND_STOCHASTIC, 8);
    uniform_case(p, 70001, D_TIES, LB_ROUND_HALF_EVEN, 8);
    uniform_case(p, 0, D_RANDOM, LB_ROUND_HALF_EVEN, 8);
}

/* ------------------------------------------------------------ NaN and Inf */

static void error_cases(path_ctx *p)
{
    const int64_t n = 100;
    float x[100];
    int8_t c[100], c2[100];
    float f[100], s = 0;
    int64_t sq[100];
    for (int bad = 0; bad < 3; bad++) {
        fill(x, n, D_RANDOM, 3);
        x[37] = bad == 0 ? NAN : (bad == 1 ? INFINITY : -INFINITY);
        snprintf(p->what, sizeof p->what, "non-finite kind %d", bad);
        check_status(p, "hq", lb_hq_quantize_cpu(p->ctx, LB_LSQ_RANGE_PAPER, LB_ROUND_HALF_EVEN, 2, 50, 2, x, 1.0f,
                                                 LB_INT_S8, c, NULL, NULL, NULL),
                     LB_ERR_NUMERIC);
        if (!strstr(lb_ctx_error(p->ctx), "37")) p->failures++;
        check_status(p, "bs", lb_bit_split_cpu(p->ctx, LB_BS_CLEAN, LB_ROUND_HALF_EVEN, 4, 25, x, NULL, 0, 0,
                                               LB_INT_S8, c, c2, &s, sq, NULL),
                     LB_ERR_NUMERIC);
        lb_luq_params lp = lb_luq_default_params();
        check_status(p, "luq", lb_luq_quantize_cpu(p->ctx, &lp, x, (size_t)n, c, f, &s), LB_ERR_NUMERIC);
        lb_sawb_params sp = lb_sawb_default_params();
        check_status(p, "sawb", lb_sawb_quantize_cpu(p->ctx, &sp, x, (size_t)n, c, &s, f), LB_ERR_NUMERIC);
        check_status(p, "sawb0", lb_sawb_quantize_with_scale_cpu(p->ctx, -7, 7, 0.0f, x, (size_t)n, c, f),
                     LB_ERR_NUMERIC);
        lb_uniform_config cfg = lb_uniform_config_default();
        check_status(p, "uniform", lb_uniform_quantize_s8_cpu(p->ctx, &cfg, n, x, 0.1f, c), LB_ERR_NUMERIC);
        check_status(p, "minmax", lb_minmax_cpu(p->ctx, n, x, &s, &s), LB_ERR_NUMERIC);
        check_status(p, "init", lb_hq_init_step_cpu(p->ctx, 2, 50, 2, x, &s), LB_ERR_NUMERIC);
    }
    /* uniforms outside [0, 1) */
    float u[100];
    fill(x, n, D_RANDOM, 4);
    for (int i = 0; i < 100; i++) u[i] = 0.5f;
    u[63] = 1.0f;
    snprintf(p->what, sizeof p->what, "bad uniforms");
    check_status(p, "bs", lb_bit_split_cpu(p->ctx, LB_BS_CLEAN, LB_ROUND_HALF_EVEN, 4, 25, x, u, 0, 0,
                                           LB_INT_S8, c, c2, &s, NULL, NULL),
                 LB_ERR_ARG);
    /* bad arguments */
    snprintf(p->what, sizeof p->what, "bad arguments");
    check_status(p, "fmt", lb_hq_quantize_cpu(p->ctx, LB_LSQ_RANGE_PAPER, LB_ROUND_HALF_EVEN, 2, 50, 2, x, 1.0f,
                                              (lb_int_format)7, c, NULL, NULL, NULL),
                 LB_ERR_ARG);
    check_status(p, "block", lb_hq_quantize_cpu(p->ctx, LB_LSQ_RANGE_PAPER, LB_ROUND_HALF_EVEN, 2, 50, 4, x,
                                                1.0f, LB_INT_S8, c, NULL, NULL, NULL),
                 LB_ERR_ARG);
    check_status(p, "step", lb_hq_quantize_cpu(p->ctx, LB_LSQ_RANGE_PAPER, LB_ROUND_HALF_EVEN, 2, 50, 2, x,
                                               0.0f, LB_INT_S8, c, NULL, NULL, NULL),
                 LB_ERR_ARG);
    check_status(p, "sr", lb_hq_quantize_cpu(p->ctx, LB_LSQ_RANGE_PAPER, LB_ROUND_STOCHASTIC, 2, 50, 2, x,
                                             1.0f, LB_INT_S8, c, NULL, NULL, NULL),
                 LB_ERR_ARG);
    lb_uniform_config cfg = lb_uniform_config_default();
    cfg.symmetric = 0;
    check_status(p, "asym", lb_uniform_quantize_s8_cpu(p->ctx, &cfg, n, x, 0.1f, c), LB_ERR_ARG);
    check_status(p, "rng", lb_rng_fill_uniform_f32_cpu(p->ctx, 0, 0, 0, -1, f), LB_ERR_ARG);
}

/* ------------------------------------------------------------------- paths */

/* LSQ backward: quotients around and beyond the clamp range (exact ties
 * included), gradients of mixed scale; out of place and in place; sizes
 * around the 1024-index sum blocks; a NaN gives the reference's status. */
static void lsq_cases(path_ctx *p)
{
    static const int64_t sizes[] = {1, 7, 8, 9, 1023, 1024, 1025, 3001, 70000};
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
        const int64_t n = sizes[s];
        float *v = malloc((size_t)n * 4), *g = malloc((size_t)n * 4);
        float *wi = malloc((size_t)n * 4), *gi = malloc((size_t)n * 4);
        fill(g, n, s % 3 ? D_CANCEL : D_WIDE, 50 + s); /* cancellation: the sum order shows */
        fill(v, n, s % 2 ? D_TIES : D_RANDOM, 60 + s);
        for (int64_t i = 0; i < n; i += 5) v[i] *= 3.0f; /* beyond the range */
        for (int mode = 0; mode < 4; mode++) {
            const lb_lsq_range range = (mode & 1) ? LB_LSQ_RANGE_CODE : LB_LSQ_RANGE_PAPER;
            const lb_rounding rounding = (mode & 2) ? LB_ROUND_HALF_AWAY : LB_ROUND_HALF_EVEN;
            snprintf(p->what, sizeof p->what, "lsq backward n=%lld range=%d rounding=%d",
                     (long long)n, (int)range, (int)rounding);
            float ws, gs;
            assert_int_equal(lb_lsq_backward_ref(NULL, range, rounding, n, v, g, wi, &ws), LB_OK);
            check_status(p, "lsq", lb_lsq_backward_cpu(p->ctx, range, rounding, n, v, g, gi, &gs),
                         LB_OK);
            check_same(p, "grad_in", gi, wi, n, 4);
            check_same(p, "grad_step", &gs, &ws, 1, 4);
            memcpy(gi, g, (size_t)n * 4);
            check_status(p, "lsq in place",
                         lb_lsq_backward_cpu(p->ctx, range, rounding, n, v, gi, gi, &gs), LB_OK);
            check_same(p, "grad_in in place", gi, wi, n, 4);
            check_same(p, "grad_step in place", &gs, &ws, 1, 4);
        }
        v[n / 2] = NAN;
        float ws = 0, gs = 0;
        snprintf(p->what, sizeof p->what, "lsq backward NaN n=%lld", (long long)n);
        check_status(p, "lsq nan",
                     lb_lsq_backward_cpu(p->ctx, LB_LSQ_RANGE_PAPER, LB_ROUND_HALF_EVEN, n, v, g,
                                         gi, &gs),
                     lb_lsq_backward_ref(NULL, LB_LSQ_RANGE_PAPER, LB_ROUND_HALF_EVEN, n, v, g, wi,
                                         &ws));
        free(v), free(g), free(wi), free(gi);
    }
    /* Terms that cancel: only the documented order gives the reference's
     * sum. v = 100 (above the range) makes every δ = 7, so term_i = 7 g_i.
     * n = 8: lanes 0 and 1 cancel inside the block's tree, lane 2 survives:
     * Σ = 7. n = 3072: blocks 0, 1, 2 hold +7·2^100, −7·2^100, +7; only in
     * increasing block order does the 7 survive (reversed or grouped
     * otherwise, it is absorbed by a 7·2^100 and the result is 0). */
    enum { NB = 3 * 1024 };
    static float v[NB], g[NB], wi[NB], gi[NB];
    for (int c = 0; c < 2; c++) {
        const int64_t n = c == 0 ? 8 : NB;
        for (int64_t i = 0; i < NB; i++) v[i] = 100.0f, g[i] = 0.0f;
        if (c == 0) {
            g[0] = 0x1p100f, g[1] = -0x1p100f, g[2] = 1.0f;
        } else {
            g[8] = 0x1p100f, g[1024 + 16] = -0x1p100f, g[2048 + 1] = 1.0f;
        }
        const float expect = (float)(7.0 / sqrt((double)n * 7.0));
        float ws, gs;
        snprintf(p->what, sizeof p->what, "lsq backward cancelling terms n=%lld", (long long)n);
        assert_int_equal(lb_lsq_backward_ref(NULL, LB_LSQ_RANGE_PAPER, LB_ROUND_HALF_EVEN, n, v, g,
                                             wi, &ws),
                         LB_OK);
        assert_true(ws == expect);
        check_status(p, "lsq", lb_lsq_backward_cpu(p->ctx, LB_LSQ_RANGE_PAPER, LB_ROUND_HALF_EVEN,
                                                   n, v, g, gi, &gs),
                     LB_OK);
        check_same(p, "grad_step", &gs, &ws, 1, 4);
    }
}

static void run_path(lb_isa isa)
{
    if (!lb_cpu_isa_available(isa)) {
        print_message("SKIP: the %s path is not available on this CPU/build\n", lb_isa_name(isa));
        skip();
    }
    path_ctx p;
    memset(&p, 0, sizeof p);
    assert_int_equal(lb_ctx_create(&p.ctx), LB_OK);
    assert_int_equal(lb_ctx_set_isa(p.ctx, isa), LB_OK);
    p.isa = lb_isa_name(isa);
    /* auto is one of the named paths: run it once, at 2 threads */
    for (int threads = isa == LB_ISA_AUTO ? 2 : 1; threads <= 2; threads++) {
        if (lb_ctx_set_threads(p.ctx, threads) != LB_OK) continue; /* no OpenMP: 1 only */
        p.threads = threads;
        philox_cases(&p);
        hq_cases(&p);
        bs_cases(&p);
        luq_cases(&p);
        sawb_cases(&p);
        uniform_cases(&p);
        lsq_cases(&p);
        error_cases(&p);
    }
    lb_ctx_free(p.ctx);
    assert_int_equal(p.failures, 0);
}

static void test_scalar(void **state) { (void)state; run_path(LB_ISA_SCALAR); }
static void test_avx2(void **state) { (void)state; run_path(LB_ISA_AVX2); }
static void test_avx512(void **state) { (void)state; run_path(LB_ISA_AVX512); }
static void test_avx512vnni(void **state) { (void)state; run_path(LB_ISA_AVX512VNNI); }
static void test_auto(void **state) { (void)state; run_path(LB_ISA_AUTO); }

/* A forced path this CPU or build lacks is LB_ERR_UNSUPPORTED, never a
 * silent fallback. */
static void test_unavailable(void **state)
{
    (void)state;
    static const lb_isa all[] = {LB_ISA_AVX2, LB_ISA_AVX512, LB_ISA_AVX512VNNI};
    int tested = 0;
    for (size_t i = 0; i < 3; i++) {
        if (lb_cpu_isa_available(all[i])) continue;
        lb_ctx *ctx = NULL;
        assert_int_equal(lb_ctx_create(&ctx), LB_OK);
        assert_int_equal(lb_ctx_set_isa(ctx, all[i]), LB_OK);
        float x[4] = {1, 2, 3, 4}, u[4];
        int8_t c[4];
        assert_int_equal(lb_hq_quantize_cpu(ctx, LB_LSQ_RANGE_PAPER, LB_ROUND_HALF_EVEN, 1, 4, 4, x, 1.0f,
                                            LB_INT_S8, c, NULL, NULL, NULL),
                         LB_ERR_UNSUPPORTED);
        assert_int_equal(lb_rng_fill_uniform_f32_cpu(ctx, 0, 0, 0, 4, u), LB_ERR_UNSUPPORTED);
        assert_true(strstr(lb_ctx_error(ctx), lb_isa_name(all[i])) != NULL);
        lb_ctx_free(ctx);
        tested++;
    }
    if (!tested) {
        print_message("SKIP: every path is available here\n");
        skip();
    }
}

static void test_kernel_names(void **state)
{
    (void)state;
    assert_string_equal(lb_quant_cpu_kernel_name(LB_ISA_SCALAR), "generic");
    assert_true(strlen(lb_quant_cpu_kernel_name(LB_ISA_AUTO)) > 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_kernel_names), cmocka_unit_test(test_scalar), cmocka_unit_test(test_avx2),
        cmocka_unit_test(test_avx512),       cmocka_unit_test(test_avx512vnni), cmocka_unit_test(test_auto),
        cmocka_unit_test(test_unavailable),
    };
    return LB_RUN_TESTS(tests);
}
