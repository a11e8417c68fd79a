/* models/ptq_model.c — loading models for post-training work: checkpoints
 * into models created with options (lowbit/ptq.h). */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lowbit/alloc.h"
#include "lowbit/ptq.h"
#include "lowbit/safetensors.h"
#include "ptq_internal.h"
#include "train_internal.h"

/* The training recipe recorded in checkpoint `st` with its saved state
 * (*out = NULL for fp32). */
static lb_status load_recipe(lb_ctx *ctx, const lb_safetensors *st, const char *path,
                             const lb_train_config *cfg, lb_recipe **out)
{
    *out = NULL;
    if (strcmp(cfg->recipe, "fp32") == 0) return LB_OK;
    const lb_recipe_run run = {cfg->seed, cfg->steps, cfg->warmup_steps};
    lb_recipe *r = NULL;
    lb_status s = lb_recipe_create_ex(ctx, cfg->recipe, &cfg->recipe_opt, &run, &r);
    lb_tensor *state = NULL;
    if (s == LB_OK) s = lb_safetensors_get(ctx, st, "recipe.state", &state);
    if (s == LB_ERR_NOT_FOUND)
        s = lb_error(ctx, LB_ERR_FORMAT, "checkpoint %s has no recipe.state for recipe %s", path,
                     cfg->recipe);
    if (s == LB_OK) s = lb_recipe_set_state(r, ctx, state);
    lb_tensor_free(state);
    if (s != LB_OK) {
        lb_recipe_free(r);
        return s;
    }
    *out = r;
    return LB_OK;
}

/* lb_checkpoint_load_model_ex, with the training recipe when `recipe` is
 * non-NULL (the model uses it; the caller frees it after the model). */
static lb_status load_checkpoint(lb_ctx *ctx, const char *path, const lb_backend *backend,
                                 const lb_model_options *opts, lb_model **model,
                                 lb_recipe **recipe, lb_checkpoint_info *info)
{
    if (!path || !backend || !opts || !model)
        return lb_error(ctx, LB_ERR_ARG, "load: NULL argument");
    *model = NULL;
    lb_safetensors *st = NULL;
    lb_status s = lb_safetensors_read(ctx, path, &st);
    if (s != LB_OK) return s;
    lb_train_config cfg;
    s = lb_checkpoint_read_config(ctx, st, path, NULL, &cfg);
    lb_model *m = NULL;
    lb_recipe *r = NULL;
    lb_model_options o = *opts;
    if (o.max_batch <= 0) o.max_batch = cfg.batch_size;
    if (s == LB_OK && recipe) s = load_recipe(ctx, st, path, &cfg, &r);
    if (s == LB_OK) s = lb_model_create_ex(ctx, &cfg.model, backend, r, &o, &m);
    for (size_t k = 0; s == LB_OK && k < lb_model_num_tensors(m); k++) {
        const lb_param_info *p = lb_model_tensor(m, k);
        char name[96];
        snprintf(name, sizeof name, "model.%s", p->name);
        s = lb_safetensors_get_into(ctx, st, name, LB_F32, p->ndim, p->shape,
                                    lb_model_params(m) + p->offset);
        if (s == LB_ERR_NOT_FOUND)
            s = lb_error(ctx, LB_ERR_FORMAT, "checkpoint %s: tensor '%s' is missing", path, name);
        else if (s == LB_ERR_ARG || s == LB_ERR_UNSUPPORTED) {
            char detail[400];
            snprintf(detail, sizeof detail, "%s", lb_ctx_error(ctx));
            s = lb_error(ctx, LB_ERR_FORMAT, "checkpoint %s: %s", path, detail);
        }
    }
    if (s == LB_OK && info) {
        memset(info, 0, sizeof *info);
        info->train = cfg;
        const char *step = lb_safetensors_metadata(st, "state.step");
        info->step = step ? strtoll(step, NULL, 10) : 0;
        char name[96];
        snprintf(name, sizeof name, "optim.m.%s", lb_model_tensor(m, 0)->name);
        info->has_optimizer = lb_safetensors_info(NULL, st, name, NULL, NULL, NULL) == LB_OK;
    }
    lb_safetensors_free(st);
    if (s != LB_OK) {
        lb_model_free(m);
        lb_recipe_free(r);
        return s;
    }
    *model = m;
    if (recipe) *recipe = r;
    return LB_OK;
}

lb_status lb_checkpoint_load_model_ex(lb_ctx *ctx, const char *path, const lb_backend *backend,
                                      const lb_model_options *opts, lb_model **model,
                                      lb_checkpoint_info *info)
{
    return load_checkpoint(ctx, path, backend, opts, model, NULL, info);
}

/* ------------------------------------------------------------- lb_ptq_model */

/* A checkpoint as an lb_ptq_model: float layers, or its training recipe. */
static lb_status load_float(lb_ctx *ctx, const char *path, const lb_backend *backend,
                            const lb_model_options *opts, int with_recipe, lb_ptq_model **out)
{
    lb_ptq_model *qm = lb_calloc(1, sizeof *qm);
    if (!qm) return lb_error(ctx, LB_ERR_NOMEM, "load: out of memory");
    lb_status s = load_checkpoint(ctx, path, backend, opts, &qm->model,
                                  with_recipe ? &qm->recipe : NULL, &qm->info);
    if (s != LB_OK) {
        lb_free(qm);
        return s;
    }
    qm->have_info = 1;
    *out = qm;
    return LB_OK;
}

/* A quantized model file (format "lowbit-quantized") or a checkpoint. */
static lb_status load_any(lb_ctx *ctx, const char *path, const lb_backend *backend,
                          const lb_model_options *opts, lb_ptq_exec exec, lb_ptq_kernel kernel,
                          int with_recipe, lb_ptq_model **out)
{
    if (!path || !out) return lb_error(ctx, LB_ERR_ARG, "load: NULL argument");
    *out = NULL;
    lb_safetensors *st = NULL;
    lb_status s = lb_safetensors_read(ctx, path, &st);
    if (s != LB_OK) return s;
    const char *fmt = lb_safetensors_metadata(st, "format");
    const int quantized = fmt && strcmp(fmt, "lowbit-quantized") == 0;
    lb_safetensors_free(st);
    if (quantized) return ptq_load_quantized(ctx, path, backend, opts, exec, kernel, out);
    return load_float(ctx, path, backend, opts, with_recipe, out);
}

lb_status lb_ptq_model_load(lb_ctx *ctx, const char *path, const lb_backend *backend,
                            const lb_model_options *opts, lb_ptq_model **out)
{
    return load_any(ctx, path, backend, opts, LB_PTQ_EXEC_INTEGER, LB_PTQ_KERNEL_FAST, 0, out);
}

lb_status lb_ptq_model_load_ex(lb_ctx *ctx, const char *path, const lb_backend *backend,
                               const lb_model_options *opts, lb_ptq_exec exec,
                               lb_ptq_kernel kernel, lb_ptq_model **out)
{
    return load_any(ctx, path, backend, opts, exec, kernel, 0, out);
}

lb_status lb_ptq_model_load_recipe(lb_ctx *ctx, const char *path, const lb_backend *backend,
                                   const lb_model_options *opts, lb_ptq_model **out)
{
    return load_any(ctx, path, backend, opts, LB_PTQ_EXEC_INTEGER, LB_PTQ_KERNEL_FAST, 1, out);
}

lb_model *lb_ptq_model_get(lb_ptq_model *qm) { return qm ? qm->model : NULL; }
int lb_ptq_model_is_quantized(const lb_ptq_model *qm) { return qm && qm->rt; }

const lb_ptq_options *lb_ptq_model_options(const lb_ptq_model *qm)
{
    return qm && qm->rt ? &qm->rt->opts : NULL;
}

const lb_checkpoint_info *lb_ptq_model_info(const lb_ptq_model *qm)
{
    return qm && qm->have_info ? &qm->info : NULL;
}

lb_status lb_ptq_model_set_observer(lb_ptq_model *qm, lb_model_observer_fn fn, void *user)
{
    if (!qm) return LB_ERR_ARG;
    if (qm->rt) {
        qm->rt->user_fn = fn;
        qm->rt->user_arg = fn ? user : NULL;
    } else {
        lb_model_set_observer(qm->model, fn, user);
    }
    return LB_OK;
}

lb_status lb_ptq_model_set_exec(lb_ctx *ctx, lb_ptq_model *qm, lb_ptq_exec exec,
                                lb_ptq_kernel kernel)
{
    if (!qm) return lb_error(ctx, LB_ERR_ARG, "ptq: NULL model");
    if (!qm->rt) return LB_OK;
    if ((exec != LB_PTQ_EXEC_INTEGER && exec != LB_PTQ_EXEC_FAKE) ||
        (kernel != LB_PTQ_KERNEL_FAST && kernel != LB_PTQ_KERNEL_REF))
        return lb_error(ctx, LB_ERR_ARG, "ptq: bad execution mode");
    qm->rt->exec = exec;
    qm->rt->kernel = kernel;
    if (exec == LB_PTQ_EXEC_INTEGER && kernel == LB_PTQ_KERNEL_FAST)
        return ptq_runtime_pack(ctx, qm->rt);
    return LB_OK;
}

double lb_ptq_model_exponent(const lb_ptq_model *qm, lb_linear_role role, int layer)
{
    if (!qm || !qm->rt) return 0;
    const ptq_linear *L = ptq_linear_at(qm->rt, role, layer);
    return L && L->quantized && L->grid == LB_WQ_GRID_POWER ? L->a : 0;
}

void lb_ptq_model_report(const lb_ptq_model *qm, FILE *f)
{
    if (!qm || !qm->rt) return;
    ptq_runtime *rt = qm->rt;
    const int gptq_like = rt->opts.method == LB_PTQ_GPTQ || rt->opts.method == LB_PTQ_NUPES;
    fprintf(f, "  %-6s %-5s %4s %-7s %8s %5s %12s  %s\n", "layer", "role", "bits", "grid",
            "exponent", "R", gptq_like ? "output err" : "weight err", "input");
    for (int l = -1; l < rt->cfg.n_layer; l++)
        for (int role = 0; role < PTQ_N_ROLES; role++) {
            const ptq_linear *L = ptq_linear_at(rt, (lb_linear_role)role, l);
            if (!L->quantized) continue;
            char in[48] = "float";
            if (L->in && L->in->enabled && L->in->have)
                snprintf(in, sizeof in, "%d-bit, step %.4g, zero %d", rt->opts.abits,
                         (double)L->in->scale, L->in->zero);
            fprintf(f, "  %-6d %-5s %4d %-7s %8.4f %5d %12.4g  %s\n", l,
                    lb_linear_role_name(L->role), L->bits, lb_wq_grid_name(L->grid), L->a, L->R,
                    L->relerr, in);
        }
}

void lb_ptq_model_free(lb_ptq_model *qm)
{
    if (!qm) return;
    lb_model_free(qm->model);
    lb_recipe_free(qm->recipe);
    ptq_runtime_free(qm->rt);
    lb_free(qm);
}
