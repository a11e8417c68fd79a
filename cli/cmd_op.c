/* cli/cmd_op.c — `lowbit op`: apply one algorithm to .npy inputs, write .npy
 * outputs. This is how users audit the reference algorithms and check their
 * own (e.g. GPU) results against them; see doc/op.md. */
#include "config.h"
#include "cli.h"
#include "op.h"
#include "lowbit/npy.h"

#include <stdio.h>
#include <string.h>

/* The algorithm groups' tables (cli/ops_<group>.c). Weak while groups land one
 * by one: a group not linked in has a NULL count and is skipped. */
#define OP_GROUP(g) \
    extern const op_def ops_##g[] __attribute__((weak)); \
    extern const size_t ops_##g##_count __attribute__((weak));
OP_GROUP(core)
OP_GROUP(xi)
OP_GROUP(luq)
OP_GROUP(attention)
OP_GROUP(uniform_power)
OP_GROUP(gptq)

typedef struct op_table {
    const op_def *ops;
    const size_t *count;
} op_table;

static const op_table tables[] = {
    {ops_core, &ops_core_count},
    {ops_xi, &ops_xi_count},
    {ops_luq, &ops_luq_count},
    {ops_attention, &ops_attention_count},
    {ops_uniform_power, &ops_uniform_power_count},
    {ops_gptq, &ops_gptq_count},
};

static const op_def *find_op(const char *name)
{
    for (size_t t = 0; t < sizeof tables / sizeof tables[0]; t++)
        for (size_t i = 0; tables[t].count && i < *tables[t].count; i++)
            if (strcmp(tables[t].ops[i].name, name) == 0) return &tables[t].ops[i];
    return NULL;
}

static void print_list(void)
{
    for (size_t t = 0; t < sizeof tables / sizeof tables[0]; t++) {
        for (size_t i = 0; tables[t].count && i < *tables[t].count; i++) {
            const op_def *op = &tables[t].ops[i];
            printf("%s\n    %s\n    inputs : %s\n    outputs: %s\n    params : %s\n", op->name,
                   op->summary, op->inputs, op->outputs, *op->params ? op->params : "(none)");
        }
    }
}

int cmd_op(int argc, char **argv)
{
    const cli_command *cmd = cli_find_command("op");
    const char *name = NULL;
    const char *in_paths[OP_MAX_INPUTS], *out_paths[OP_MAX_OUTPUTS];
    int n_in = 0, n_out = 0;
    op_params params = {0};

    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (cli_is_help(a)) {
            printf("%s", cmd->usage);
            return CLI_EXIT_OK;
        } else if (strcmp(a, "--list") == 0) {
            print_list();
            return CLI_EXIT_OK;
        } else if (strcmp(a, "--in") == 0) {
            const char *v = cli_option_value(cmd, argc, argv, &i);
            if (!v) return CLI_EXIT_USAGE;
            if (n_in == OP_MAX_INPUTS) return cli_usage_error(cmd, "at most %d --in files", OP_MAX_INPUTS);
            in_paths[n_in++] = v;
        } else if (strcmp(a, "--out") == 0) {
            const char *v = cli_option_value(cmd, argc, argv, &i);
            if (!v) return CLI_EXIT_USAGE;
            if (n_out == OP_MAX_OUTPUTS)
                return cli_usage_error(cmd, "at most %d --out files", OP_MAX_OUTPUTS);
            out_paths[n_out++] = v;
        } else if (strcmp(a, "--seed") == 0) {
            const char *v = cli_option_value(cmd, argc, argv, &i);
            if (!v) return CLI_EXIT_USAGE;
            if (!cli_parse_u64(v, &params.seed))
                return cli_usage_error(cmd, "--seed %s is not a non-negative integer", v);
        } else if (strcmp(a, "--set") == 0) {
            const char *v = cli_option_value(cmd, argc, argv, &i);
            if (!v) return CLI_EXIT_USAGE;
            char *eq = strchr(argv[i], '=');
            if (!eq || eq == argv[i]) return cli_usage_error(cmd, "--set expects key=value, got '%s'", v);
            if (params.count == OP_MAX_PARAMS)
                return cli_usage_error(cmd, "at most %d --set parameters", OP_MAX_PARAMS);
            *eq = '\0';
            params.keys[params.count] = argv[i];
            params.values[params.count] = eq + 1;
            params.count++;
        } else if (a[0] == '-') {
            return cli_usage_error(cmd, "unknown option %s", a);
        } else if (!name) {
            name = a;
        } else {
            return cli_usage_error(cmd, "unexpected argument '%s'", a);
        }
    }
    if (!name) return cli_usage_error(cmd, "missing the operation NAME (see lowbit op --list)");
    const op_def *op = find_op(name);
    if (!op) return cli_usage_error(cmd, "unknown operation '%s' (see lowbit op --list)", name);
    if (n_in < op->min_inputs || n_in > op->max_inputs) {
        if (op->min_inputs == op->max_inputs)
            return cli_usage_error(cmd, "%s takes %d --in file(s) (%s), got %d", name, op->min_inputs,
                                   op->inputs, n_in);
        return cli_usage_error(cmd, "%s takes %d to %d --in files (%s), got %d", name, op->min_inputs,
                               op->max_inputs, op->inputs, n_in);
    }

    lb_ctx *ctx = NULL;
    if (!cli_ctx_create(&ctx)) return CLI_EXIT_FAIL;
    lb_ctx_set_seed(ctx, params.seed);
    lb_tensor *in[OP_MAX_INPUTS] = {0}, *out[OP_MAX_OUTPUTS] = {0};
    int produced = 0, rc = CLI_EXIT_OK;
    lb_status st;
    for (int i = 0; i < n_in; i++) {
        st = lb_npy_read(ctx, in_paths[i], &in[i]);
        if (st != LB_OK) {
            rc = cli_report(ctx, st, in_paths[i]);
            goto done;
        }
    }
    st = op->run(ctx, &params, in, n_in, out, &produced);
    if (st != LB_OK) {
        rc = cli_report(ctx, st, name);
        goto done;
    }
    for (int i = 0; i < params.count; i++) {
        if (!params.used[i]) {
            rc = cli_usage_error(cmd, "parameter '%s' was not used by %s (it takes: %s)", params.keys[i], name,
                                 *op->params ? op->params : "none");
            goto done;
        }
    }
    if (n_out > produced) {
        rc = cli_usage_error(cmd, "%s produces %d output(s) (%s), got %d --out files", name, produced,
                             op->outputs, n_out);
        goto done;
    }
    for (int i = 0; i < n_out; i++) {
        st = lb_npy_write(ctx, out_paths[i], out[i]);
        if (st != LB_OK) {
            rc = cli_report(ctx, st, out_paths[i]);
            goto done;
        }
    }
done:
    for (int i = 0; i < OP_MAX_INPUTS; i++) lb_tensor_free(in[i]);
    for (int i = 0; i < OP_MAX_OUTPUTS; i++) lb_tensor_free(out[i]);
    lb_ctx_free(ctx);
    return rc;
}
