/* cli/check.h — the case table of `lowbit check` (cli/cmd_check.c) and the
 * helpers its op runners share (cli/check_layers.c holds the layer ops). */
#ifndef LOWBIT_CLI_CHECK_H
#define LOWBIT_CLI_CHECK_H

#include <stddef.h>
#include <stdint.h>

#include "lowbit/lowbit.h"

/* Data kinds for generated inputs. */
enum check_data { DATA_RANDOM, DATA_EXTREMES, DATA_ZEROS, DATA_OUTLIER };
extern const char *const check_data_names[]; /* indexed by enum check_data */

typedef struct check_case {
    const char *op;   /* name in check_ops[] */
    int64_t shape[4]; /* op-specific, e.g. gemm: M, N, K */
    int param[4];     /* op-specific, e.g. gemm: trans_a, trans_b, int4 B, int4 A */
    enum check_data data;
} check_case;

typedef enum check_outcome { CHECK_OK = 0, CHECK_MISMATCH, CHECK_ERROR, CHECK_SKIP } check_outcome;

typedef struct check_result {
    check_outcome outcome;
    char detail[256]; /* first mismatch, error text or skip reason */
} check_result;

typedef struct check_op {
    const char *name;
    int per_isa; /* 1: run on every cpu ISA path; 0: a peer, run once */
    const char *isa_label; /* label in the isa column when per_isa == 0 */
    void (*describe)(const check_case *c, char *shape, size_t ns, char *params, size_t np);
    void (*run)(lb_ctx *ctx, const check_case *c, check_result *r);
} check_op;

/* Float input x (n) of the data kind from the counter RNG at `stream`:
 * uniform in [-1, 1), zeros, values on rounding ties (k/2), or random with
 * one element 1e4 times larger. */
void check_fill_f32(float *x, int64_t n, enum check_data kind, uint64_t stream);

/* r = OK when got and want (n elements of `size` bytes) are equal byte for
 * byte, else MISMATCH naming `what` and the first differing element. */
void check_compare_bytes(const char *what, const void *got, const void *want, int64_t n,
                         size_t size, check_result *r);

/* r = ERROR (SKIP for LB_ERR_UNSUPPORTED) with the status and ctx's detail. */
void check_set_error(check_result *r, lb_ctx *ctx, lb_status st);

/* Ops of cli/check_layers.c. shape: rows, cols, block or mode (see the file). */
void check_describe_rows(const check_case *c, char *shape, size_t ns, char *params, size_t np);
void check_run_hadamard(lb_ctx *ctx, const check_case *c, check_result *r);
void check_run_lsq_backward(lb_ctx *ctx, const check_case *c, check_result *r);
/* shape: N, D, C, block; param[0]: the layer's mode (see the file). */
void check_describe_layer(const check_case *c, char *shape, size_t ns, char *params, size_t np);
void check_run_qlinear_hq(lb_ctx *ctx, const check_case *c, check_result *r);
void check_run_qlinear_luq(lb_ctx *ctx, const check_case *c, check_result *r);

#endif
