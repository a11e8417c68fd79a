/* cli/cli.h — shared pieces of the `lowbit` command-line program.
 *
 * Each subcommand is a function `int cmd_NAME(int argc, char **argv)` in its
 * own file, receiving argv[0] = the subcommand name. Exit codes: 0 success,
 * 1 failure of the work itself (bad file, check mismatch), 2 usage error or
 * "not yet implemented".
 */
#ifndef LOWBIT_CLI_H
#define LOWBIT_CLI_H

#include <stdint.h>
#include <stdbool.h>
#include "lowbit/lowbit.h"

#define CLI_EXIT_OK 0
#define CLI_EXIT_FAIL 1
#define CLI_EXIT_USAGE 2

/* A subcommand: name, one-line summary, usage text, entry point. */
typedef struct cli_command {
    const char *name;
    const char *summary;
    const char *usage; /* full --help text, options one per line */
    int (*run)(int argc, char **argv);
} cli_command;

/* Prints "lowbit NAME: <message>" and the usage to stderr, returns 2. */
int cli_usage_error(const cli_command *cmd, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Prints "lowbit: <what>: <status>: <detail>" to stderr, returns 1. */
int cli_report(lb_ctx *ctx, lb_status status, const char *what);

/* True when argv[i] is -h or --help. */
bool cli_is_help(const char *arg);

/* Strict number parsing: the whole string must be a number in range.
 * Return false (and print nothing) on failure. */
bool cli_parse_i64(const char *s, int64_t min, int64_t max, int64_t *out);
bool cli_parse_u64(const char *s, uint64_t *out);
bool cli_parse_double(const char *s, double *out);

/* Fetches the value of option argv[*i] (advancing *i); on a missing value
 * prints a usage error and returns NULL. */
const char *cli_option_value(const cli_command *cmd, int argc, char **argv, int *i);

/* Creates a context with a stderr log sink; prints and returns false on error. */
bool cli_ctx_create(lb_ctx **ctx);

/* The table of subcommands (cli/main.c). */
const cli_command *cli_find_command(const char *name);

int cmd_data(int argc, char **argv);
int cmd_op(int argc, char **argv);
int cmd_compare(int argc, char **argv);
int cmd_train(int argc, char **argv);
int cmd_eval(int argc, char **argv);
int cmd_generate(int argc, char **argv);
int cmd_export(int argc, char **argv);
int cmd_check(int argc, char **argv);
int cmd_bench(int argc, char **argv);
int cmd_tokenize(int argc, char **argv);
extern const char cmd_tokenize_usage[];
int cmd_import(int argc, char **argv);
int cmd_embed(int argc, char **argv);
int cmd_stats(int argc, char **argv);
int cmd_ptq(int argc, char **argv);
extern const char cmd_import_usage[];
extern const char cmd_embed_usage[];
extern const char cmd_stats_usage[];
extern const char cmd_ptq_usage[];

#endif
