/* tests/xi_test.h — helpers shared by the Xi et al. (HQ+BS+LSS) test programs:
 * a minimal .npy fixture reader (little-endian f4/f8/i1/i4, C order; enough
 * for the committed fixtures in tests/data/xi/), deterministic test data from
 * the counter RNG, and comparisons that print the worst element on failure.
 * Include after <cmocka.h> and test_util.h. */
#ifndef LOWBIT_TESTS_XI_TEST_H
#define LOWBIT_TESTS_XI_TEST_H

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lowbit/rng.h"

/* A fixture loaded as double values (whatever the stored dtype). */
typedef struct xi_npy {
    int ndim;
    int64_t shape[4];
    int64_t numel;
    double *data;
} xi_npy;

/* Reads tests/data/<name>; returns 0 on success. */
static inline int xi_npy_load(const char *name, xi_npy *out)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", lb_test_data_dir(), name);
    memset(out, 0, sizeof *out);
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "cannot open fixture %s\n", path);
        return -1;
    }
    unsigned char pre[10];
    if (fread(pre, 1, 10, f) != 10 || memcmp(pre, "\x93NUMPY", 6) != 0 || pre[6] != 1) {
        fclose(f);
        return -1;
    }
    size_t hlen = (size_t)pre[8] | ((size_t)pre[9] << 8);
    char *hdr = calloc(hlen + 1, 1);
    if (!hdr || fread(hdr, 1, hlen, f) != hlen) {
        free(hdr);
        fclose(f);
        return -1;
    }
    size_t esize = 0;
    int kind = 0; /* 'f' float, 'i' int */
    if (strstr(hdr, "'<f4'")) esize = 4, kind = 'f';
    else if (strstr(hdr, "'<f8'")) esize = 8, kind = 'f';
    else if (strstr(hdr, "'|i1'")) esize = 1, kind = 'i';
    else if (strstr(hdr, "'<i4'")) esize = 4, kind = 'i';
    else if (strstr(hdr, "'|u1'")) esize = 1, kind = 'u';
    const char *sh = strstr(hdr, "'shape': (");
    if (!esize || strstr(hdr, "'fortran_order': True") || !sh) {
        free(hdr);
        fclose(f);
        return -1;
    }
    sh += strlen("'shape': (");
    out->numel = 1;
    while (*sh && *sh != ')') {
        while (*sh == ' ' || *sh == ',') sh++;
        if (*sh == ')') break;
        long long v = strtoll(sh, (char **)&sh, 10);
        if (out->ndim < 4) out->shape[out->ndim++] = v;
        out->numel *= v;
    }
    free(hdr);
    size_t n = (size_t)out->numel;
    unsigned char *raw = malloc(n * esize + 1);
    out->data = malloc((n + 1) * sizeof(double));
    if (!raw || !out->data || fread(raw, esize, n, f) != n) {
        free(raw);
        free(out->data);
        out->data = NULL;
        fclose(f);
        return -1;
    }
    fclose(f);
    for (size_t i = 0; i < n; i++) {
        const unsigned char *p = raw + i * esize;
        if (kind == 'f' && esize == 4) {
            float v;
            memcpy(&v, p, 4);
            out->data[i] = v;
        } else if (kind == 'f') {
            double v;
            memcpy(&v, p, 8);
            out->data[i] = v;
        } else if (kind == 'i' && esize == 1) {
            out->data[i] = (double)(int8_t)p[0];
        } else if (kind == 'u') {
            out->data[i] = (double)p[0];
        } else {
            int32_t v;
            memcpy(&v, p, 4);
            out->data[i] = v;
        }
    }
    free(raw);
    return 0;
}

static inline void xi_npy_free(xi_npy *a)
{
    free(a->data);
    a->data = NULL;
}

/* Fixture as a new float array (caller frees). */
static inline float *xi_npy_f32(const xi_npy *a)
{
    float *x = malloc((size_t)(a->numel + 1) * sizeof *x);
    for (int64_t i = 0; i < a->numel; i++) x[i] = (float)a->data[i];
    return x;
}

/* Deterministic normal-ish test data: Box–Muller on the counter RNG. */
static inline double xi_normal(uint64_t seed, uint64_t i)
{
    double u1 = lb_rng_uniform_f64(seed, 77, 2 * i), u2 = lb_rng_uniform_f64(seed, 77, 2 * i + 1);
    return sqrt(-2.0 * log(1.0 - u1)) * cos(6.283185307179586 * u2);
}

static inline void xi_fill_normal_f32(float *x, int64_t n, uint64_t seed, double scale)
{
    for (int64_t i = 0; i < n; i++) x[i] = (float)(scale * xi_normal(seed, (uint64_t)i));
}

/* max |a - b| over n doubles vs a tolerance atol + rtol|b|; prints the worst
 * element and returns the number of violations. */
static inline int64_t xi_check_close(const char *what, int64_t n, const double *a, const double *b,
                                     double atol, double rtol)
{
    int64_t bad = 0, worst = -1;
    double worst_excess = 0.0, max_abs = 0.0;
    for (int64_t i = 0; i < n; i++) {
        double d = fabs(a[i] - b[i]);
        if (!(d <= atol + rtol * fabs(b[i]))) {
            bad++;
            double e = d - (atol + rtol * fabs(b[i]));
            if (worst < 0 || !(e <= worst_excess)) worst = i, worst_excess = e;
        }
        if (d > max_abs) max_abs = d;
    }
    if (bad)
        fprintf(stderr, "%s: %lld of %lld elements off (max abs err %.3g); first worst [%lld]: %.17g vs %.17g\n",
                what, (long long)bad, (long long)n, max_abs, (long long)worst, a[worst], b[worst]);
    return bad;
}

/* Same for float arrays against doubles. */
static inline int64_t xi_check_close_f32(const char *what, int64_t n, const float *a, const double *b,
                                         double atol, double rtol)
{
    double *t = malloc((size_t)(n + 1) * sizeof *t);
    for (int64_t i = 0; i < n; i++) t[i] = a[i];
    int64_t bad = xi_check_close(what, n, t, b, atol, rtol);
    free(t);
    return bad;
}

#endif
