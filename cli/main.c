/* cli/main.c — the `lowbit` program: dispatch to subcommands. */
#include "config.h"

#ifdef HAVE_MALLOPT
#include <malloc.h>
#endif
#include "cli.h"

#include <stdio.h>
#include <string.h>

static const cli_command commands[] = {
    {"train", "train a model (vit|gpt|bert) with a recipe (fp32|int8|hq|luq)",
     "usage: lowbit train --model vit|gpt|bert [--data fashion-mnist|text[:SPEC]]\n"
     "             [--recipe fp32|int8|hq|luq] [recipe options: see doc/recipes.md]\n"
     "             [--attention softmax|clipped|gated] [--clip-alpha A | --clip-gamma G]\n"
     "             [--clip-zeta Z] [--gate-init P]\n"
     "             [--layers L] [--d-model C] [--heads H] [--d-ff F] [--seq-len T]\n"
     "             [--patch P] [--pool cls|mean] [--embed-ln] [--untied]\n"
     "             [--backend cpu|ref] [--threads N] [--steps N | --epochs E] [--batch B]\n"
     "             [--lr LR] [--min-lr LR] [--warmup N] [--weight-decay WD] [--grad-clip G]\n"
     "             [--seed S] [--eval-every N] [--eval-limit N] [--train-limit N]\n"
     "             [--mlm-prob P] [--val-fraction F] [--out DIR] [--save-every N]\n"
     "             [--resume DIR|FILE] [--quiet]\n", cmd_train},
    {"eval", "evaluate a checkpoint on a dataset",
     "usage: lowbit eval --checkpoint FILE [--data fashion-mnist|text[:SPEC]] [--limit N] [--batch N]\n"
     "            [--backend cpu|ref] [--threads N] [--float]\n"
     "  A checkpoint trained with a quantized recipe runs that recipe's forward (with its\n"
     "  learned state) unless --float; a quantized model file runs its integer path.\n", cmd_eval},
    {"generate", "sample text from a gpt checkpoint",
     "usage: lowbit generate --checkpoint FILE [--prompt TEXT] [--tokens N] [--temperature T]\n"
     "                [--top-k K] [--seed S] [--backend cpu|ref]\n", cmd_generate},
    {"export", "export checkpoint weights with PyTorch names",
     "usage: lowbit export --checkpoint FILE --out FILE.safetensors\n", cmd_export},
    {"op", "apply one quantization algorithm to .npy inputs (audit / GPU cross-check)",
     "usage: lowbit op NAME --in FILE.npy ... --out FILE.npy [--seed S] [--set key=value]\n"
     "       lowbit op --list\n"
     "  --in FILE.npy    an input, in the order the operation lists them (repeatable)\n"
     "  --out FILE.npy   an output, in the order the operation lists them (repeatable)\n"
     "  --seed S         seed of the counter-based RNG (stochastic operations)\n"
     "  --set KEY=VALUE  an operation parameter (repeatable; see --list)\n"
     "  --list           print every operation with its inputs, outputs and parameters\n",
     cmd_op},
    {"compare", "compare two .npy files element-wise within a tolerance",
     "usage: lowbit compare A.npy B.npy [--atol X] [--rtol Y]\n"
     "  element i matches when |a-b| <= atol + rtol*|b|; exit 1 on any mismatch or shape difference\n",
     cmd_compare},
    {"check", "run backend-vs-reference checks",
     "usage: lowbit check --backend cpu [--threads N] [--isa LIST] [--op NAME] [--verbose]\n", cmd_check},
    {"bench", "benchmark kernels, layers and training steps against peers",
     "usage: lowbit bench [gemm-i8|linear|step|quant] [options]   (lowbit bench --help)\n",
     cmd_bench},
    {"data", "load and summarise a dataset",
     "usage: lowbit data fashion-mnist [--dir DIR]\n"
     "       lowbit data text [--corpus default|moby-dick|PATH[,PATH...]] [--val-fraction F]\n",
     cmd_data},
    {"import", "import a pretrained model (all-MiniLM-L6-v2) into a lowbit checkpoint", cmd_import_usage,
     cmd_import},
    {"embed", "sentence embeddings of input lines with a bert checkpoint", cmd_embed_usage, cmd_embed},
    {"stats", "outlier statistics per layer: infinity norm, kurtosis, attention no-op behaviour",
     cmd_stats_usage, cmd_stats},
    {"ptq", "post-training quantization: w8a8, rtn, gptq, powerquant, nupes", cmd_ptq_usage, cmd_ptq},
    {"tokenize", "print the WordPiece ids of each input line (BERT uncased, all-MiniLM-L6-v2)",
     cmd_tokenize_usage, cmd_tokenize},
};

const cli_command *cli_find_command(const char *name)
{
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (strcmp(commands[i].name, name) == 0) return &commands[i];
    return NULL;
}

static void print_usage(FILE *f)
{
    fprintf(f, "usage: lowbit [--version] [--help] COMMAND [ARGS]\n\ncommands:\n");
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        fprintf(f, "  %-8s %s\n", commands[i].name, commands[i].summary);
    fprintf(f, "\n`lowbit COMMAND --help` describes each command's options.\n");
}

/* The library allocates its large work buffers per call (tens of MB for a
 * layer of a training step). glibc would return such blocks to the kernel on
 * free and fault fresh zeroed pages in on the next call; keeping freed memory
 * in the process (no trimming, no mmap for large blocks) turns those page
 * faults into reuse. A program's allocation policy, so it is set here and not
 * in the library. */
static void keep_freed_memory(void)
{
#ifdef HAVE_MALLOPT
    mallopt(M_MMAP_THRESHOLD, 32 << 20); /* glibc's largest: 32 MiB */
    mallopt(M_TRIM_THRESHOLD, -1);
#endif
}

int main(int argc, char **argv)
{
    keep_freed_memory();
    if (argc < 2) {
        print_usage(stderr);
        return CLI_EXIT_USAGE;
    }
    if (cli_is_help(argv[1])) {
        print_usage(stdout);
        return CLI_EXIT_OK;
    }
    if (strcmp(argv[1], "--version") == 0) {
        printf("lowbit %s (features: %s)\n", lb_version(), lb_build_features());
        return CLI_EXIT_OK;
    }
    const cli_command *cmd = cli_find_command(argv[1]);
    if (!cmd) {
        fprintf(stderr, "lowbit: unknown command '%s'\n", argv[1]);
        print_usage(stderr);
        return CLI_EXIT_USAGE;
    }
    return cmd->run(argc - 1, argv + 1);
}
