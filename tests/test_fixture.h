/* tests/test_fixture.h — loading committed .npy fixtures in cmocka tests.
 * Include after <cmocka.h>. */
#ifndef LOWBIT_TESTS_TEST_FIXTURE_H
#define LOWBIT_TESTS_TEST_FIXTURE_H

#include "lowbit/npy.h"
#include "test_util.h"

/* Loads $LB_TEST_DATA/<group>/<name>.npy; fails the test (naming the file)
 * when it cannot be read or, if numel != 0, has another element count. */
static inline lb_tensor *lb_test_fixture(const char *group, const char *name, size_t numel)
{
    char path[1024], file[512];
    snprintf(file, sizeof file, "%s/%s.npy", group, name);
    lb_test_path(path, sizeof path, lb_test_data_dir(), file);
    lb_tensor *t = NULL;
    lb_status st = lb_npy_read(NULL, path, &t);
    if (st != LB_OK) fail_msg("cannot read fixture %s: %s", path, lb_status_str(st));
    if (numel && t->numel != numel)
        fail_msg("fixture %s has %zu elements, want %zu", path, t->numel, numel);
    return t;
}

#endif
