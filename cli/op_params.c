/* cli/op_params.c — typed access to `lowbit op ... --set key=value` parameters. */
#include "config.h"
#include "op.h"
#include "cli.h"

#include <string.h>

static int find_key(op_params *p, const char *key)
{
    for (int i = 0; i < p->count; i++) {
        if (strcmp(p->keys[i], key) == 0) {
            p->used[i] = 1;
            return i;
        }
    }
    return -1;
}

lb_status op_param_int(lb_ctx *ctx, op_params *p, const char *key, int64_t def, int64_t *out)
{
    int i = find_key(p, key);
    if (i < 0) {
        *out = def;
        return LB_OK;
    }
    if (!cli_parse_i64(p->values[i], INT64_MIN, INT64_MAX, out))
        return lb_error(ctx, LB_ERR_ARG, "parameter %s=%s is not an integer", key, p->values[i]);
    return LB_OK;
}

lb_status op_param_double(lb_ctx *ctx, op_params *p, const char *key, double def, double *out)
{
    int i = find_key(p, key);
    if (i < 0) {
        *out = def;
        return LB_OK;
    }
    if (!cli_parse_double(p->values[i], out))
        return lb_error(ctx, LB_ERR_ARG, "parameter %s=%s is not a finite number", key, p->values[i]);
    return LB_OK;
}

lb_status op_param_string(lb_ctx *ctx, op_params *p, const char *key, const char *def,
                          const char **out)
{
    (void)ctx;
    int i = find_key(p, key);
    *out = i < 0 ? def : p->values[i];
    return LB_OK;
}

lb_status op_param_choice(lb_ctx *ctx, op_params *p, const char *key, const char *const *choices,
                          int def_index, int *index)
{
    int i = find_key(p, key);
    if (i < 0) {
        *index = def_index;
        return LB_OK;
    }
    for (int c = 0; choices[c]; c++) {
        if (strcmp(choices[c], p->values[i]) == 0) {
            *index = c;
            return LB_OK;
        }
    }
    char allowed[256] = "";
    for (int c = 0; choices[c]; c++) {
        if (c) strncat(allowed, "|", sizeof allowed - strlen(allowed) - 1);
        strncat(allowed, choices[c], sizeof allowed - strlen(allowed) - 1);
    }
    return lb_error(ctx, LB_ERR_ARG, "parameter %s=%s is not one of %s", key, p->values[i], allowed);
}
