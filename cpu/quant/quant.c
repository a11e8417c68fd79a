/* cpu/quant/quant.c — the fused quantizers of the cpu backend: argument
 * checks, per-tensor scalars, ISA dispatch and the static thread partition
 * (include/lowbit/cpu_quant.h). Compiled without ISA flags; only this file
 * calls the kernels of cpu/quant/<isa>/, after lb_cpu_select_isa and a CPU
 * check of the flags their library was built with.
 *
 * Every function returns the bits of the reference it names: the kernels
 * evaluate the reference's element arithmetic, the per-tensor scalars are
 * computed here with the reference's scalar formulas, and the reductions
 * split over threads are max/min (exact in any order) or integer sums. The
 * partition (rows or LBQ_CHUNK-element chunks, contiguous per thread) thus
 * changes which thread computes an element, never its value.
 */
#include "config.h"
#include "lowbit/cpu_quant.h"
#include "lowbit/alloc.h"
#include "lowbit/ref/hadamard.h"
#include "lowbit/ref/range_estimators.h"
#include "quant_kernels.h"
#include "../loops.h"

#include <float.h>
#include <math.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#if defined(__x86_64__) || defined(__i386__)
#define LBQ_X86 1
#endif

/* Below this many elements a call runs on one thread (a parallel region
 * costs a few microseconds). */
#define LBQ_PARALLEL_MIN 32768

/* ----------------------------------------------------------------- dispatch */

static const lbq_kernels *kernels_for(lb_isa isa)
{
    switch (isa) {
    case LB_ISA_SCALAR: return &lbq_kernels_generic;
#ifdef HAVE_AVX2_BUILD
    case LB_ISA_AVX2: return &lbq_kernels_avx2;
#endif
#ifdef HAVE_AVX512_BUILD
    case LB_ISA_AVX512:
    case LB_ISA_AVX512VNNI: return &lbq_kernels_avx512;
#endif
    default: return NULL;
    }
}

/* The flags the kernel library was compiled with (lb_cpu_select_isa checked
 * the GEMM's set; avx512vnni's set does not include DQ). */
static int cpu_runs(const lbq_kernels *k)
{
#ifdef LBQ_X86
    if (k->isa == LB_ISA_AVX2) return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    if (k->isa == LB_ISA_AVX512)
        return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
               __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq");
#endif
    return k->isa == LB_ISA_SCALAR;
}

const char *lb_quant_cpu_kernel_name(lb_isa isa)
{
    if (isa == LB_ISA_AUTO) isa = lb_cpu_best_isa();
    const lbq_kernels *k = kernels_for(isa);
    return k ? k->name : "";
}

static lb_status select_kernels(lb_ctx *ctx, const lbq_kernels **out)
{
    lb_isa isa;
    lb_status st = lb_cpu_select_isa(ctx, &isa);
    if (st != LB_OK) return st;
    const lbq_kernels *k = kernels_for(isa);
    if (!k)
        return lb_error(ctx, LB_ERR_UNSUPPORTED, "the quantizer kernels of the '%s' path were not compiled",
                        lb_isa_name(isa));
    if (!cpu_runs(k))
        return lb_error(ctx, LB_ERR_UNSUPPORTED,
                        "the '%s' quantizer kernels need instructions this CPU lacks", k->name);
    *out = k;
    return LB_OK;
}

/* ----------------------------------------------------------------- threads */

static int threads_for(lb_ctx *ctx, int64_t work)
{
    return work < LBQ_PARALLEL_MIN ? 1 : lb_cpu_threads(ctx);
}

/* Units [u0, u1) of thread t out of nt for `units` units: contiguous, static. */
static void split(int64_t units, int t, int nt, int64_t *u0, int64_t *u1)
{
    *u0 = units * t / nt;
    *u1 = units * (t + 1) / nt;
}

static int thread_id(void)
{
#ifdef _OPENMP
    return omp_get_thread_num();
#else
    return 0;
#endif
}

static int thread_count(void)
{
#ifdef _OPENMP
    return omp_get_num_threads();
#else
    return 1;
#endif
}

/* Per-thread scratch: one allocation, one 64-byte aligned slice per thread. */
typedef struct scratch_set {
    void *mem;
    size_t stride;
    size_t nd, nt, nc; /* doubles, floats, codes per buffer */
} scratch_set;

static size_t round64(size_t b) { return (b + 63) & ~(size_t)63; }

static lb_status scratch_create(lb_ctx *ctx, int nthreads, int64_t block, scratch_set *s)
{
    const size_t big = (size_t)(block > LBQ_CHUNK ? block : LBQ_CHUNK);
    s->nd = (size_t)(block > 16 ? block : 16);
    s->nt = big;
    s->nc = big;
    s->stride = round64(s->nd * sizeof(double)) + round64(s->nt * sizeof(float)) +
                round64(s->nc) + round64(LBQ_CHUNK) + 2 * round64(LBQ_CHUNK * sizeof(float));
    s->mem = lb_alloc(s->stride * (size_t)nthreads);
    if (!s->mem) return lb_error(ctx, LB_ERR_NOMEM, "cpu quantizer: out of memory for scratch");
    return LB_OK;
}

static lbq_scratch scratch_get(const scratch_set *s, int t)
{
    char *p = (char *)s->mem + s->stride * (size_t)t;
    lbq_scratch r;
    r.blockd = (double *)p;
    p += round64(s->nd * sizeof(double));
    r.t = (float *)p;
    p += round64(s->nt * sizeof(float));
    r.codes = (int8_t *)p;
    p += round64(s->nc);
    r.codes2 = (int8_t *)p;
    p += round64(LBQ_CHUNK);
    r.u1 = (float *)p;
    p += round64(LBQ_CHUNK * sizeof(float));
    r.u2 = (float *)p;
    return r;
}

/* First non-finite index of x (n), or -1. */
static int64_t first_nonfinite(const float *x, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        if (!isfinite(x[i])) return i;
    return -1;
}

static lb_status check_fmt(lb_ctx *ctx, lb_int_format fmt, const char *what)
{
    if (fmt != LB_INT_S8 && fmt != LB_INT_S4)
        return lb_error(ctx, LB_ERR_ARG, "%s: unknown code format %d", what, (int)fmt);
    return LB_OK;
}

/* Zero codes in either format for n elements. */
static void zero_codes(lb_int_format fmt, void *codes, int64_t n)
{
    if (n > 0) memset(codes, 0, (size_t)(fmt == LB_INT_S4 ? lb_s4_bytes(n) : n));
}

/* ---------------------------------------------------------- random numbers */

lb_status lb_rng_fill_uniform_f32_cpu(lb_ctx *ctx, uint64_t seed, uint64_t stream, uint64_t first,
                                      int64_t n, float *out)
{
    if (n < 0 || (n > 0 && !out)) return lb_error(ctx, LB_ERR_ARG, "rng fill: bad arguments");
    const lbq_kernels *k;
    lb_status st = select_kernels(ctx, &k);
    if (st != LB_OK || n == 0) return st;
    const int nt = threads_for(ctx, n);
    const int64_t chunks = (n + LBQ_CHUNK - 1) / LBQ_CHUNK;
#pragma omp parallel num_threads(nt) if (nt > 1)
    {
        int64_t c0, c1;
        split(chunks, thread_id(), thread_count(), &c0, &c1);
        const int64_t i0 = c0 * LBQ_CHUNK, i1 = c1 * LBQ_CHUNK < n ? c1 * LBQ_CHUNK : n;
        if (i1 > i0) k->uniform_f32(seed, stream, first + (uint64_t)i0, i1 - i0, out + i0);
    }
    return LB_OK;
}

/* ---------------------------------------------------------------------- HQ */

/* 2^{-k/2} as ref/hadamard.c computes it. */
static double hadamard_norm(int k) { return ldexp((k & 1) ? 0.70710678118654752440 : 1.0, -(k / 2)); }

static lb_status hq_run(lb_ctx *ctx, const lbq_kernels *k, int64_t rows, lbq_hq_job *job)
{
    const int64_t D = job->D;
    const int64_t unit = (job->codes.fmt == LB_INT_S4 && (D & 1)) ? 2 : 1; /* whole bytes per thread */
    const int64_t units = (rows + unit - 1) / unit;
    const int nt = threads_for(ctx, rows * D);
    scratch_set ss;
    lb_status st = scratch_create(ctx, nt, job->block, &ss);
    if (st != LB_OK) return st;
    int bad = 0;
#pragma omp parallel num_threads(nt) if (nt > 1) reduction(| : bad)
    {
        int64_t u0, u1;
        split(units, thread_id(), thread_count(), &u0, &u1);
        const int64_t r0 = u0 * unit, r1 = u1 * unit < rows ? u1 * unit : rows;
        const lbq_scratch s = scratch_get(&ss, thread_id());
        if (r1 > r0) bad |= k->hq_rows(job, r0, r1, &s);
    }
    lb_free(ss.mem);
    if (bad) {
        const int64_t i = first_nonfinite(job->x, rows * D);
        return lb_error(ctx, LB_ERR_NUMERIC, "hq: x[%lld] = %g is not finite", (long long)i,
                        (double)job->x[i < 0 ? 0 : i]);
    }
    return LB_OK;
}

/* An HQ job over x (rows, D) with the transform's fields set and no output:
 * the caller adds the quantizer's fields or, with codes.base NULL, only
 * `transformed` (the transform alone). */
static void hq_job_transform(lbq_hq_job *job, int64_t D, int64_t block, const float *x)
{
    memset(job, 0, sizeof *job);
    job->D = D;
    job->block = block;
    job->log2_block = lb_hadamard_log2(block);
    job->norm = hadamard_norm(job->log2_block);
    job->x = x;
    job->step = 1.0f;
    job->lo = -7.0f;
    job->hi = 7.0f;
    job->rounding = LB_ROUND_HALF_EVEN;
    job->codes.fmt = LB_INT_S8;
}

static lb_status hq_check(lb_ctx *ctx, int64_t rows, int64_t D, int64_t block, const float *x)
{
    if (rows < 0 || D < 1)
        return lb_error(ctx, LB_ERR_ARG, "hq: bad shape (%lld, %lld)", (long long)rows, (long long)D);
    if (rows > 0 && !x) return lb_error(ctx, LB_ERR_ARG, "hq: NULL input");
    if (!lb_hadamard_block_valid(D, block))
        return lb_error(ctx, LB_ERR_ARG, "hq: block %lld is not a power of two dividing D=%lld",
                        (long long)block, (long long)D);
    return LB_OK;
}

lb_status lb_hq_quantize_cpu(lb_ctx *ctx, lb_lsq_range range, lb_rounding rounding, int64_t rows,
                             int64_t D, int64_t block, const float *x, float step, lb_int_format fmt,
                             void *codes, float *quotient, float *transformed, int64_t *row_sq)
{
    lb_status st = hq_check(ctx, rows, D, block, x);
    if (st != LB_OK) return st;
    if (rows > 0 && !codes) return lb_error(ctx, LB_ERR_ARG, "hq: NULL codes");
    if ((st = check_fmt(ctx, fmt, "hq")) != LB_OK) return st;
    if (!lb_lsq_range_name(range)) return lb_error(ctx, LB_ERR_ARG, "hq: unknown range mode %d", (int)range);
    if (rounding != LB_ROUND_HALF_EVEN && rounding != LB_ROUND_HALF_AWAY)
        return lb_error(ctx, LB_ERR_ARG, "hq: rounding must be half-even or half-away");
    if (!(isfinite(step) && step > 0.0f))
        return lb_error(ctx, LB_ERR_ARG, "hq: step %g must be finite and > 0", (double)step);
    const lbq_kernels *k;
    if ((st = select_kernels(ctx, &k)) != LB_OK || rows == 0) return st;
    lbq_hq_job job;
    hq_job_transform(&job, D, block, x);
    job.step = step;
    job.lo = (float)-lb_lsq_qn(range);
    job.hi = (float)LB_LSQ_QP;
    job.rounding = rounding;
    job.codes.fmt = fmt;
    job.codes.base = codes;
    job.quotient = quotient;
    job.transformed = transformed;
    job.row_sq = row_sq;
    return hq_run(ctx, k, rows, &job);
}

lb_status lb_hadamard_cpu(lb_ctx *ctx, int64_t rows, int64_t D, int64_t block, const float *in,
                          float *out)
{
    lb_status st = hq_check(ctx, rows, D, block, in);
    if (st != LB_OK) return st;
    if (rows > 0 && !out) return lb_error(ctx, LB_ERR_ARG, "hadamard: NULL output");
    const lbq_kernels *k;
    if ((st = select_kernels(ctx, &k)) != LB_OK || rows == 0) return st;
    lbq_hq_job job;
    hq_job_transform(&job, D, block, in); /* codes.base NULL: the transform only */
    job.transformed = out;
    return hq_run(ctx, k, rows, &job);
}

lb_status lb_hq_init_step_cpu(lb_ctx *ctx, int64_t rows, int64_t D, int64_t block, const float *x,
                              float *step)
{
    lb_status st = hq_check(ctx, rows, D, block, x);
    if (st != LB_OK) return st;
    if (!step) return lb_error(ctx, LB_ERR_ARG, "hq init: NULL step");
    const lbq_kernels *k;
    if ((st = select_kernels(ctx, &k)) != LB_OK) return st;
    const int64_t n = rows * D;
    if (n == 0) return lb_lsq_init_step_ref(ctx, 0, NULL, step);
    float *t = lb_alloc((size_t)n * sizeof *t); // (rows, D)
    if (!t) return lb_error(ctx, LB_ERR_NOMEM, "hq init: out of memory");
    lbq_hq_job job;
    hq_job_transform(&job, D, block, x); /* the transform only */
    job.transformed = t;
    st = hq_run(ctx, k, rows, &job);
    /* Σ|t| in increasing index order is sequential by definition: the
     * reference's own loop is the fastest exact evaluation. */
    if (st == LB_OK) st = lb_lsq_init_step_ref(ctx, n, t, step);
    lb_free(t);
    return st;
}

/* ------------------------------------------------------ range (min / max) */

typedef struct range_result {
    float mn, mx, amax;
    int bad, bad_unit;
} range_result;

/* min, max, max|x| over x (n >= 1) split over threads (exact in any order);
 * with `unit` (n) also whether some entry is outside [0, 1). */
static void range_run(lb_ctx *ctx, const lbq_kernels *k, const float *x, int64_t n, const float *unit,
                      range_result *res)
{
    const int nt = threads_for(ctx, n);
    const int64_t chunks = (n + LBQ_CHUNK - 1) / LBQ_CHUNK;
    range_result part[256];
    const int ntc = nt > 256 ? 256 : nt;
    for (int i = 0; i < ntc; i++) part[i].bad = -1; /* -1: the thread had no elements */
#pragma omp parallel num_threads(ntc) if (ntc > 1)
    {
        int64_t c0, c1;
        split(chunks, thread_id(), thread_count(), &c0, &c1);
        const int64_t i0 = c0 * LBQ_CHUNK, i1 = c1 * LBQ_CHUNK < n ? c1 * LBQ_CHUNK : n;
        if (i1 > i0) {
            range_result r = {0.0f, 0.0f, 0.0f, 0, 0};
            r.bad = k->range(x + i0, i1 - i0, &r.mn, &r.mx, &r.amax);
            if (unit) r.bad_unit = k->check_unit(unit + i0, i1 - i0);
            part[thread_id()] = r;
        }
    }
    int first = 1;
    res->bad = res->bad_unit = 0;
    res->mn = res->mx = res->amax = 0.0f;
    for (int i = 0; i < ntc; i++) {
        if (part[i].bad < 0) continue;
        res->bad |= part[i].bad;
        res->bad_unit |= part[i].bad_unit;
        if (first || part[i].mn < res->mn) res->mn = part[i].mn;
        if (first || part[i].mx > res->mx) res->mx = part[i].mx;
        if (part[i].amax > res->amax) res->amax = part[i].amax;
        first = 0;
    }
}

lb_status lb_minmax_cpu(lb_ctx *ctx, int64_t n, const float *x, float *lo, float *hi)
{
    if (n < 0 || !lo || !hi || (n > 0 && !x)) return lb_error(ctx, LB_ERR_ARG, "minmax: bad arguments");
    const lbq_kernels *k;
    lb_status st = select_kernels(ctx, &k);
    if (st != LB_OK) return st;
    if (n == 0) {
        *lo = *hi = 0.0f;
        return LB_OK;
    }
    range_result r;
    range_run(ctx, k, x, n, NULL, &r);
    if (r.bad) {
        const int64_t i = first_nonfinite(x, n);
        return lb_error(ctx, LB_ERR_NUMERIC, "range minmax: non-finite value at index %lld", (long long)i);
    }
    /* The reference keeps the first of equal values (strict comparisons), so
     * a zero extreme has the sign of the first zero in x. */
    if (r.mn == 0.0f)
        for (int64_t i = 0; i < n; i++)
            if (x[i] == 0.0f) {
                r.mn = x[i];
                break;
            }
    if (r.mx == 0.0f)
        for (int64_t i = 0; i < n; i++)
            if (x[i] == 0.0f) {
                r.mx = x[i];
                break;
            }
    *lo = r.mn;
    *hi = r.mx;
    return LB_OK;
}

/* ------------------------------------------------------------- bit split */

lb_status lb_bit_split_cpu(lb_ctx *ctx, lb_bs_mode mode, lb_rounding rounding, int64_t N, int64_t C,
                           const float *g, const float *uniforms, uint64_t seed, uint64_t stream,
                           lb_int_format fmt, void *hi, void *lo, float *fine_scale, int64_t *hi_sq,
                           int64_t *lo_sq)
{
    if (!lb_bs_mode_name(mode)) return lb_error(ctx, LB_ERR_ARG, "bit split: unknown mode %d", (int)mode);
    if (rounding != LB_ROUND_HALF_EVEN && rounding != LB_ROUND_HALF_AWAY)
        return lb_error(ctx, LB_ERR_ARG, "bit split: rounding must be half-even or half-away");
    if (N < 0 || C < 0 || !fine_scale || (N * C > 0 && (!g || !hi || !lo)))
        return lb_error(ctx, LB_ERR_ARG, "bit split: bad arguments");
    lb_status st = check_fmt(ctx, fmt, "bit split");
    if (st != LB_OK) return st;
    const lbq_kernels *k;
    if ((st = select_kernels(ctx, &k)) != LB_OK) return st;
    const int64_t n = N * C;

    range_result r = {0.0f, 0.0f, 0.0f, 0, 0};
    if (n > 0) range_run(ctx, k, g, n, uniforms, &r);
    if (r.bad || r.bad_unit) {
        /* The reference's first error: lowest index, g before uniforms. */
        for (int64_t i = 0; i < n; i++) {
            if (!isfinite(g[i]))
                return lb_error(ctx, LB_ERR_NUMERIC, "bit split: g[%lld] = %g is not finite",
                                (long long)i, (double)g[i]);
            if (uniforms && !(uniforms[i] >= 0.0f && uniforms[i] < 1.0f))
                return lb_error(ctx, LB_ERR_ARG, "bit split: uniforms[%lld] = %g is not in [0, 1)",
                                (long long)i, (double)uniforms[i]);
        }
    }

    lbq_bs_job job;
    memset(&job, 0, sizeof job);
    job.C = C;
    job.mode = mode;
    job.rounding = rounding;
    job.g = g;
    job.uniforms = uniforms;
    job.seed = seed;
    job.stream = stream;
    job.hi.fmt = job.lo.fmt = fmt;
    job.hi.base = hi;
    job.lo.base = lo;
    job.hi_sq = hi_sq;
    job.lo_sq = lo_sq;
    if (mode == LB_BS_CLEAN) {
        if (r.amax == 0.0f) {
            zero_codes(fmt, hi, n);
            zero_codes(fmt, lo, n);
            for (int64_t i = 0; i < N; i++) {
                if (hi_sq) hi_sq[i] = 0;
                if (lo_sq) lo_sq[i] = 0;
            }
            *fine_scale = 0.0f;
            return LB_OK;
        }
        job.m = (double)r.amax;
        *fine_scale = r.amax / 98.0f;
    } else {
        /* The reference's scalar prologue of LB_BS_CODE (min/max start at 0
         * for n = 0, where the guards give M' = 1e-8). */
        float mn = (float)fmin((double)r.mn - 1e-8, 0.0);
        float mx = (float)fmax((double)r.mx + 1e-8, 0.0);
        float m = fmaxf(fabsf(mn), fabsf(mx));
        job.sc = 196.0f / (2.0f * m);
        *fine_scale = 1.0f / job.sc;
    }
    if (N == 0) return LB_OK;
    const int64_t unit = (fmt == LB_INT_S4 && (C & 1)) ? 2 : 1;
    const int64_t units = (N + unit - 1) / unit;
    const int nt = threads_for(ctx, n);
    scratch_set ss;
    if ((st = scratch_create(ctx, nt, 1, &ss)) != LB_OK) return st;
#pragma omp parallel num_threads(nt) if (nt > 1)
    {
        int64_t u0, u1;
        split(units, thread_id(), thread_count(), &u0, &u1);
        const int64_t r0 = u0 * unit, r1 = u1 * unit < N ? u1 * unit : N;
        const lbq_scratch s = scratch_get(&ss, thread_id());
        if (r1 > r0) k->bit_split_rows(&job, r0, r1, &s);
    }
    lb_free(ss.mem);
    return LB_OK;
}

lb_status lb_lss_bs_scores_cpu(lb_ctx *ctx, int64_t N, const int64_t *hi_sq, const int64_t *lo_sq,
                               const int64_t *x_sq, double *scores)
{
    if (N < 0 || (N > 0 && (!hi_sq || !lo_sq || !scores)))
        return lb_error(ctx, LB_ERR_ARG, "lss scores: bad arguments");
    for (int64_t i = 0; i < N; i++) {
        const int64_t x2 = x_sq ? x_sq[i] : 1;
        scores[i] = 14.0 * sqrt((double)hi_sq[i] * (double)x2);
        scores[N + i] = sqrt((double)lo_sq[i] * (double)x2);
    }
    return LB_OK;
}

/* --------------------------------------------------------------------- LUQ */

lb_status lb_luq_quantize_cpu(lb_ctx *ctx, const lb_luq_params *p, const float *x, size_t n,
                              int8_t *codes, float *values, float *alpha_out)
{
    if (!p) return lb_error(ctx, LB_ERR_ARG, "luq: NULL params");
    if (p->levels < 1 || p->levels > LB_LUQ_MAX_LEVELS)
        return lb_error(ctx, LB_ERR_ARG, "luq: levels must be in [1, %d], got %d", LB_LUQ_MAX_LEVELS,
                        p->levels);
    if (!lb_luq_underflow_name(p->underflow))
        return lb_error(ctx, LB_ERR_ARG, "luq: unknown underflow mode %d", (int)p->underflow);
    if (!lb_luq_rounding_name(p->rounding))
        return lb_error(ctx, LB_ERR_ARG, "luq: unknown rounding mode %d", (int)p->rounding);
    if (n > 0 && !x) return lb_error(ctx, LB_ERR_ARG, "luq: NULL input");
    if (n > (size_t)INT64_MAX / 2) return lb_error(ctx, LB_ERR_ARG, "luq: tensor too large");
    const lbq_kernels *k;
    lb_status st = select_kernels(ctx, &k);
    if (st != LB_OK) return st;
    const int64_t nn = (int64_t)n;
    range_result r = {0.0f, 0.0f, 0.0f, 0, 0};
    if (nn > 0) range_run(ctx, k, x, nn, NULL, &r);
    if (r.bad) {
        const int64_t i = first_nonfinite(x, nn);
        return lb_error(ctx, LB_ERR_NUMERIC, "luq: non-finite input %g at index %lld", (double)x[i],
                        (long long)i);
    }
    const float alpha = ldexpf(r.amax, 1 - p->levels);
    if (alpha_out) *alpha_out = alpha;
    if (nn == 0) return LB_OK;
    if (r.amax == 0.0f) { /* every code 0, every value α·0 = +0 */
        if (codes) memset(codes, 0, n);
        if (values) memset(values, 0, n * sizeof *values);
        return LB_OK;
    }
    if (!codes && !values) return LB_OK;
    lbq_luq_job job;
    job.x = x;
    job.m = r.amax;
    job.alpha = alpha;
    job.top = ldexpf(1.0f, p->levels - 1);
    job.underflow = p->underflow;
    job.rounding = p->rounding;
    job.seed = p->seed;
    job.stream_under = lb_luq_stream_underflow(p->sample);
    job.stream_round = lb_luq_stream_round(p->sample);
    job.codes = codes;
    job.values = values;
    const int nt = threads_for(ctx, nn);
    const int64_t chunks = (nn + LBQ_CHUNK - 1) / LBQ_CHUNK;
    scratch_set ss;
    if ((st = scratch_create(ctx, nt, 1, &ss)) != LB_OK) return st;
#pragma omp parallel num_threads(nt) if (nt > 1)
    {
        int64_t c0, c1;
        split(chunks, thread_id(), thread_count(), &c0, &c1);
        const int64_t i0 = c0 * LBQ_CHUNK, i1 = c1 * LBQ_CHUNK < nn ? c1 * LBQ_CHUNK : nn;
        const lbq_scratch s = scratch_get(&ss, thread_id());
        if (i1 > i0) k->luq(&job, i0, i1, &s);
    }
    lb_free(ss.mem);
    return LB_OK;
}

/* -------------------------------------------------------------------- SAWB */

lb_status lb_sawb_moments_cpu(lb_ctx *ctx, const float *x, size_t n, double *sum_abs, double *sum_sq,
                              float *max_abs)
{
    if ((n > 0 && !x) || !sum_abs || !sum_sq || !max_abs)
        return lb_error(ctx, LB_ERR_ARG, "sawb: NULL pointer");
    if (n > (size_t)INT64_MAX / 2) return lb_error(ctx, LB_ERR_ARG, "sawb: tensor too large");
    const lbq_kernels *k;
    lb_status st = select_kernels(ctx, &k);
    if (st != LB_OK) return st;
    double lane_abs[LB_SAWB_LANES], lane_sq[LB_SAWB_LANES];
    float mx = 0.0f;
    if (k->moments16(x, (int64_t)n, lane_abs, lane_sq, &mx)) {
        const int64_t i = first_nonfinite(x, (int64_t)n);
        return lb_error(ctx, LB_ERR_NUMERIC, "sawb: non-finite input %g at index %lld", (double)x[i],
                        (long long)i);
    }
    for (int h = LB_SAWB_LANES / 2; h >= 1; h /= 2)
        for (int l = 0; l < h; l++) {
            lane_abs[l] += lane_abs[l + h];
            lane_sq[l] += lane_sq[l + h];
        }
    *sum_abs = lane_abs[0];
    *sum_sq = lane_sq[0];
    *max_abs = mx;
    return LB_OK;
}

static lb_status sawb_check_params(lb_ctx *ctx, const lb_sawb_params *p)
{
    if (!p) return lb_error(ctx, LB_ERR_ARG, "sawb: NULL params");
    if (!isfinite(p->c1) || !isfinite(p->c2))
        return lb_error(ctx, LB_ERR_ARG, "sawb: coefficients must be finite (c1=%g, c2=%g)", p->c1, p->c2);
    if (p->qn > 0 || p->qn < -128 || p->qp <= 0 || p->qp > 127)
        return lb_error(ctx, LB_ERR_ARG, "sawb: need -128 <= qn <= 0 < qp <= 127, got [%d, %d]", p->qn,
                        p->qp);
    return LB_OK;
}

lb_status lb_sawb_scale_cpu(lb_ctx *ctx, const lb_sawb_params *params, const float *x, size_t n,
                            float *scale, double *clip, int *fallback)
{
    lb_status st = sawb_check_params(ctx, params);
    if (st != LB_OK) return st;
    if (!scale) return lb_error(ctx, LB_ERR_ARG, "sawb: NULL scale");
    double s1, s2;
    float mx;
    if ((st = lb_sawb_moments_cpu(ctx, x, n, &s1, &s2, &mx)) != LB_OK) return st;
    /* The reference's scalar formula (ref/sawb.c), verbatim. */
    if (fallback) *fallback = 0;
    if (mx == 0.0f) {
        if (clip) *clip = 0.0;
        *scale = 0.0f;
        return LB_OK;
    }
    const double nd = (double)n;
    const double c = params->c1 * sqrt(s2 / nd) - params->c2 * (s1 / nd);
    if (clip) *clip = c;
    float s = (float)(2.0 * c / (double)(params->qp - params->qn));
    if (!(c > 0.0) || !isfinite(s) || !(s >= FLT_MIN)) {
        int r = params->qn == 0 ? params->qp : (params->qp < -params->qn ? params->qp : -params->qn);
        s = mx / (float)r;
        if (fallback) *fallback = 1;
    }
    *scale = s;
    return LB_OK;
}

/* codes (and dequant) of x (n) under job->scale, over threads; 1 on a
 * non-finite input. */
static lb_status scale_quantize_run(lb_ctx *ctx, const lbq_kernels *k, lbq_sq_job *job, int64_t n,
                                    int *bad_out)
{
    const int nt = threads_for(ctx, n);
    const int64_t chunks = (n + LBQ_CHUNK - 1) / LBQ_CHUNK;
    scratch_set ss;
    lb_status st = scratch_create(ctx, nt, 1, &ss);
    if (st != LB_OK) return st;
    int bad = 0;
#pragma omp parallel num_threads(nt) if (nt > 1) reduction(| : bad)
    {
        int64_t c0, c1;
        split(chunks, thread_id(), thread_count(), &c0, &c1);
        const int64_t i0 = c0 * LBQ_CHUNK, i1 = c1 * LBQ_CHUNK < n ? c1 * LBQ_CHUNK : n;
        const lbq_scratch s = scratch_get(&ss, thread_id());
        if (i1 > i0) bad |= k->scale_quantize(job, i0, i1, &s);
    }
    lb_free(ss.mem);
    *bad_out = bad;
    return LB_OK;
}

lb_status lb_sawb_quantize_with_scale_cpu(lb_ctx *ctx, int qn, int qp, float scale, const float *x,
                                          size_t n, int8_t *codes, float *dequant)
{
    if (qn > 0 || qn < -128 || qp <= 0 || qp > 127)
        return lb_error(ctx, LB_ERR_ARG, "sawb: need -128 <= qn <= 0 < qp <= 127, got [%d, %d]", qn, qp);
    if (!isfinite(scale) || scale < 0.0f)
        return lb_error(ctx, LB_ERR_ARG, "sawb: scale must be finite and >= 0, got %g", (double)scale);
    if (n > 0 && (!x || !codes)) return lb_error(ctx, LB_ERR_ARG, "sawb: NULL pointer");
    if (n > (size_t)INT64_MAX / 2) return lb_error(ctx, LB_ERR_ARG, "sawb: tensor too large");
    const lbq_kernels *k;
    lb_status st = select_kernels(ctx, &k);
    if (st != LB_OK || n == 0) return st;
    const int64_t nn = (int64_t)n;
    int bad = 0;
    if (scale == 0.0f) {
        range_result r;
        range_run(ctx, k, x, nn, NULL, &r);
        bad = r.bad;
        if (!bad) {
            memset(codes, 0, n);
            if (dequant) memset(dequant, 0, n * sizeof *dequant); /* 0·0 = +0 */
        }
    } else {
        lbq_sq_job job;
        memset(&job, 0, sizeof job);
        job.x = x;
        job.scale = scale;
        job.qmin = (float)qn;
        job.qmax = (float)qp;
        job.rounding = LB_ROUND_HALF_EVEN;
        job.codes = codes;
        job.dequant = dequant;
        if ((st = scale_quantize_run(ctx, k, &job, nn, &bad)) != LB_OK) return st;
    }
    if (bad) {
        const int64_t i = first_nonfinite(x, nn);
        return lb_error(ctx, LB_ERR_NUMERIC, "sawb: non-finite input %g at index %lld", (double)x[i],
                        (long long)i);
    }
    return LB_OK;
}

lb_status lb_sawb_quantize_cpu(lb_ctx *ctx, const lb_sawb_params *params, const float *x, size_t n,
                               int8_t *codes, float *scale, float *dequant)
{
    float s;
    lb_status st = lb_sawb_scale_cpu(ctx, params, x, n, &s, NULL, NULL);
    if (st != LB_OK) return st;
    st = lb_sawb_quantize_with_scale_cpu(ctx, params->qn, params->qp, s, x, n, codes, dequant);
    if (st != LB_OK) return st;
    if (scale) *scale = s;
    return LB_OK;
}

/* ----------------------------------------------------------- uniform int8 */

lb_status lb_uniform_quantize_s8_cpu(lb_ctx *ctx, const lb_uniform_config *cfg, int64_t n,
                                     const float *x, float scale, int8_t *codes)
{
    int32_t qmin, qmax;
    lb_status st = lb_uniform_code_range(ctx, cfg, &qmin, &qmax);
    if (st != LB_OK) return st;
    if (!cfg->symmetric || cfg->bits > 8)
        return lb_error(ctx, LB_ERR_ARG, "uniform s8: needs a symmetric config of at most 8 bits");
    if (n < 0 || (n > 0 && (!x || !codes))) return lb_error(ctx, LB_ERR_ARG, "uniform s8: bad arguments");
    if (!(scale > 0.0f) || !isfinite(scale))
        return lb_error(ctx, LB_ERR_ARG, "uniform s8: scale %g is not positive and finite", (double)scale);
    const lbq_kernels *k;
    if ((st = select_kernels(ctx, &k)) != LB_OK || n == 0) return st;
    lbq_sq_job job;
    job.x = x;
    job.scale = scale;
    job.qmin = (float)qmin;
    job.qmax = (float)qmax;
    job.rounding = cfg->rounding;
    job.seed = cfg->seed;
    job.stream = cfg->stream;
    job.codes = codes;
    job.dequant = NULL;
    int bad = 0;
    if ((st = scale_quantize_run(ctx, k, &job, n, &bad)) != LB_OK) return st;
    if (bad) {
        const int64_t i = first_nonfinite(x, n);
        return lb_error(ctx, LB_ERR_NUMERIC, "uniform s8: non-finite input at index %lld", (long long)i);
    }
    return LB_OK;
}

lb_status lb_uniform_minmax_quantize_s8_cpu(lb_ctx *ctx, const lb_uniform_config *cfg, int64_t n,
                                            const float *x, int8_t *codes, float *scale)
{
    if (!scale) return lb_error(ctx, LB_ERR_ARG, "uniform s8: NULL scale");
    float lo, hi, s;
    lb_status st = lb_minmax_cpu(ctx, n, x, &lo, &hi);
    if (st == LB_OK) st = lb_uniform_qparams_ref(ctx, cfg, 1, &lo, &hi, &s, NULL);
    if (st == LB_OK) st = lb_uniform_quantize_s8_cpu(ctx, cfg, n, x, s, codes);
    if (st == LB_OK) *scale = s;
    return st;
}
