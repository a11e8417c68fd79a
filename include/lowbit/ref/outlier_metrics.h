/* lowbit/ref/outlier_metrics.h — the outlier metrics of Bondarenko et al.
 * 2023 ("Quantizable Transformers", Tables 2-7): infinity norm and kurtosis
 * of activation tensors, row-wise (oracle).
 *
 * Spec outlier_free_attention_and_w8a8.md §3.2 (the authors' code): for each
 * monitored tensor and each validation sequence n, flatten that sequence's
 * activation X_n (T, d) to one row of N = T·d numbers, then
 *   inf_n   = max_i |x_i|
 *   kappa_n = mu4 / (s^4 + eps),  eps = 1e-6,
 *             mu = sum x_i / N, s^2 = sum (x_i - mu)^2 / (N - 1)  (sample),
 *             mu4 = sum (x_i - mu)^4 / N                          (population)
 * i.e. NOT excess kurtosis (a Gaussian gives about 3) and with mixed N-1 / N
 * denominators: [1, 2, 3, 4, 100] gives 2.0779 (population moments: 3.2467).
 * So callers pass one row per sequence: x (rows = sequences, cols = T·d).
 * The aggregation of the paper's numbers is the caller's, in this order:
 * average inf_n over all validation sequences and kappa_n over the sequences
 * of the first 257 (BERT) / 101 (OPT) batches, per tensor; then the max or
 * mean across tensors (spec §3.2 lists which tensors each number covers).
 *
 * The paper's wording ("kurtosis of x") reads as the textbook definition;
 * LB_KURTOSIS_PEARSON (population moments, m4/m2^2) and LB_KURTOSIS_FISHER
 * (the same minus 3) offer it. LB_KURTOSIS_CODE is the default everywhere.
 *
 * Arithmetic (double; float input is widened first):
 *   inf norm: running max of |x_i| in increasing i; the result is exact.
 *   moments: two passes, mu = (sum_i x_i in increasing i from 0.0) / N;
 *     d_i = x_i - mu; S2 = sum d_i·d_i and S4 = sum (d_i·d_i)·(d_i·d_i), both
 *     in increasing i from 0.0;
 *     CODE: s2 = S2/(N-1), kappa = (S4/N) / (s2·s2 + eps);
 *     PEARSON: m2 = S2/N, kappa = (S4/N) / (m2·m2); FISHER: that minus 3.
 *
 * Special values (PyTorch parity: torch.amax/norm and the code's kurtosis
 * propagate NaN):
 *   - inf norm: a NaN anywhere in the row gives NaN; otherwise an infinite
 *     element gives +inf.
 *   - kurtosis: a NaN or infinite element gives NaN (the mean or the
 *     deviations become NaN).
 *   - a constant row: CODE gives exactly 0 (0 / (0 + eps)); PEARSON and
 *     FISHER (and CODE with eps = 0) are undefined there (0/0) and return
 *     LB_ERR_NUMERIC naming the row (nothing is written for later rows).
 *   - |x| above about 1e77 overflows the fourth powers (inf/inf = NaN).
 *
 * Shapes: x (rows, cols) row-major; out (rows). Errors: LB_ERR_ARG for NULL
 * pointers, rows < 0, cols < 1 (inf norm) or cols < 2 (kurtosis: the sample
 * standard deviation needs two values), an unknown mode, or eps < 0 / not
 * finite.
 */
#ifndef LOWBIT_REF_OUTLIER_METRICS_H
#define LOWBIT_REF_OUTLIER_METRICS_H

#include <stdint.h>
#include "lowbit/status.h"
#include "lowbit/context.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The code's eps in mu4 / (s^4 + eps). */
#define LB_KURTOSIS_EPS 1e-6

/* The paper's kurtosis averages: the first 257 (BERT) / 101 (OPT) batches. */
#define LB_KURTOSIS_BATCHES_BERT 257
#define LB_KURTOSIS_BATCHES_OPT 101

typedef enum lb_kurtosis_mode {
    LB_KURTOSIS_CODE = 0,    /* mu4 / (s^4 + eps), s with N-1 (default) */
    LB_KURTOSIS_PEARSON = 1, /* m4 / m2^2, population moments */
    LB_KURTOSIS_FISHER = 2   /* m4 / m2^2 - 3 (excess) */
} lb_kurtosis_mode;

/* "code", "pearson", "fisher"; NULL for an unknown mode. */
const char *lb_kurtosis_mode_name(lb_kurtosis_mode mode);

/* out[r] = max_i |x[r][i]| for x (rows, cols); out (rows). */
lb_status lb_inf_norm_ref(lb_ctx *ctx, int64_t rows, int64_t cols,
                          const float *x, /* (rows, cols) */
                          double *out);   /* (rows) */
lb_status lb_inf_norm_ref_f64(lb_ctx *ctx, int64_t rows, int64_t cols,
                              const double *x, /* (rows, cols) */
                              double *out);    /* (rows) */

/* out[r] = kurtosis of row r of x (rows, cols) in `mode`; eps is used by
 * LB_KURTOSIS_CODE only (pass LB_KURTOSIS_EPS for the paper's numbers). */
lb_status lb_kurtosis_ref(lb_ctx *ctx, int64_t rows, int64_t cols, lb_kurtosis_mode mode,
                          double eps,
                          const float *x, /* (rows, cols) */
                          double *out);   /* (rows) */
lb_status lb_kurtosis_ref_f64(lb_ctx *ctx, int64_t rows, int64_t cols, lb_kurtosis_mode mode,
                              double eps,
                              const double *x, /* (rows, cols) */
                              double *out);    /* (rows) */

#ifdef __cplusplus
}
#endif
#endif
