/* lowbit/lowbit.h — umbrella header of the lowbit library. */
#ifndef LOWBIT_LOWBIT_H
#define LOWBIT_LOWBIT_H

#include "lowbit/status.h"
#include "lowbit/context.h"
#include "lowbit/alloc.h"
#include "lowbit/tensor.h"
#include "lowbit/rng.h"
#include "lowbit/version.h"
#include "lowbit/npy.h"
#include "lowbit/safetensors.h"
#include "lowbit/datasets.h"

#endif
