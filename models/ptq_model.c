/* models/ptq_model.c — loading models for post-training work: checkpoints
 * into models created with options (lowbit/ptq.h). */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lowbit/ptq.h"
#include "lowbit/safetensors.h"
#include "train_internal.h"

lb_status lb_checkpoint_load_model_ex(lb_ctx *ctx, const char *path, const lb_backend *backend,
                                      const lb_model_options *opts, lb_model **model,
                                      lb_checkpoint_info *info)
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
    lb_model_options o = *opts;
    if (o.max_batch <= 0) o.max_batch = cfg.batch_size;
    if (s == LB_OK) s = lb_model_create_ex(ctx, &cfg.model, backend, NULL, &o, &m);
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
        return s;
    }
    *model = m;
    return LB_OK;
}

/* ------------------------------------------------------------- lb_ptq_model */

struct lb_ptq_model {
    lb_model *model;
    int quantized;
};

lb_status lb_ptq_model_load(lb_ctx *ctx, const char *path, const lb_backend *backend,
                            const lb_model_options *opts, lb_ptq_model **out)
{
    if (!out) return lb_error(ctx, LB_ERR_ARG, "load: NULL argument");
    *out = NULL;
    lb_ptq_model *qm = calloc(1, sizeof *qm);
    if (!qm) return lb_error(ctx, LB_ERR_NOMEM, "load: out of memory");
    lb_status s = lb_checkpoint_load_model_ex(ctx, path, backend, opts, &qm->model, NULL);
    if (s != LB_OK) {
        free(qm);
        return s;
    }
    *out = qm;
    return LB_OK;
}

lb_model *lb_ptq_model_get(lb_ptq_model *qm) { return qm ? qm->model : NULL; }
int lb_ptq_model_is_quantized(const lb_ptq_model *qm) { return qm && qm->quantized; }

lb_status lb_ptq_model_set_observer(lb_ptq_model *qm, lb_model_observer_fn fn, void *user)
{
    if (!qm) return LB_ERR_ARG;
    lb_model_set_observer(qm->model, fn, user);
    return LB_OK;
}

void lb_ptq_model_free(lb_ptq_model *qm)
{
    if (!qm) return;
    lb_model_free(qm->model);
    free(qm);
}
