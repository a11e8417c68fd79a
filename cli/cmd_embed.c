/* cli/cmd_embed.c — `lowbit embed`: sentence embeddings of each line of
 * standard input with an imported (or quantized) BERT encoder.
 *
 *   lowbit embed --checkpoint FILE [--max-len N] [--batch N] [--out FILE.npy]
 *                [--reference REF.npy] [--json FILE] [--data SPEC] [--limit N]
 *                [--no-normalize] [--backend cpu|ref] [--threads N] [< lines]
 *
 * Writes a float32 (lines, d_model) .npy to --out (or to standard output).
 * The texts are the lines of standard input, or with --data the lines of a
 * corpus's validation split ("sentences[:SPEC]", lowbit/ptq.h) or of a file
 * ("lines:FILE"). --reference compares with another embedding file of the
 * same shape and prints the cosine similarity of each row pair: mean, min
 * and max (and appends them to --json FILE as one JSON line).
 */
#include "config.h"
#include "cli.h"
#include "lowbit/alloc.h"
#include "lowbit/minilm.h"
#include "lowbit/npy.h"
#include "lowbit/ptq.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int cmd_embed(int argc, char **argv);

const char cmd_embed_usage[] =
    "usage: lowbit embed --checkpoint FILE [--max-len N] [--batch N] [--out FILE.npy]\n"
    "                    [--reference REF.npy] [--json FILE] [--data SPEC] [--limit N]\n"
    "                    [--no-normalize] [--backend cpu|ref] [--threads N] [< lines]\n"
    "Sentence embeddings (mean of the last hidden states over the tokens, L2-normalised,\n"
    "as sentence-transformers) of each line of standard input, one row per line.\n"
    "  --checkpoint FILE  a model from `lowbit import` (or `lowbit ptq` of one)\n"
    "  --max-len N        tokens per text, [CLS] and [SEP] included (default: the\n"
    "                     model's embed.max_len, 256 for all-MiniLM-L6-v2)\n"
    "  --batch N          texts per forward pass (default 32)\n"
    "  --out FILE.npy     float32 (lines, d_model); default: the .npy on standard output\n"
    "  --reference R.npy  print the cosine similarity to R row by row (mean, min, max)\n"
    "  --json FILE        append the cosine statistics as one JSON line\n"
    "  --data SPEC        embed the lines of sentences[:SPEC] (a corpus's validation\n"
    "                     split, default Austen) or lines:FILE instead of standard input\n"
    "  --limit N          at most N texts of --data (default all)\n"
    "  --no-normalize     the plain mean, without L2 normalisation\n"
    "  --backend B        cpu (default) or ref\n"
    "  --threads N        OpenMP threads\n";

static const cli_command embed_command = {"embed", "sentence embeddings of input lines",
                                          cmd_embed_usage, cmd_embed};

/* Reads all lines of f (line ends removed) into *lines / *lens. */
static int read_lines(FILE *f, char ***lines, size_t **lens, size_t *n)
{
    size_t cap = 1024, count = 0;
    char **l = malloc(cap * sizeof *l);
    size_t *ln = malloc(cap * sizeof *ln);
    char *buf = NULL;
    size_t bcap = 0;
    ssize_t got;
    if (!l || !ln) goto nomem;
    while ((got = getline(&buf, &bcap, f)) >= 0) {
        size_t len = (size_t)got;
        if (len && buf[len - 1] == '\n') len--;
        if (count == cap) {
            cap *= 2;
            char **nl = realloc(l, cap * sizeof *l);
            if (!nl) goto nomem;
            l = nl;
            size_t *nn = realloc(ln, cap * sizeof *ln);
            if (!nn) goto nomem;
            ln = nn;
        }
        l[count] = malloc(len + 1);
        if (!l[count]) goto nomem;
        memcpy(l[count], buf, len);
        l[count][len] = 0;
        ln[count++] = len;
    }
    free(buf);
    *lines = l;
    *lens = ln;
    *n = count;
    return 1;
nomem:
    free(buf);
    if (l)
        for (size_t i = 0; i < count; i++) free(l[i]);
    free(l);
    free(ln);
    return 0;
}

/* Writes the .npy to standard output through a temporary file. */
static lb_status write_stdout(lb_ctx *ctx, const lb_tensor *t)
{
    const char *dir = getenv("TMPDIR");
    char path[4096];
    snprintf(path, sizeof path, "%s/lowbit-embed-%ld.npy", dir && *dir ? dir : "/tmp",
             (long)getpid());
    lb_status st = lb_npy_write(ctx, path, t);
    if (st != LB_OK) return st;
    FILE *f = fopen(path, "rb");
    if (!f) return lb_error(ctx, LB_ERR_IO, "%s: cannot reopen", path);
    char b[1 << 16];
    size_t n;
    int ok = 1;
    while ((n = fread(b, 1, sizeof b, f)) > 0) ok &= fwrite(b, 1, n, stdout) == n;
    fclose(f);
    remove(path);
    if (fflush(stdout) != 0 || !ok) return lb_error(ctx, LB_ERR_IO, "standard output: write error");
    return LB_OK;
}

int cmd_embed(int argc, char **argv)
{
    const cli_command *cmd = &embed_command;
    const char *checkpoint = NULL, *out = NULL, *reference = NULL, *backend_name = "cpu";
    const char *json = NULL, *data = NULL;
    int64_t max_len = 0, batch = 32, threads = 0, limit = 0;
    int normalize = 1;
    for (int i = 1; i < argc; i++) {
        const char *o = argv[i], *v;
        if (cli_is_help(o)) {
            fputs(cmd->usage, stdout);
            return CLI_EXIT_OK;
        } else if (strcmp(o, "--checkpoint") == 0) {
            if (!(checkpoint = cli_option_value(cmd, argc, argv, &i))) return CLI_EXIT_USAGE;
        } else if (strcmp(o, "--out") == 0) {
            if (!(out = cli_option_value(cmd, argc, argv, &i))) return CLI_EXIT_USAGE;
        } else if (strcmp(o, "--reference") == 0) {
            if (!(reference = cli_option_value(cmd, argc, argv, &i))) return CLI_EXIT_USAGE;
        } else if (strcmp(o, "--json") == 0) {
            if (!(json = cli_option_value(cmd, argc, argv, &i))) return CLI_EXIT_USAGE;
        } else if (strcmp(o, "--data") == 0) {
            if (!(data = cli_option_value(cmd, argc, argv, &i))) return CLI_EXIT_USAGE;
        } else if (strcmp(o, "--limit") == 0) {
            if (!(v = cli_option_value(cmd, argc, argv, &i))) return CLI_EXIT_USAGE;
            if (!cli_parse_i64(v, 0, INT64_MAX, &limit))
                return cli_usage_error(cmd, "--limit: bad value '%s'", v);
        } else if (strcmp(o, "--backend") == 0) {
            if (!(backend_name = cli_option_value(cmd, argc, argv, &i))) return CLI_EXIT_USAGE;
        } else if (strcmp(o, "--no-normalize") == 0) {
            normalize = 0;
        } else if (strcmp(o, "--max-len") == 0 || strcmp(o, "--batch") == 0 ||
                   strcmp(o, "--threads") == 0) {
            if (!(v = cli_option_value(cmd, argc, argv, &i))) return CLI_EXIT_USAGE;
            int64_t *dst = o[2] == 'm' ? &max_len : o[2] == 'b' ? &batch : &threads;
            if (!cli_parse_i64(v, o[2] == 'm' ? 2 : 1, 1 << 20, dst))
                return cli_usage_error(cmd, "%s: bad value '%s'", o, v);
        } else {
            return cli_usage_error(cmd, "unknown option '%s'", o);
        }
    }
    if (!checkpoint) return cli_usage_error(cmd, "--checkpoint is required");
    if (!out && isatty(STDOUT_FILENO))
        return cli_usage_error(cmd, "give --out FILE.npy (standard output is a terminal)");
    lb_ctx *ctx;
    if (!cli_ctx_create(&ctx)) return CLI_EXIT_FAIL;
    int rc = CLI_EXIT_OK;
    lb_ptq_model *qm = NULL;
    lb_tokenizer *tok = NULL;
    lb_tensor *emb = NULL, *ref = NULL;
    char **lines = NULL;
    size_t *lens = NULL, n = 0;
    const lb_backend *be = NULL;
    lb_status st = lb_backend_find(ctx, backend_name, &be);
    if (st == LB_OK && threads > 0) st = lb_ctx_set_threads(ctx, (int)threads);
    if (st != LB_OK) {
        rc = cli_report(ctx, st, "embed");
        goto done;
    }
    if (!max_len) max_len = lb_checkpoint_embed_max_len(checkpoint, 256);
    if ((st = lb_checkpoint_load_tokenizer(ctx, checkpoint, &tok)) != LB_OK) {
        rc = cli_report(ctx, st, checkpoint);
        goto done;
    }
    const lb_model_options opts = {batch, max_len, 1};
    if ((st = lb_ptq_model_load(ctx, checkpoint, be, &opts, &qm)) != LB_OK) {
        rc = cli_report(ctx, st, checkpoint);
        goto done;
    }
    lb_model *model = lb_ptq_model_get(qm);
    if (data) {
        // the lines of a corpus split or a file, copied so that they outlive the data
        lb_ptq_data *d = NULL;
        st = lb_ptq_data_open(ctx, data, lb_model_get_config(model), tok, (size_t)max_len,
                              LB_PTQ_EVAL, 0, &d);
        if (st == LB_OK) {
            n = (size_t)lb_ptq_data_size(d);
            if (limit > 0 && (size_t)limit < n) n = (size_t)limit;
            const char **t = malloc((n ? n : 1) * sizeof *t);
            lines = calloc(n ? n : 1, sizeof *lines);
            lens = malloc((n ? n : 1) * sizeof *lens);
            if (!t || !lines || !lens) st = lb_error(ctx, LB_ERR_NOMEM, "embed: out of memory");
            if (st == LB_OK) st = lb_ptq_data_lines(d, n, t, lens);
            for (size_t i = 0; st == LB_OK && i < n; i++) {
                lines[i] = malloc(lens[i] + 1);
                if (!lines[i]) {
                    st = lb_error(ctx, LB_ERR_NOMEM, "embed: out of memory");
                    break;
                }
                memcpy(lines[i], t[i], lens[i]);
                lines[i][lens[i]] = 0;
            }
            free(t);
        }
        lb_ptq_data_free(d);
        if (st != LB_OK) {
            rc = cli_report(ctx, st, data);
            goto done;
        }
    } else if (!read_lines(stdin, &lines, &lens, &n)) {
        fprintf(stderr, "lowbit embed: out of memory reading the input\n");
        rc = CLI_EXIT_FAIL;
        goto done;
    }
    const int64_t C = lb_model_get_config(model)->d_model;
    const int64_t shape[2] = {(int64_t)n, C};
    if ((st = lb_tensor_create(ctx, LB_F32, 2, shape, &emb)) == LB_OK)
        st = lb_sentence_embed(ctx, model, tok, n, (const char *const *)lines, lens,
                               (size_t)max_len, normalize, lb_tensor_f32(emb));
    if (st == LB_OK) st = out ? lb_npy_write(ctx, out, emb) : write_stdout(ctx, emb);
    if (st != LB_OK) {
        rc = cli_report(ctx, st, out ? out : "embed");
        goto done;
    }
    if (reference) {
        if ((st = lb_npy_read(ctx, reference, &ref)) != LB_OK) {
            rc = cli_report(ctx, st, reference);
            goto done;
        }
        if (ref->dtype != LB_F32 || ref->ndim != 2 || ref->shape[0] != (int64_t)n ||
            ref->shape[1] != C) {
            fprintf(stderr, "lowbit embed: %s is not a float32 (%zu, %lld) array\n", reference,
                    n, (long long)C);
            rc = CLI_EXIT_FAIL;
            goto done;
        }
        const float *a = lb_tensor_f32(emb), *b = lb_tensor_f32(ref);
        double sum = 0, lo = INFINITY, hi = -INFINITY;
        for (size_t i = 0; i < n; i++) {
            double ab = 0, aa = 0, bb = 0;
            for (int64_t k = 0; k < C; k++) {
                ab += (double)a[i * C + k] * b[i * C + k];
                aa += (double)a[i * C + k] * a[i * C + k];
                bb += (double)b[i * C + k] * b[i * C + k];
            }
            const double cs = ab / fmax(sqrt(aa) * sqrt(bb), 1e-300);
            sum += cs;
            lo = fmin(lo, cs);
            hi = fmax(hi, cs);
        }
        fprintf(out ? stdout : stderr,
                "cosine to %s over %zu rows: mean %.6f min %.6f max %.6f\n", reference, n,
                n ? sum / (double)n : 0.0, lo, hi);
        if (json) {
            FILE *f = fopen(json, "a");
            if (!f) {
                fprintf(stderr, "lowbit embed: cannot append to %s\n", json);
                rc = CLI_EXIT_FAIL;
                goto done;
            }
            fprintf(f, "{\"checkpoint\":\"%s\",\"reference\":\"%s\",\"rows\":%zu,"
                       "\"cos_mean\":%.9g,\"cos_min\":%.9g,\"cos_max\":%.9g}\n",
                    checkpoint, reference, n, n ? sum / (double)n : 0.0, lo, hi);
            fclose(f);
        }
    }
done:
    if (lines)
        for (size_t i = 0; i < n; i++) free(lines[i]);
    free(lines);
    free(lens);
    lb_tensor_free(emb);
    lb_tensor_free(ref);
    lb_tokenizer_free(tok);
    lb_ptq_model_free(qm);
    lb_ctx_free(ctx);
    return rc;
}
