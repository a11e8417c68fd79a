/* cli/cmd_bench.c — `lowbit bench`: benchmark programs (bench/) with their
 * peers measured in the same run.
 *
 *   lowbit bench [gemm-i8] [--threads N[,N...]] [--shapes MxNxK[,MxNxK...]]
 *                [--isa scalar,avx2,avx512,avx512vnni] [--repeats R]
 *                [--min-time S] [--csv FILE]
 */
#include "config.h"
#include "cli.h"
#include "../bench/bench.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int cmd_bench(int argc, char **argv);

static const char bench_usage[] =
    "usage: lowbit bench [gemm-i8] [options]\n"
    "  int8 GEMM C = X (M,K) · W^T (W (N,K)) of every cpu ISA path, int4 weights on the best\n"
    "  path, oneDNN u8·s8 (packed weights) and OpenBLAS sgemm, checked against the reference\n"
    "  first; prints GOP/s, % of the measured int8 peak and ratios to the peers.\n"
    "options:\n"
    "  --threads N[,N...]   thread counts to run (default: all OpenMP threads)\n"
    "  --shapes MxNxK[,..]  shapes (default 4096x256x256,4096x1024x256,4096x256x1024,\n"
    "                       256x256x4096,1024x1024x1024)\n"
    "  --isa LIST           cpu paths to time, comma separated (default: every vector path)\n"
    "  --repeats R          samples per figure, median reported (default 7)\n"
    "  --min-time S         seconds per sample (default 0.1)\n"
    "  --csv FILE           also write the results as CSV\n";

static int usage_error(const char *fmt, const char *arg)
{
    fprintf(stderr, "lowbit bench: ");
    fprintf(stderr, fmt, arg);
    fprintf(stderr, "\n%s", bench_usage);
    return CLI_EXIT_USAGE;
}

/* Parses "a,b,c" into up to cap integers in [min, max]; returns the count or -1. */
static int parse_int_list(const char *s, int64_t min, int64_t max, int64_t *out, int cap)
{
    char buf[512];
    if (strlen(s) >= sizeof buf) return -1;
    strcpy(buf, s);
    int n = 0;
    for (char *save = NULL, *tok = strtok_r(buf, ",", &save); tok;
         tok = strtok_r(NULL, ",", &save)) {
        if (n >= cap || !cli_parse_i64(tok, min, max, &out[n])) return -1;
        n++;
    }
    return n;
}

static int parse_shapes(const char *s, bench_gemm_i8_opts *o)
{
    char buf[1024];
    if (strlen(s) >= sizeof buf) return -1;
    strcpy(buf, s);
    int n = 0;
    for (char *save = NULL, *tok = strtok_r(buf, ",", &save); tok;
         tok = strtok_r(NULL, ",", &save)) {
        char *x1 = strchr(tok, 'x'), *x2 = x1 ? strchr(x1 + 1, 'x') : NULL;
        if (!x1 || !x2 || n >= BENCH_MAX_SHAPES) return -1;
        *x1 = *x2 = '\0';
        if (!cli_parse_i64(tok, 1, 1 << 20, &o->shapes[n][0]) ||
            !cli_parse_i64(x1 + 1, 1, 1 << 20, &o->shapes[n][1]) ||
            !cli_parse_i64(x2 + 1, 1, 131071, &o->shapes[n][2]))
            return -1;
        n++;
    }
    o->nshapes = n;
    return n;
}

static int parse_isas(const char *s, unsigned *mask)
{
    char buf[256];
    if (strlen(s) >= sizeof buf) return -1;
    strcpy(buf, s);
    *mask = 0;
    for (char *save = NULL, *tok = strtok_r(buf, ",", &save); tok;
         tok = strtok_r(NULL, ",", &save)) {
        lb_isa isa;
        if (lb_isa_from_name(tok, &isa) != LB_OK || isa == LB_ISA_AUTO) return -1;
        *mask |= 1u << isa;
    }
    return *mask ? 0 : -1;
}

int cmd_bench(int argc, char **argv)
{
    bench_gemm_i8_opts o;
    bench_gemm_i8_defaults(&o);
    int i = 1;
    if (i < argc && strcmp(argv[i], "gemm-i8") == 0) i++;
    for (; i < argc; i++) {
        const char *a = argv[i];
        if (cli_is_help(a)) {
            printf("%s", bench_usage);
            return CLI_EXIT_OK;
        }
        if (i + 1 >= argc) return usage_error("option %s needs a value (or is unknown)", a);
        const char *v = argv[++i];
        if (strcmp(a, "--threads") == 0) {
            int64_t t[BENCH_MAX_THREADS];
            int n = parse_int_list(v, 1, 1024, t, BENCH_MAX_THREADS);
            if (n <= 0) return usage_error("bad --threads '%s'", v);
            o.nthreads = n;
            for (int j = 0; j < n; j++) o.threads[j] = (int)t[j];
        } else if (strcmp(a, "--shapes") == 0) {
            if (parse_shapes(v, &o) <= 0) return usage_error("bad --shapes '%s'", v);
        } else if (strcmp(a, "--isa") == 0) {
            if (parse_isas(v, &o.isa_mask) != 0) return usage_error("bad --isa '%s'", v);
        } else if (strcmp(a, "--repeats") == 0) {
            int64_t r;
            if (!cli_parse_i64(v, 1, 64, &r)) return usage_error("bad --repeats '%s' (1..64)", v);
            o.repeats = (int)r;
        } else if (strcmp(a, "--min-time") == 0) {
            double t;
            if (!cli_parse_double(v, &t) || t <= 0 || t > 60)
                return usage_error("bad --min-time '%s' (0..60 s)", v);
            o.min_time = t;
        } else if (strcmp(a, "--csv") == 0) {
            o.csv_path = v;
        } else {
            return usage_error("unknown option %s", a);
        }
    }
    return bench_gemm_i8(&o) == 0 ? CLI_EXIT_OK : CLI_EXIT_FAIL;
}
