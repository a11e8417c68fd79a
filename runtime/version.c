/* runtime/version.c — version string and compiled-in features. */
#include "config.h"
#include "lowbit/version.h"

const char *lb_version(void) { return PACKAGE_VERSION; }

const char *lb_build_features(void)
{
    return ""
#ifdef _OPENMP
           "openmp "
#endif
#ifdef HAVE_OPENBLAS
           "openblas "
#endif
#ifdef HAVE_ONEDNN
           "onednn "
#endif
#ifdef HAVE_CUDA
           "cuda "
#endif
#ifdef HAVE_CJSON
           "cjson "
#endif
#ifdef HAVE_AVX2_BUILD
           "avx2 "
#endif
#ifdef HAVE_AVX512_BUILD
           "avx512 "
#endif
#ifdef HAVE_AVX512VNNI_BUILD
           "avx512vnni"
#endif
        ;
}
