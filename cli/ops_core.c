/* cli/ops_core.c — `lowbit op` entries for the building blocks every recipe
 * shares: the rounding rules (include/lowbit/ref/rounding.h) and the exact
 * integer GEMM oracle (include/lowbit/ref/int_gemm.h). See
 * doc/algorithms/rounding.md and doc/algorithms/int-gemm.md. */
#include "config.h"
#include "op.h"
#include "lowbit/ref/int_gemm.h"
#include "lowbit/ref/rounding.h"

#include <math.h>

/* round: Y = round(X) under mode; stochastic uses
 * u_i = lb_rng_uniform_f32(seed, lb_rng_stream("op.round", stream), i). */
static lb_status op_round(lb_ctx *ctx, op_params *p, lb_tensor *const *in, int n_in,
                          lb_tensor **out, int *n_out)
{
    (void)n_in;
    static const char *const modes[] = {"even", "away", "stochastic", NULL};
    int mode;
    int64_t stream;
    lb_status st = op_param_choice(ctx, p, "mode", modes, 0, &mode);
    if (st == LB_OK) st = op_param_int(ctx, p, "stream", 0, &stream);
    if (st != LB_OK) return st;
    const lb_tensor *x = in[0];
    if (x->dtype != LB_F32) return lb_error(ctx, LB_ERR_ARG, "round: X must be f32, got %s", lb_dtype_name(x->dtype));
    st = lb_tensor_create(ctx, LB_F32, x->ndim, x->shape, &out[0]);
    if (st != LB_OK) return st;
    const uint64_t rng_stream = lb_rng_stream("op.round", (uint64_t)stream);
    const float *xv = lb_tensor_f32(x);
    float *yv = lb_tensor_f32(out[0]);
    for (size_t i = 0; i < x->numel; i++) {
        float u = mode == LB_ROUND_STOCHASTIC ? lb_rng_uniform_f32(p->seed, rng_stream, i) : 0.0f;
        yv[i] = lb_round((lb_rounding)mode, xv[i], u);
    }
    *n_out = 1;
    return LB_OK;
}

/* gemm-i8: C = op(A) op(B) in int32, A and B int8 codes (s8 .npy). */
static lb_status op_gemm_i8(lb_ctx *ctx, op_params *p, lb_tensor *const *in, int n_in,
                            lb_tensor **out, int *n_out)
{
    (void)n_in;
    int64_t ta, tb;
    lb_status st = op_param_int(ctx, p, "trans_a", 0, &ta);
    if (st == LB_OK) st = op_param_int(ctx, p, "trans_b", 1, &tb);
    if (st != LB_OK) return st;
    const lb_tensor *a = in[0], *b = in[1];
    if (a->dtype != LB_S8 || b->dtype != LB_S8 || a->ndim != 2 || b->ndim != 2)
        return lb_error(ctx, LB_ERR_ARG, "gemm-i8: A and B must be 2-D s8 (int8) arrays, got %s %dD and %s %dD",
                        lb_dtype_name(a->dtype), a->ndim, lb_dtype_name(b->dtype), b->ndim);
    const int64_t M = ta ? a->shape[1] : a->shape[0], K = ta ? a->shape[0] : a->shape[1];
    const int64_t N = tb ? b->shape[0] : b->shape[1], Kb = tb ? b->shape[1] : b->shape[0];
    if (K != Kb)
        return lb_error(ctx, LB_ERR_ARG, "gemm-i8: inner dimensions differ: op(A) is (%lld, %lld), op(B) is (%lld, %lld)",
                        (long long)M, (long long)K, (long long)Kb, (long long)N);
    const int64_t shape[2] = {M, N};
    st = lb_tensor_create(ctx, LB_S32, 2, shape, &out[0]);
    if (st != LB_OK) return st;
    st = lb_gemm_i8_ref(ctx, ta != 0, tb != 0, M, N, K, lb_tensor_s8(a), lb_tensor_s8(b), lb_tensor_s32(out[0]));
    if (st != LB_OK) return st;
    *n_out = 1;
    return LB_OK;
}

const op_def ops_core[] = {
    {"round", "round to nearest (ties to even | away) or stochastic floor(x+u) [int4_training.md §1.1]",
     "X (any shape) f32", "Y f32 (integers)",
     "mode=even|away|stochastic (default even); stream=N (stochastic: u_i from "
     "lb_rng_stream(\"op.round\", N), element i)",
     1, 1, op_round},
    {"gemm-i8", "exact int8 x int8 -> int32 GEMM C = op(A) op(B), sums in increasing k (the oracle)",
     "A (M, K) s8 [or (K, M) with trans_a=1], B (N, K) s8 [or (K, N) with trans_b=0]", "C (M, N) s32",
     "trans_a=0|1 (default 0); trans_b=0|1 (default 1: C = A B^T, the nn.Linear layout)", 2, 2,
     op_gemm_i8},
};
const size_t ops_core_count = sizeof ops_core / sizeof ops_core[0];
