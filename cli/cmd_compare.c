/* cli/cmd_compare.c — `lowbit compare A.npy B.npy [--atol X] [--rtol Y]`:
 * element-wise comparison of two .npy files, the other half of checking
 * external (e.g. GPU) results against `lowbit op`.
 *
 * Element i matches when |a - b| <= atol + rtol * |b| (B is the reference),
 * both are NaN, or both are the same infinity. Values of any supported dtype
 * are compared as double. Exit 0 when every element matches and the shapes
 * are equal, 1 otherwise, 2 on usage errors. */
#include "config.h"
#include "cli.h"
#include "lowbit/npy.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#define COMPARE_SHOW 10

static double element(const lb_tensor *t, size_t i)
{
    switch (t->dtype) {
    case LB_F32: return lb_tensor_f32(t)[i];
    case LB_F64: return lb_tensor_f64(t)[i];
    case LB_S8: return lb_tensor_s8(t)[i];
    case LB_S32: return lb_tensor_s32(t)[i];
    case LB_U8: return lb_tensor_u8(t)[i];
    }
    return NAN;
}

static void print_shape(const lb_tensor *t)
{
    printf("(");
    for (int d = 0; d < t->ndim; d++) printf("%s%lld", d ? ", " : "", (long long)t->shape[d]);
    printf(t->ndim == 1 ? ",)" : ")");
}

static void print_index(const lb_tensor *t, size_t flat)
{
    long long idx[LB_MAX_DIMS];
    for (int d = t->ndim - 1; d >= 0; d--) {
        idx[d] = (long long)(flat % (size_t)t->shape[d]);
        flat /= (size_t)t->shape[d];
    }
    printf("[");
    for (int d = 0; d < t->ndim; d++) printf("%s%lld", d ? ", " : "", idx[d]);
    printf("]");
}

int cmd_compare(int argc, char **argv)
{
    const cli_command *cmd = cli_find_command("compare");
    const char *paths[2];
    int n_paths = 0;
    double atol = 0.0, rtol = 0.0;
    for (int i = 1; i < argc; i++) {
        if (cli_is_help(argv[i])) {
            printf("%s", cmd->usage);
            return CLI_EXIT_OK;
        } else if (strcmp(argv[i], "--atol") == 0 || strcmp(argv[i], "--rtol") == 0) {
            double *dst = argv[i][2] == 'a' ? &atol : &rtol;
            const char *v = cli_option_value(cmd, argc, argv, &i);
            if (!v) return CLI_EXIT_USAGE;
            if (!cli_parse_double(v, dst) || *dst < 0)
                return cli_usage_error(cmd, "%s %s is not a non-negative number", argv[i - 1], v);
        } else if (argv[i][0] == '-' && argv[i][1] != '\0') {
            return cli_usage_error(cmd, "unknown option %s", argv[i]);
        } else if (n_paths < 2) {
            paths[n_paths++] = argv[i];
        } else {
            return cli_usage_error(cmd, "unexpected argument '%s'", argv[i]);
        }
    }
    if (n_paths != 2) return cli_usage_error(cmd, "expects two .npy files");

    lb_ctx *ctx = NULL;
    if (!cli_ctx_create(&ctx)) return CLI_EXIT_FAIL;
    lb_tensor *a = NULL, *b = NULL;
    int rc = CLI_EXIT_FAIL;
    lb_status st = lb_npy_read(ctx, paths[0], &a);
    if (st != LB_OK) {
        cli_report(ctx, st, paths[0]);
        goto done;
    }
    st = lb_npy_read(ctx, paths[1], &b);
    if (st != LB_OK) {
        cli_report(ctx, st, paths[1]);
        goto done;
    }
    int same_shape = a->ndim == b->ndim;
    for (int d = 0; same_shape && d < a->ndim; d++) same_shape = a->shape[d] == b->shape[d];
    if (!same_shape) {
        printf("shape mismatch: %s ", paths[0]);
        print_shape(a);
        printf(" vs %s ", paths[1]);
        print_shape(b);
        printf("\n");
        goto done;
    }
    double max_abs = 0.0, max_rel = 0.0;
    size_t mismatches = 0, first[COMPARE_SHOW];
    for (size_t i = 0; i < a->numel; i++) {
        double x = element(a, i), y = element(b, i);
        int ok;
        if (isnan(x) || isnan(y)) {
            ok = isnan(x) && isnan(y);
        } else if (isinf(x) || isinf(y)) {
            ok = x == y;
        } else {
            double diff = fabs(x - y);
            if (diff > max_abs) max_abs = diff;
            if (y != 0.0 && diff / fabs(y) > max_rel) max_rel = diff / fabs(y);
            ok = diff <= atol + rtol * fabs(y);
        }
        if (!ok) {
            if (mismatches < COMPARE_SHOW) first[mismatches] = i;
            mismatches++;
        }
    }
    printf("compared %zu elements %s: max abs err %.9g, max rel err %.9g, %zu outside atol=%g rtol=%g\n",
           a->numel, a->ndim ? "" : "(scalar)", max_abs, max_rel, mismatches, atol, rtol);
    for (size_t m = 0; m < mismatches && m < COMPARE_SHOW; m++) {
        printf("  mismatch at ");
        print_index(a, first[m]);
        printf(": %.9g vs %.9g\n", element(a, first[m]), element(b, first[m]));
    }
    rc = mismatches ? CLI_EXIT_FAIL : CLI_EXIT_OK;
done:
    lb_tensor_free(a);
    lb_tensor_free(b);
    lb_ctx_free(ctx);
    return rc;
}
