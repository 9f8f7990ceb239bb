/* shmrt — shared-memory LLM inference runtime. Include this one header;
 * link with `pkg-config --cflags --libs shmrt`. */
#ifndef SHMRT_H
#define SHMRT_H

#include "common.h"
#include "error.h"
#include "devices.h"
#include "dtype.h"
#include "ring.h"
#include "shm_dir.h"
#include "arena.h"
#include "backend.h"
#include "transport.h"
#include "tokenizer.h"
#include "model_config.h"
#include "checkpoint.h"
#include "shard_plan.h"
#include "model.h"
#include "mkmodel.h"
#include "runtime.h"
#include "client.h"

#endif
