/* cli/cmd_data.c — `lowbit data`: load a dataset and print a summary.
 *
 *   lowbit data fashion-mnist [--dir DIR]
 *   lowbit data text --corpus default|moby-dick|PATH[,PATH...] [--val-fraction F]
 *
 * Loading goes through the same library calls training uses, so a dataset
 * that `lowbit data` summarises is one `lowbit train` can read.
 */
#include "config.h"
#include "cli.h"
#include "lowbit/datasets.h"

#include <stdio.h>
#include <string.h>

static int data_fashion_mnist(const cli_command *cmd, int argc, char **argv)
{
    const char *dir = NULL;
    for (int i = 2; i < argc; i++) {
        if (strcmp(argv[i], "--dir") == 0) {
            if (!(dir = cli_option_value(cmd, argc, argv, &i))) return CLI_EXIT_USAGE;
        } else {
            return cli_usage_error(cmd, "unknown option '%s' for fashion-mnist", argv[i]);
        }
    }
    lb_ctx *ctx;
    if (!cli_ctx_create(&ctx)) return CLI_EXIT_FAIL;
    lb_image_set *sets[2] = {NULL, NULL};
    static const char *const split_names[2] = {"train", "test"};
    const lb_data_split splits[2] = {LB_SPLIT_TRAIN, LB_SPLIT_TEST};
    int rc = CLI_EXIT_OK;
    for (int s = 0; s < 2; s++) {
        lb_status st = lb_fashion_mnist_load(ctx, dir, splits[s], &sets[s]);
        if (st != LB_OK) {
            rc = cli_report(ctx, st, "fashion-mnist");
            goto done;
        }
    }
    int64_t counts[2][LB_FASHION_MNIST_CLASSES];
    double mean[2], std[2];
    for (int s = 0; s < 2; s++) lb_image_set_stats(sets[s], counts[s], &mean[s], &std[s]);

    printf("Fashion-MNIST in %s\n", lb_fashion_mnist_dir(dir));
    printf("  %-6s %8s  %-6s %11s %10s\n", "split", "images", "size", "pixel mean", "pixel std");
    for (int s = 0; s < 2; s++)
        printf("  %-6s %8lld  %lldx%-3lld %11.4f %10.4f\n", split_names[s],
               (long long)sets[s]->count, (long long)sets[s]->rows, (long long)sets[s]->cols,
               mean[s], std[s]);
    printf("  (pixel statistics on the [0, 1] scale, pixel / 255)\n");
    printf("%d classes:\n", LB_FASHION_MNIST_CLASSES);
    printf("  %-2s %-12s %8s %8s\n", "", "name", "train", "test");
    for (int c = 0; c < LB_FASHION_MNIST_CLASSES; c++)
        printf("  %-2d %-12s %8lld %8lld\n", c, lb_fashion_mnist_class_name(c),
               (long long)counts[0][c], (long long)counts[1][c]);
done:
    lb_image_set_free(sets[0]);
    lb_image_set_free(sets[1]);
    lb_ctx_free(ctx);
    return rc;
}

/* Prints the first non-blank lines of text (at most max_lines lines of at
 * most 100 bytes each), each prefixed by "  | "; runs of blank lines are
 * shown as one blank line. */
static void print_excerpt(const uint8_t *text, size_t len, int max_lines)
{
    size_t i = 0;
    int printed = 0;
    bool blank_pending = false;
    while (i < len && printed < max_lines) {
        size_t j = i;
        while (j < len && text[j] != '\n') j++;
        if (j == i) {
            blank_pending = printed > 0;
        } else {
            if (blank_pending && printed + 1 < max_lines) {
                printf("  |\n");
                printed++;
            }
            blank_pending = false;
            printf("  | ");
            size_t stop = j - i > 100 ? i + 100 : j;
            for (size_t k = i; k < stop; k++) {
                unsigned char ch = text[k];
                /* raw bytes, except control characters, which are escaped */
                if (ch < 0x20 || ch == 0x7f) printf("\\x%02x", ch);
                else putchar(ch);
            }
            printf("%s\n", stop < j ? " ..." : "");
            printed++;
        }
        i = j + 1;
    }
}

static int data_text(const cli_command *cmd, int argc, char **argv)
{
    const char *spec = NULL;
    double val_fraction = -1.0;
    for (int i = 2; i < argc; i++) {
        if (strcmp(argv[i], "--corpus") == 0) {
            if (!(spec = cli_option_value(cmd, argc, argv, &i))) return CLI_EXIT_USAGE;
            if (!*spec) return cli_usage_error(cmd, "--corpus needs a non-empty value");
        } else if (strcmp(argv[i], "--val-fraction") == 0) {
            const char *v = cli_option_value(cmd, argc, argv, &i);
            if (!v) return CLI_EXIT_USAGE;
            if (!cli_parse_double(v, &val_fraction) || val_fraction < 0.0 || val_fraction >= 1.0)
                return cli_usage_error(cmd, "--val-fraction '%s' is not a number in [0, 1)", v);
        } else {
            return cli_usage_error(cmd, "unknown option '%s' for text", argv[i]);
        }
    }
    if (!spec) spec = "default";
    lb_ctx *ctx;
    if (!cli_ctx_create(&ctx)) return CLI_EXIT_FAIL;
    lb_text_corpus *corpus = NULL;
    lb_status st = lb_text_corpus_load(ctx, spec, val_fraction, &corpus);
    if (st != LB_OK) {
        int rc = cli_report(ctx, st, "text corpus");
        lb_ctx_free(ctx);
        return rc;
    }
    const bool is_default = strcmp(spec, "default") == 0 || strcmp(spec, "austen") == 0;
    const bool is_named = is_default || strcmp(spec, "moby-dick") == 0;
    char source[4096];
    if (!is_named || lb_text_corpus_locate(ctx, is_default ? "default" : "moby-dick", source,
                                           sizeof source) != LB_OK)
        snprintf(source, sizeof source, "%s", spec);

    uint64_t train_counts[LB_TEXT_VOCAB], val_counts[LB_TEXT_VOCAB];
    lb_byte_histogram(corpus->train, corpus->train_len, train_counts);
    lb_byte_histogram(corpus->val, corpus->val_len, val_counts);
    int distinct = 0, distinct_train = 0, distinct_val = 0;
    for (int v = 0; v < LB_TEXT_VOCAB; v++) {
        distinct += train_counts[v] + val_counts[v] > 0;
        distinct_train += train_counts[v] > 0;
        distinct_val += val_counts[v] > 0;
    }
    const size_t total = corpus->train_len + corpus->val_len;
    const double val_share = total ? (double)corpus->val_len / (double)total : 0.0;

    printf("text corpus: %s\n", is_default ? "default (Jane Austen's six novels)"
                                : is_named ? "moby-dick (Herman Melville, Project Gutenberg #2701)"
                                           : "files");
    printf("  source           %s\n", source);
    if (is_default && val_fraction < 0)
        printf("  split            validation = Persuasion (held-out novel); training = the "
               "other five\n");
    else
        printf("  split            validation = last %.4g of each %s\n",
               val_fraction < 0 ? LB_TEXT_DEFAULT_VAL_FRACTION : val_fraction,
               is_default ? "novel" : "file");
    printf("  parts            %zu\n", corpus->num_parts);
    printf("  size             %zu bytes (cleaned)\n", total);
    printf("  train            %zu bytes\n", corpus->train_len);
    printf("  validation       %zu bytes (%.1f%%)\n", corpus->val_len, 100.0 * val_share);
    printf("  distinct bytes   %d (train %d, validation %d) of vocabulary %d\n", distinct,
           distinct_train, distinct_val, LB_TEXT_VOCAB);
    printf("  unigram entropy  %.4f bits/byte (training split; the unigram baseline)\n",
           lb_unigram_entropy_bits(train_counts));
    printf("excerpt (start of the training split):\n");
    print_excerpt(corpus->train, corpus->train_len, 12);
    lb_text_corpus_free(corpus);
    lb_ctx_free(ctx);
    return CLI_EXIT_OK;
}

int cmd_data(int argc, char **argv)
{
    const cli_command *cmd = cli_find_command("data");
    for (int i = 1; i < argc; i++) {
        if (cli_is_help(argv[i])) {
            printf("%s", cmd->usage);
            return CLI_EXIT_OK;
        }
    }
    if (argc < 2) return cli_usage_error(cmd, "which dataset? (fashion-mnist or text)");
    if (strcmp(argv[1], "fashion-mnist") == 0) return data_fashion_mnist(cmd, argc, argv);
    if (strcmp(argv[1], "text") == 0) return data_text(cmd, argc, argv);
    return cli_usage_error(cmd, "unknown dataset '%s' (fashion-mnist or text)", argv[1]);
}
