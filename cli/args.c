/* cli/args.c — argument parsing helpers and error reporting for the CLI. */
#include "config.h"
#include "cli.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int cli_usage_error(const cli_command *cmd, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "lowbit %s: ", cmd ? cmd->name : "");
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    if (cmd) fprintf(stderr, "%s", cmd->usage);
    return CLI_EXIT_USAGE;
}

int cli_report(lb_ctx *ctx, lb_status status, const char *what)
{
    const char *detail = lb_ctx_error(ctx);
    fprintf(stderr, "lowbit: %s: %s%s%s\n", what, lb_status_str(status), *detail ? ": " : "",
            detail);
    return CLI_EXIT_FAIL;
}

bool cli_is_help(const char *arg)
{
    return strcmp(arg, "-h") == 0 || strcmp(arg, "--help") == 0;
}

bool cli_parse_i64(const char *s, int64_t min, int64_t max, int64_t *out)
{
    if (!s || !*s) return false;
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || *end || v < min || v > max) return false;
    *out = v;
    return true;
}

bool cli_parse_u64(const char *s, uint64_t *out)
{
    if (!s || !*s || *s == '-') return false;
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 0);
    if (errno || *end) return false;
    *out = v;
    return true;
}

bool cli_parse_double(const char *s, double *out)
{
    if (!s || !*s) return false;
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || *end || !isfinite(v)) return false;
    *out = v;
    return true;
}

const char *cli_option_value(const cli_command *cmd, int argc, char **argv, int *i)
{
    if (*i + 1 >= argc) {
        cli_usage_error(cmd, "option %s needs a value", argv[*i]);
        return NULL;
    }
    *i += 1;
    return argv[*i];
}

static void stderr_log(void *user, lb_log_level level, const char *message)
{
    (void)user;
    static const char *const names[] = {"debug", "info", "warning", "error"};
    if (level == LB_LOG_INFO)
        fprintf(stderr, "%s\n", message);
    else
        fprintf(stderr, "lowbit %s: %s\n", names[level], message);
}

bool cli_ctx_create(lb_ctx **ctx)
{
    lb_status st = lb_ctx_create(ctx);
    if (st != LB_OK) {
        if (*ctx) cli_report(*ctx, st, "environment");
        else fprintf(stderr, "lowbit: cannot create a context: %s\n", lb_status_str(st));
        lb_ctx_free(*ctx);
        *ctx = NULL;
        return false;
    }
    lb_ctx_set_log(*ctx, stderr_log, NULL, LB_LOG_INFO);
    return true;
}
