/* tests/cli_runner.h — run the built `lowbit` program from a test and capture
 * its exit status and combined stdout+stderr. */
#ifndef LOWBIT_TESTS_CLI_RUNNER_H
#define LOWBIT_TESTS_CLI_RUNNER_H

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "test_util.h"

/* Path of the program under test ($LB_TEST_BIN, else ./lowbit). */
static inline const char *lb_test_bin(void)
{
    const char *b = getenv("LB_TEST_BIN");
    return b && *b ? b : "./lowbit";
}

/* Runs `lowbit args...` (args NULL-terminated, excluding argv[0]); returns the
 * exit status (-1 if it did not exit normally) and fills out[0..n) with the
 * first bytes of its output. */
static inline int lb_run_cli(char *out, size_t n, const char *const *args)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/cli_out_%d.txt", lb_test_tmp_dir(), (int)getpid());
    const char *argv[64];
    int argc = 0;
    argv[argc++] = lb_test_bin();
    for (int i = 0; args[i] && argc < 63; i++) argv[argc++] = args[i];
    argv[argc] = NULL;
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (fd < 0) _exit(127);
        dup2(fd, 1);
        dup2(fd, 2);
        execv(argv[0], (char *const *)argv);
        _exit(127);
    }
    int status = 0;
    if (pid < 0 || waitpid(pid, &status, 0) < 0) return -1;
    if (out && n) {
        out[0] = '\0';
        FILE *f = fopen(path, "rb");
        if (f) {
            size_t r = fread(out, 1, n - 1, f);
            out[r] = '\0';
            fclose(f);
        }
    }
    remove(path);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

#define LB_CLI(out, ...) lb_run_cli(out, sizeof(out), (const char *const[]){__VA_ARGS__, NULL})

#endif
