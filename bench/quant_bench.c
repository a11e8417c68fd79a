/* bench/quant_bench.c — micro-benchmark of the fused cpu quantizers
 * (lowbit/cpu_quant.h) against their references (ref/) and against plain
 * separate-pass C versions of the same computation (one loop per step:
 * reduction, uniforms, transform, quantization, norms; portable C, no
 * fusion, no intrinsics).
 *
 *   bench/quant_bench [--size N] [--threads N[,N...]] [--isa LIST]
 *                     [--repeats R] [--min-time S]
 *
 * Every variant is first checked bit for bit against the reference; then
 * each is timed by samples of >= min_time seconds, sampled in interleaved
 * rounds (one sample of every variant per round, so that a change in
 * machine load hits all alike), and the median over `repeats` rounds is
 * printed as M elements/s and GB/s of float input, with the ratios
 * fused/ref and fused/separate. `lowbit bench quant` calls
 * bench_quant_main(); so does the program bench/quant_bench
 * (bench/quant_bench_main.c).
 */
#include "config.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "lowbit/lowbit.h"
#include "lowbit/alloc.h"
#include "lowbit/cpu.h"
#include "lowbit/cpu_quant.h"
#include "lowbit/rng.h"
#include "lowbit/ref/hadamard.h"
#include "lowbit/ref/hadamard_quantizer.h"
#include "lowbit/ref/range_estimators.h"

#define MAX_VARIANTS 3
#define MAX_ROUNDS 64

static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* ------------------------------------------------------------- workloads */

typedef struct bench_data {
    lb_ctx *ctx;
    int64_t n, rows, cols;
    int64_t block;
    float *x, *t, *u1, *u2, *f1;
    int8_t *c1, *c2;
    int64_t *sq1, *sq2;
    float step, scale;
} bench_data;

typedef lb_status (*bench_fn)(bench_data *d);

/* HQ ----------------------------------------------------------------------- */

static lb_status hq_fused(bench_data *d)
{
    return lb_hq_quantize_cpu(d->ctx, LB_LSQ_RANGE_PAPER, LB_ROUND_HALF_EVEN, d->rows, d->cols, d->block, d->x,
                              d->step, LB_INT_S8, d->c1, NULL, NULL, d->sq1);
}

static lb_status hq_ref(bench_data *d)
{
    lb_status st = lb_hq_quantize_ref(NULL, LB_LSQ_RANGE_PAPER, LB_ROUND_HALF_EVEN, d->rows, d->cols, d->block,
                                      d->x, d->step, d->c1, NULL, NULL);
    for (int64_t r = 0; r < d->rows && st == LB_OK; r++) { /* the norms, as the layer computes them */
        int64_t s = 0;
        for (int64_t c = 0; c < d->cols; c++) s += d->c1[r * d->cols + c] * d->c1[r * d->cols + c];
        d->sq1[r] = s;
    }
    return st;
}

/* pass 1: finite check; pass 2: transform to float; pass 3: codes; pass 4: norms */
static lb_status hq_separate(bench_data *d)
{
    const int64_t n = d->n, b = d->block;
    for (int64_t i = 0; i < n; i++)
        if (!isfinite(d->x[i])) return LB_ERR_NUMERIC;
    double buf[1024];
    const int k = lb_hadamard_log2(b);
    const double norm = ldexp((k & 1) ? 0.70710678118654752440 : 1.0, -(k / 2));
    for (int64_t b0 = 0; b0 < n; b0 += b) {
        for (int64_t j = 0; j < b; j++) buf[j] = (double)d->x[b0 + j];
        for (int64_t h = 1; h < b; h *= 2)
            for (int64_t i = 0; i < b; i += 2 * h)
                for (int64_t j = i; j < i + h; j++) {
                    double a = buf[j], c = buf[j + h];
                    buf[j] = a + c;
                    buf[j + h] = a - c;
                }
        for (int64_t j = 0; j < b; j++) d->t[b0 + j] = (float)(buf[j] * norm);
    }
    for (int64_t i = 0; i < n; i++) {
        float q = nearbyintf(d->t[i] / d->step);
        d->c1[i] = (int8_t)(q < -7.0f ? -7.0f : (q > 7.0f ? 7.0f : q));
    }
    for (int64_t r = 0; r < d->rows; r++) {
        int64_t s = 0;
        for (int64_t c = 0; c < d->cols; c++) s += d->c1[r * d->cols + c] * d->c1[r * d->cols + c];
        d->sq1[r] = s;
    }
    return LB_OK;
}

/* Bit split (+ LSS norms) ------------------------------------------------- */

static const uint64_t kBsSeed = 42;

static lb_status bs_fused(bench_data *d)
{
    float fs;
    return lb_bit_split_cpu(d->ctx, LB_BS_CLEAN, LB_ROUND_HALF_EVEN, d->rows, d->cols, d->x, NULL, kBsSeed, 7,
                            LB_INT_S8, d->c1, d->c2, &fs, d->sq1, d->sq2);
}

static void row_norms(const int8_t *c, int64_t rows, int64_t cols, int64_t *sq)
{
    for (int64_t r = 0; r < rows; r++) {
        int64_t s = 0;
        for (int64_t j = 0; j < cols; j++) s += c[r * cols + j] * c[r * cols + j];
        sq[r] = s;
    }
}

static lb_status bs_ref(bench_data *d)
{
    float fs;
    lb_status st = lb_bit_split_ref(NULL, LB_BS_CLEAN, LB_ROUND_HALF_EVEN, d->n, d->x, NULL, kBsSeed, 7, d->c1,
                                    d->c2, &fs);
    row_norms(d->c1, d->rows, d->cols, d->sq1);
    row_norms(d->c2, d->rows, d->cols, d->sq2);
    return st;
}

/* pass 1: max|g|; pass 2: uniforms; pass 3: split; pass 4: norms */
static lb_status bs_separate(bench_data *d)
{
    float amax = 0.0f;
    for (int64_t i = 0; i < d->n; i++) {
        if (!isfinite(d->x[i])) return LB_ERR_NUMERIC;
        float a = fabsf(d->x[i]);
        amax = a > amax ? a : amax;
    }
    lb_rng_fill_uniform_f32(kBsSeed, 7, 0, (size_t)d->n, d->u1);
    const double m = (double)amax;
    for (int64_t i = 0; i < d->n; i++) {
        float v = (float)((double)d->x[i] * 98.0 / m);
        float h = (float)nearbyint((double)v / 14.0);
        float r = v - 14.0f * h;
        float l = floorf(r + d->u1[i]);
        l = l < -7.0f ? -7.0f : (l > 7.0f ? 7.0f : l);
        d->c1[i] = (int8_t)h;
        d->c2[i] = (int8_t)l;
    }
    row_norms(d->c1, d->rows, d->cols, d->sq1);
    row_norms(d->c2, d->rows, d->cols, d->sq2);
    return LB_OK;
}

/* LUQ ---------------------------------------------------------------------- */

static lb_status luq_fused(bench_data *d)
{
    lb_luq_params p = lb_luq_default_params();
    return lb_luq_quantize_cpu(d->ctx, &p, d->x, (size_t)d->n, d->c1, NULL, NULL);
}

static lb_status luq_ref(bench_data *d)
{
    lb_luq_params p = lb_luq_default_params();
    return lb_luq_quantize_ref(NULL, &p, d->x, (size_t)d->n, d->c1, NULL, NULL);
}

/* pass 1: max; passes 2, 3: the two uniform streams; pass 4: codes */
static lb_status luq_separate(bench_data *d)
{
    lb_luq_params p = lb_luq_default_params();
    float m = 0.0f;
    for (int64_t i = 0; i < d->n; i++) {
        if (!isfinite(d->x[i])) return LB_ERR_NUMERIC;
        float a = fabsf(d->x[i]);
        m = a > m ? a : m;
    }
    lb_rng_fill_uniform_f32(p.seed, lb_luq_stream_underflow(p.sample), 0, (size_t)d->n, d->u1);
    lb_rng_fill_uniform_f32(p.seed, lb_luq_stream_round(p.sample), 0, (size_t)d->n, d->u2);
    const float top = ldexpf(1.0f, p.levels - 1);
    for (int64_t i = 0; i < d->n; i++) {
        const float a = fabsf(d->x[i]);
        int mag = 0;
        if (a > 0.0f) {
            const float v = (a / m) * top;
            if (v < 1.0f) {
                mag = v >= 1.0f - d->u1[i];
            } else {
                int e;
                const float f = frexpf(v, &e) * 2.0f - 1.0f;
                mag = e + (f >= 1.0f - d->u2[i]);
            }
        }
        d->c1[i] = (int8_t)(d->x[i] < 0.0f ? -mag : mag);
    }
    return LB_OK;
}

/* SAWB --------------------------------------------------------------------- */

static lb_status sawb_fused(bench_data *d)
{
    lb_sawb_params p = lb_sawb_default_params();
    float s;
    return lb_sawb_quantize_cpu(d->ctx, &p, d->x, (size_t)d->n, d->c1, &s, NULL);
}

static lb_status sawb_ref(bench_data *d)
{
    lb_sawb_params p = lb_sawb_default_params();
    float s;
    return lb_sawb_quantize_ref(NULL, &p, d->x, (size_t)d->n, d->c1, &s, NULL);
}

/* pass 1: moments (the reference's loop); pass 2: codes */
static lb_status sawb_separate(bench_data *d)
{
    lb_sawb_params p = lb_sawb_default_params();
    float s;
    lb_status st = lb_sawb_scale_ref(NULL, &p, d->x, (size_t)d->n, &s, NULL, NULL);
    if (st != LB_OK) return st;
    for (int64_t i = 0; i < d->n; i++) {
        float q = s > 0.0f ? nearbyintf(d->x[i] / s) : 0.0f;
        d->c1[i] = (int8_t)(q < -7.0f ? -7.0f : (q > 7.0f ? 7.0f : q));
    }
    return LB_OK;
}

/* uniform int8, stochastic rounding ---------------------------------------- */

static lb_uniform_config sr_config(void)
{
    lb_uniform_config c = lb_uniform_config_default();
    c.rounding = LB_ROUND_STOCHASTIC;
    return c;
}

static lb_status int8_fused(bench_data *d)
{
    lb_uniform_config c = sr_config();
    float s;
    return lb_uniform_minmax_quantize_s8_cpu(d->ctx, &c, d->n, d->x, d->c1, &s);
}

static lb_status int8_ref(bench_data *d)
{
    lb_uniform_config c = sr_config();
    const lb_qgroups g = {1, 1, d->n};
    float lo, hi, s;
    lb_status st = lb_range_minmax_ref(NULL, &g, d->x, &lo, &hi);
    if (st == LB_OK) st = lb_uniform_qparams_ref(NULL, &c, 1, &lo, &hi, &s, NULL);
    int32_t *q = (int32_t *)(void *)d->t; /* n int32 fit the float buffer */
    if (st == LB_OK) st = lb_uniform_quantize_ref(NULL, &c, &g, d->x, &s, NULL, q);
    for (int64_t i = 0; i < d->n; i++) d->c1[i] = (int8_t)q[i];
    return st;
}

/* pass 1: min/max; pass 2: uniforms; pass 3: codes */
static lb_status int8_separate(bench_data *d)
{
    lb_uniform_config c = sr_config();
    float lo = d->x[0], hi = d->x[0], s;
    for (int64_t i = 0; i < d->n; i++) {
        if (!isfinite(d->x[i])) return LB_ERR_NUMERIC;
        lo = d->x[i] < lo ? d->x[i] : lo;
        hi = d->x[i] > hi ? d->x[i] : hi;
    }
    lb_status st = lb_uniform_qparams_ref(NULL, &c, 1, &lo, &hi, &s, NULL);
    if (st != LB_OK) return st;
    lb_rng_fill_uniform_f32(c.seed, c.stream, 0, (size_t)d->n, d->u1);
    for (int64_t i = 0; i < d->n; i++) {
        float v = d->x[i] / s;
        v = v < -127.0f ? -127.0f : (v > 127.0f ? 127.0f : v);
        float r = floorf(v + d->u1[i]);
        d->c1[i] = (int8_t)(r < -127.0f ? -127.0f : (r > 127.0f ? 127.0f : r));
    }
    return LB_OK;
}

/* Philox uniforms ---------------------------------------------------------- */

static lb_status rng_fused(bench_data *d) { return lb_rng_fill_uniform_f32_cpu(d->ctx, 1, 2, 3, d->n, d->t); }
static lb_status rng_ref(bench_data *d)
{
    lb_rng_fill_uniform_f32(1, 2, 3, (size_t)d->n, d->t);
    return LB_OK;
}

typedef struct bench_case {
    const char *name;
    int64_t block; /* HQ block (0: not HQ) */
    bench_fn fn[MAX_VARIANTS]; /* fused, ref, separate (NULL: none) */
} bench_case;

static const bench_case cases[] = {
    {"hq b=32", 32, {hq_fused, hq_ref, hq_separate}},
    {"hq b=256", 256, {hq_fused, hq_ref, hq_separate}},
    {"bit-split+norms", 0, {bs_fused, bs_ref, bs_separate}},
    {"luq", 0, {luq_fused, luq_ref, luq_separate}},
    {"sawb", 0, {sawb_fused, sawb_ref, sawb_separate}},
    {"int8 sr minmax", 0, {int8_fused, int8_ref, int8_separate}},
    {"philox f32", 0, {rng_fused, rng_ref, NULL}},
};
static const char *const variant_names[] = {"fused", "ref", "separate"};

/* Outputs that every variant writes, for the bit-exact check. */
static void snapshot(const bench_data *d, int8_t *c1, int8_t *c2, int64_t *s1, int64_t *s2, float *t)
{
    memcpy(c1, d->c1, (size_t)d->n);
    memcpy(c2, d->c2, (size_t)d->n);
    memcpy(s1, d->sq1, (size_t)d->rows * sizeof *s1);
    memcpy(s2, d->sq2, (size_t)d->rows * sizeof *s2);
    memcpy(t, d->t, (size_t)d->n * sizeof *t);
}

/* Fills every output with a pattern, so that outputs a variant does not
 * write compare equal and outputs it should write cannot pass by chance. */
static void clear_outputs(bench_data *d)
{
    memset(d->c1, 0x7f, (size_t)d->n);
    memset(d->c2, 0x7f, (size_t)d->n);
    memset(d->sq1, 0x7f, (size_t)d->rows * sizeof *d->sq1);
    memset(d->sq2, 0x7f, (size_t)d->rows * sizeof *d->sq2);
    memset(d->t, 0x7f, (size_t)d->n * sizeof *d->t);
}

/* Runs fn repeatedly for >= min_time seconds; returns seconds per call. */
static double sample(bench_fn fn, bench_data *d, double min_time)
{
    int64_t calls = 0;
    const double t0 = now_seconds();
    double t;
    do {
        fn(d);
        calls++;
        t = now_seconds() - t0;
    } while (t < min_time);
    return t / (double)calls;
}

static int parse_list(const char *s, int *out, int max)
{
    int n = 0;
    while (*s && n < max) {
        char *end;
        long v = strtol(s, &end, 10);
        if (end == s || v < 1) return -1;
        out[n++] = (int)v;
        s = *end == ',' ? end + 1 : end;
        if (*end && *end != ',') return -1;
    }
    return n;
}

int bench_quant_main(int argc, char **argv);

int bench_quant_main(int argc, char **argv)
{
    int64_t size = 1 << 21;
    int threads[8] = {1}, nthreads = 1, repeats = 5;
    double min_time = 0.05;
    const char *isa_list = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--size") && i + 1 < argc) size = atoll(argv[++i]);
        else if (!strcmp(argv[i], "--threads") && i + 1 < argc) nthreads = parse_list(argv[++i], threads, 8);
        else if (!strcmp(argv[i], "--repeats") && i + 1 < argc) repeats = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--min-time") && i + 1 < argc) min_time = atof(argv[++i]);
        else if (!strcmp(argv[i], "--isa") && i + 1 < argc) isa_list = argv[++i];
        else {
            fprintf(stderr, "usage: quant_bench [--size N] [--threads N[,N...]] [--isa LIST] [--repeats R] "
                            "[--min-time S]\n");
            return 2;
        }
    }
    if (nthreads < 1 || repeats < 1 || repeats > MAX_ROUNDS || size < 1024 || size % 1024) {
        fprintf(stderr, "quant_bench: bad option (size a multiple of 1024, repeats 1..%d)\n", MAX_ROUNDS);
        return 2;
    }
    bench_data d;
    memset(&d, 0, sizeof d);
    d.n = size;
    d.cols = 1024;
    d.rows = size / d.cols;
    const size_t n = (size_t)size;
    d.x = lb_alloc(n * 4);
    d.t = lb_alloc(n * 4);
    d.u1 = lb_alloc(n * 4);
    d.u2 = lb_alloc(n * 4);
    d.c1 = lb_alloc(n);
    d.c2 = lb_alloc(n);
    d.sq1 = lb_alloc((size_t)d.rows * 8);
    d.sq2 = lb_alloc((size_t)d.rows * 8);
    int8_t *w1 = lb_alloc(n), *w2 = lb_alloc(n);
    int64_t *ws1 = lb_alloc((size_t)d.rows * 8), *ws2 = lb_alloc((size_t)d.rows * 8);
    float *wt = lb_alloc(n * 4);
    if (!d.x || !d.t || !d.u1 || !d.u2 || !d.c1 || !d.c2 || !d.sq1 || !d.sq2 || !w1 || !w2 || !ws1 || !ws2 || !wt) {
        fprintf(stderr, "quant_bench: out of memory\n");
        return 1;
    }
    lb_rng_fill_uniform_f32(5, 6, 0, n, d.x);
    for (size_t i = 0; i < n; i++) d.x[i] = (d.x[i] - 0.5f) * 4.0f * (i % 97 == 0 ? 8.0f : 1.0f);
    d.step = 0.25f;

    const char *isas[] = {"scalar", "avx2", "avx512", "avx512vnni"};
    int failed = 0;
    printf("fused cpu quantizers: %lld elements (rows of %lld), median of %d interleaved rounds, "
           ">= %.2f s per sample\n",
           (long long)size, (long long)d.cols, repeats, min_time);
    printf("%-16s %-10s %3s %10s %8s %10s %10s %9s %9s\n", "quantizer", "isa", "thr", "fused Me/s", "GB/s",
           "ref Me/s", "sep Me/s", "vs ref", "vs sep");
    for (size_t ii = 0; ii < 4; ii++) {
        lb_isa isa;
        lb_isa_from_name(isas[ii], &isa);
        if (isa_list && !strstr(isa_list, isas[ii])) continue;
        if (!isa_list && isa == LB_ISA_AVX512VNNI) continue; /* same kernels as avx512 */
        if (!lb_cpu_isa_available(isa)) continue;
        for (int ti = 0; ti < nthreads; ti++) {
            if (lb_ctx_create(&d.ctx) != LB_OK || lb_ctx_set_isa(d.ctx, isa) != LB_OK ||
                lb_ctx_set_threads(d.ctx, threads[ti]) != LB_OK) {
                fprintf(stderr, "quant_bench: cannot set up %s with %d threads\n", isas[ii], threads[ti]);
                lb_ctx_free(d.ctx);
                failed = 1;
                continue;
            }
            for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
                const bench_case *bc = &cases[c];
                d.block = bc->block ? bc->block : 1;
                /* check: every variant against the reference, bit for bit */
                clear_outputs(&d);
                if (bc->fn[1](&d) != LB_OK) failed = 1;
                snapshot(&d, w1, w2, ws1, ws2, wt);
                for (int v = 0; v < MAX_VARIANTS; v++) {
                    if (v == 1 || !bc->fn[v]) continue;
                    clear_outputs(&d);
                    lb_status st = bc->fn[v](&d);
                    if (st != LB_OK || memcmp(d.c1, w1, n) || memcmp(d.c2, w2, n) ||
                        memcmp(d.sq1, ws1, (size_t)d.rows * 8) || memcmp(d.sq2, ws2, (size_t)d.rows * 8) ||
                        (bc->fn[0] == rng_fused && memcmp(d.t, wt, n * 4))) {
                        printf("MISMATCH %s %s (%s, %d threads): %s\n", bc->name, variant_names[v], isas[ii],
                               threads[ti], st == LB_OK ? "outputs differ" : lb_ctx_error(d.ctx));
                        failed = 1;
                    }
                }
                /* time: interleaved rounds */
                double secs[MAX_VARIANTS][MAX_ROUNDS];
                for (int v = 0; v < MAX_VARIANTS; v++)
                    if (bc->fn[v]) bc->fn[v](&d); /* warm-up */
                for (int r = 0; r < repeats; r++)
                    for (int v = 0; v < MAX_VARIANTS; v++)
                        secs[v][r] = bc->fn[v] ? sample(bc->fn[v], &d, min_time) : 0.0;
                double med[MAX_VARIANTS];
                for (int v = 0; v < MAX_VARIANTS; v++) {
                    qsort(secs[v], (size_t)repeats, sizeof secs[v][0], cmp_double);
                    med[v] = secs[v][repeats / 2];
                }
                const double me = (double)size / 1e6;
                printf("%-16s %-10s %3d %10.1f %8.2f %10.1f ", bc->name, isas[ii], threads[ti], me / med[0],
                       (double)size * 4.0 / med[0] / 1e9, me / med[1]);
                if (bc->fn[2])
                    printf("%10.1f %8.1fx %8.1fx\n", me / med[2], med[1] / med[0], med[2] / med[0]);
                else
                    printf("%10s %8.1fx %9s\n", "-", med[1] / med[0], "-");
                fflush(stdout);
            }
            lb_ctx_free(d.ctx);
            d.ctx = NULL;
        }
    }
    lb_free(d.x); lb_free(d.t); lb_free(d.u1); lb_free(d.u2); lb_free(d.c1); lb_free(d.c2);
    lb_free(d.sq1); lb_free(d.sq2); lb_free(w1); lb_free(w2); lb_free(ws1); lb_free(ws2); lb_free(wt);
    return failed;
}
