/* datasets/internal.h — helpers shared by the datasets/ sources (not installed). */
#ifndef LOWBIT_DATASETS_INTERNAL_H
#define LOWBIT_DATASETS_INTERNAL_H

#include <stddef.h>
#include <stdint.h>
#include "lowbit/datasets.h"

/* Reads a whole file into an lb_alloc'd buffer (*data, *len). LB_ERR_NOT_FOUND
 * when it does not exist, LB_ERR_IO otherwise; the detail names the file. */
lb_status lb_text_read_file(lb_ctx *ctx, const char *path, uint8_t **data, size_t *len);

/* Builds a corpus from parts: part i (part_len[i] bytes) contributes its first
 * train_len[i] bytes to the training string and the rest to the validation
 * string, in part order. The parts are copied, not taken over. */
lb_status lb_text_corpus_from_parts(lb_ctx *ctx, uint8_t *const *parts, const size_t *part_len,
                                    const size_t *train_len, size_t num_parts,
                                    lb_text_corpus **out);

#endif
