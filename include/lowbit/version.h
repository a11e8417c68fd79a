/* lowbit/version.h — library version and build features. */
#ifndef LOWBIT_VERSION_H
#define LOWBIT_VERSION_H

#ifdef __cplusplus
extern "C" {
#endif

/* The package version, e.g. "0.1.0". */
const char *lb_version(void);

/* One line naming the optional features this build has, e.g.
 * "openmp openblas onednn cuda avx2 avx512 avx512vnni". */
const char *lb_build_features(void);

#ifdef __cplusplus
}
#endif
#endif
