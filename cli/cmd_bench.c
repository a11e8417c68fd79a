/* cli/cmd_bench.c — `lowbit bench`: benchmark programs (bench/) with their
 * peers measured in the same run.
 *
 *   lowbit bench [gemm-i8] [--shapes MxNxK[,...]] [--isa LIST]   integer GEMM
 *   lowbit bench linear [--shapes TxOUTxIN[,...]] [--variants LIST]   one layer
 *   lowbit bench step [--models LIST] [--variants LIST] [--torch FILE] training step
 *   lowbit bench quant [...]                                   fused quantizers
 * with the common options --threads N[,N...] --repeats R --min-time S
 * --csv FILE (bench_usage below).
 */
#include "config.h"
#include "cli.h"
#include "../bench/bench.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int cmd_bench(int argc, char **argv);

static const char bench_usage[] =
    "usage: lowbit bench [gemm-i8|linear|step|quant] [options]\n"
    "Benchmarks check against the reference before timing, warm up, take interleaved samples\n"
    "and print medians with ratios to the peers measured in the same run.\n"
    "\n"
    "gemm-i8 (default): int8 GEMM C = X (M,K) · W^T (W (N,K)) of every cpu ISA path, int4\n"
    "  weights on the best path, oneDNN u8·s8 (packed weights) and OpenBLAS sgemm; GOP/s, %\n"
    "  of the measured int8 peak and ratios to the peers.\n"
    "  --shapes MxNxK[,..]  (default 4096x256x256,4096x1024x256,4096x256x1024,\n"
    "                       256x256x4096,1024x1024x1024)\n"
    "  --isa LIST           cpu paths to time, comma separated (default: every vector path)\n"
    "linear: one linear layer's training forward + backward per recipe variant, all\n"
    "  quantization work included, against fp32 (OpenBLAS).\n"
    "  --shapes TxOUTxIN[,..] tokens x out x in (default 4096x256x256,4096x1024x256,\n"
    "                       4096x256x1024)\n"
    "  --variants LIST      recipe[:key=value...], comma separated (default fp32,int8,hq,\n"
    "                       hq:lss=nonzero,luq,luq:smp=2)\n"
    "  --check-rows N       rows of the cpu-vs-ref check (default 256; 0 all; -1 none)\n"
    "step: a full training step of the default models per recipe variant.\n"
    "  --models LIST        vit,gpt,bert (default vit,gpt)\n"
    "  --variants LIST      (default fp32,int8,hq,hq:lss=nonzero,luq)\n"
    "  --torch FILE         PyTorch's steps from bench/torch_step.py --json FILE\n"
    "  --check-batch N      batch of the cpu-vs-ref check (default 4; -1 none)\n"
    "quant: the fused cpu quantizers against ref and separate passes\n"
    "  (--size N --threads LIST --isa LIST --repeats R --min-time S).\n"
    "\n"
    "common options:\n"
    "  --threads N[,N...]   thread counts to run (default: all OpenMP threads)\n"
    "  --repeats R          samples per figure, median reported\n"
    "  --min-time S         seconds per sample\n"
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

static int parse_shapes(const char *s, int64_t (*shapes)[3], int *nshapes)
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
        if (!cli_parse_i64(tok, 1, 1 << 20, &shapes[n][0]) ||
            !cli_parse_i64(x1 + 1, 1, 1 << 20, &shapes[n][1]) ||
            !cli_parse_i64(x2 + 1, 1, 131071, &shapes[n][2]))
            return -1;
        n++;
    }
    *nshapes = n;
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

/* The options every benchmark takes. */
typedef struct common_opts {
    int nthreads;
    int threads[BENCH_MAX_THREADS];
    int repeats;
    double min_time;
    const char *csv;
} common_opts;

/* Parses a common option `a` with value `v`: 1 when it was one, 0 when it
 * is not, -1 (after a usage message) when its value is bad. */
static int parse_common(const char *a, const char *v, common_opts *c)
{
    if (strcmp(a, "--threads") == 0) {
        int64_t t[BENCH_MAX_THREADS];
        const int n = parse_int_list(v, 1, 1024, t, BENCH_MAX_THREADS);
        if (n <= 0) return usage_error("bad --threads '%s'", v), -1;
        c->nthreads = n;
        for (int j = 0; j < n; j++) c->threads[j] = (int)t[j];
    } else if (strcmp(a, "--repeats") == 0) {
        int64_t r;
        if (!cli_parse_i64(v, 1, 64, &r)) return usage_error("bad --repeats '%s' (1..64)", v), -1;
        c->repeats = (int)r;
    } else if (strcmp(a, "--min-time") == 0) {
        double t;
        if (!cli_parse_double(v, &t) || t <= 0 || t > 60)
            return usage_error("bad --min-time '%s' (0..60 s)", v), -1;
        c->min_time = t;
    } else if (strcmp(a, "--csv") == 0) {
        c->csv = v;
    } else {
        return 0;
    }
    return 1;
}

/* Copies the common options that were given over a benchmark's defaults. */
#define APPLY_COMMON(o, c)                                                                     \
    do {                                                                                       \
        if ((c).nthreads) {                                                                    \
            (o).nthreads = (c).nthreads;                                                       \
            memcpy((o).threads, (c).threads, sizeof (c).threads);                              \
        }                                                                                      \
        if ((c).repeats) (o).repeats = (c).repeats;                                            \
        if ((c).min_time > 0) (o).min_time = (c).min_time;                                     \
        if ((c).csv) (o).csv_path = (c).csv;                                                   \
    } while (0)

int bench_quant_main(int argc, char **argv);

int cmd_bench(int argc, char **argv)
{
    enum { GEMM, LINEAR, STEP } which = GEMM;
    int i = 1;
    if (i < argc && strcmp(argv[i], "quant") == 0) return bench_quant_main(argc - 1, argv + 1);
    if (i < argc && strcmp(argv[i], "gemm-i8") == 0) i++;
    else if (i < argc && strcmp(argv[i], "linear") == 0) which = LINEAR, i++;
    else if (i < argc && strcmp(argv[i], "step") == 0) which = STEP, i++;
    bench_gemm_i8_opts g;
    bench_linear_opts l;
    bench_step_opts s;
    bench_gemm_i8_defaults(&g);
    bench_linear_defaults(&l);
    bench_step_defaults(&s);
    common_opts c;
    memset(&c, 0, sizeof c);
    for (; i < argc; i++) {
        const char *a = argv[i];
        if (cli_is_help(a)) {
            printf("%s", bench_usage);
            return CLI_EXIT_OK;
        }
        if (i + 1 >= argc) return usage_error("option %s needs a value (or is unknown)", a);
        const char *v = argv[++i];
        const int common = parse_common(a, v, &c);
        if (common < 0) return CLI_EXIT_USAGE;
        if (common) continue;
        if (strcmp(a, "--shapes") == 0 && which != STEP) {
            const int n = which == GEMM ? parse_shapes(v, g.shapes, &g.nshapes)
                                        : parse_shapes(v, l.shapes, &l.nshapes);
            if (n <= 0) return usage_error("bad --shapes '%s'", v);
        } else if (strcmp(a, "--isa") == 0 && which == GEMM) {
            if (parse_isas(v, &g.isa_mask) != 0) return usage_error("bad --isa '%s'", v);
        } else if (strcmp(a, "--variants") == 0 && which != GEMM) {
            if (which == LINEAR) l.variants = v;
            else s.variants = v;
        } else if (strcmp(a, "--check-rows") == 0 && which == LINEAR) {
            if (!cli_parse_i64(v, -1, 1 << 20, &l.check_rows))
                return usage_error("bad --check-rows '%s'", v);
        } else if (strcmp(a, "--check-batch") == 0 && which == STEP) {
            if (!cli_parse_i64(v, -1, 4096, &s.check_batch))
                return usage_error("bad --check-batch '%s'", v);
            if (s.check_batch == 0) return usage_error("bad --check-batch '%s' (-1 or >= 1)", v);
        } else if (strcmp(a, "--models") == 0 && which == STEP) {
            s.models = v;
        } else if (strcmp(a, "--torch") == 0 && which == STEP) {
            s.torch_json = v;
        } else {
            return usage_error("unknown option %s for this benchmark", a);
        }
    }
    int rc;
    switch (which) {
    case LINEAR:
        APPLY_COMMON(l, c);
        rc = bench_linear(&l);
        break;
    case STEP:
        APPLY_COMMON(s, c);
        rc = bench_step(&s);
        break;
    default:
        APPLY_COMMON(g, c);
        rc = bench_gemm_i8(&g);
        break;
    }
    return rc == 0 ? CLI_EXIT_OK : CLI_EXIT_FAIL;
}
