/* cli/op.h — the registry behind `lowbit op NAME`: one entry per algorithm,
 * applied to .npy inputs to produce .npy outputs.
 *
 * Each algorithm group defines a table in its own file (cli/ops_<group>.c)
 *     const op_def ops_<group>[];  const size_t ops_<group>_count;
 * and cli/cmd_op.c concatenates the tables. An op's run function receives
 * the input tensors in command-line order (--in A.npy --in B.npy ...) and the
 * parsed parameters, and returns newly created output tensors, written in
 * order to the --out files. Every parameter an op reads must be listed in its
 * `params` text: `lowbit op --list` prints it, and unknown keys are rejected.
 */
#ifndef LOWBIT_CLI_OP_H
#define LOWBIT_CLI_OP_H

#include <stddef.h>
#include <stdint.h>
#include "lowbit/lowbit.h"

#define OP_MAX_INPUTS 8
#define OP_MAX_OUTPUTS 8
#define OP_MAX_PARAMS 32

/* The parameters of one invocation: --seed and every --set key=value. */
typedef struct op_params {
    uint64_t seed;
    int count;
    const char *keys[OP_MAX_PARAMS];
    const char *values[OP_MAX_PARAMS];
    int used[OP_MAX_PARAMS]; /* set by the getters, to reject unknown keys */
} op_params;

/* Getters: *out = the value of `key`, or `def` when absent. A present but
 * malformed value gives LB_ERR_ARG with a detail naming the key. */
lb_status op_param_int(lb_ctx *ctx, op_params *p, const char *key, int64_t def, int64_t *out);
lb_status op_param_double(lb_ctx *ctx, op_params *p, const char *key, double def, double *out);
/* String value (not copied; valid while argv lives). */
lb_status op_param_string(lb_ctx *ctx, op_params *p, const char *key, const char *def,
                          const char **out);
/* One of `choices` (NULL-terminated); *index = its position. */
lb_status op_param_choice(lb_ctx *ctx, op_params *p, const char *key, const char *const *choices,
                          int def_index, int *index);

typedef struct op_def {
    const char *name;    /* e.g. "hq" */
    const char *summary; /* one line, names the paper and equation */
    const char *inputs;  /* e.g. "X (M, D) f32" */
    const char *outputs; /* e.g. "Q (M, D) s8 codes, S () f32 scale" */
    const char *params;  /* e.g. "block=16 Hadamard block size; rounding=even|away" */
    int min_inputs, max_inputs;
    /* out[0..*n_out) are created by the op and freed by the caller. */
    lb_status (*run)(lb_ctx *ctx, op_params *params, lb_tensor *const *in, int n_in,
                     lb_tensor **out, int *n_out);
} op_def;

/* ---- tensor helpers shared by the op tables (cli/op_tensor.c) ---------- */

/* A float32 view of an f32 tensor, or a float32 copy of an f64 one (*owned is
 * then set and must be freed by the caller). Other dtypes: LB_ERR_ARG naming `what`. */
lb_status op_as_f32(lb_ctx *ctx, const lb_tensor *t, const char *what, lb_tensor **owned,
                    const float **out);

/* The value of a one-element f32/f64 tensor (any shape). */
lb_status op_scalar_f32(lb_ctx *ctx, const lb_tensor *t, const char *what, float *out);

/* The (rows, cols) view of a tensor whose last dimension is cols (ndim >= 1). */
lb_status op_matrix_shape(lb_ctx *ctx, const lb_tensor *t, const char *what, int64_t *rows,
                          int64_t *cols);

/* New zeroed tensors: the shape of `like`; (r, c); (n,); a 0-d scalar holding v. */
lb_status op_make_like(lb_ctx *ctx, const lb_tensor *like, lb_dtype dtype, lb_tensor **out);
lb_status op_make_2d(lb_ctx *ctx, lb_dtype dtype, int64_t r, int64_t c, lb_tensor **out);
lb_status op_make_1d(lb_ctx *ctx, lb_dtype dtype, int64_t n, lb_tensor **out);
lb_status op_make_scalar_f32(lb_ctx *ctx, float v, lb_tensor **out);
lb_status op_make_scalar_s32(lb_ctx *ctx, int32_t v, lb_tensor **out);

#endif
