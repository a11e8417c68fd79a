/* tests/test_util.h — helpers shared by the cmocka test programs.
 *
 * Every test program includes this after <cmocka.h>'s prerequisites. Paths:
 *   LB_TEST_DATA  fixtures in the source tree (read only),
 *   LB_TEST_TMP   scratch directory in the build tree (created on demand),
 *   LB_TEST_BIN   the built `lowbit` program (for CLI tests).
 * The automake harness reads the exit status: 0 pass, 77 skip, else fail.
 */
#ifndef LOWBIT_TESTS_TEST_UTIL_H
#define LOWBIT_TESTS_TEST_UTIL_H

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>

#define LB_TEST_SKIP 77

/* cmocka_run_group_tests returns the number of failures; 77 would read as a
 * skip and 256 as a pass, so normalise to 0/1. */
#define LB_RUN_TESTS(tests) (cmocka_run_group_tests(tests, NULL, NULL) ? 1 : 0)

/* Directory with committed fixtures. */
static inline const char *lb_test_data_dir(void)
{
    const char *d = getenv("LB_TEST_DATA");
    return d && *d ? d : "tests/data";
}

/* Scratch directory (created if missing); tests never write into srcdir. */
static inline const char *lb_test_tmp_dir(void)
{
    const char *d = getenv("LB_TEST_TMP");
    if (!d || !*d) d = "tests/tmp";
    if (mkdir(d, 0755) != 0 && errno != EEXIST) return ".";
    return d;
}

/* snprintf(buf, n, "%s/%s", dir, name) */
static inline const char *lb_test_path(char *buf, size_t n, const char *dir, const char *name)
{
    snprintf(buf, n, "%s/%s", dir, name);
    return buf;
}

/* Writes `len` bytes to path; returns 0 on success. */
static inline int lb_test_write_file(const char *path, const void *bytes, size_t len)
{
    FILE *f = fopen(path, "wb");
    if (!f) return -1;
    size_t w = fwrite(bytes, 1, len, f);
    return (fclose(f) == 0 && w == len) ? 0 : -1;
}

#endif
