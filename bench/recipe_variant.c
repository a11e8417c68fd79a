/* bench/recipe_variant.c — "name[:key=value...]" recipe variants of the
 * linear-layer and training-step benchmarks (bench.h). */
#include "config.h"
#include "bench.h"

#include <stdio.h>
#include <string.h>

lb_status bench_parse_variant(lb_ctx *ctx, const char *spec, char *name, size_t name_size,
                              lb_recipe_options *o)
{
    char buf[256];
    if (strlen(spec) >= sizeof buf) return lb_error(ctx, LB_ERR_ARG, "variant too long");
    strcpy(buf, spec);
    lb_recipe_options_default(o);
    char *save = NULL, *tok = strtok_r(buf, ":", &save);
    if (!tok || strlen(tok) >= name_size)
        return lb_error(ctx, LB_ERR_ARG, "bad variant '%s' (name[:key=value...])", spec);
    snprintf(name, name_size, "%s", tok);
    /* steady state from the second step: the block search and the LSQ
     * initialisation of hq happen once, as after training's cold start */
    if (strcmp(name, "hq") == 0) {
        const lb_status st = lb_recipe_option_set(ctx, o, "lsq-cold-steps", "1");
        if (st != LB_OK) return st;
    }
    while ((tok = strtok_r(NULL, ":", &save))) {
        char *eq = strchr(tok, '=');
        if (!eq) return lb_error(ctx, LB_ERR_ARG, "bad variant '%s': '%s' is not key=value", spec, tok);
        *eq = '\0';
        const lb_status st = lb_recipe_option_set(ctx, o, tok, eq + 1);
        if (st != LB_OK) return st;
    }
    return lb_recipe_options_check(ctx, name, o);
}
