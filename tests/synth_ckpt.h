/* Test helper: synthetic checkpoints written by the tests themselves. A
 * tensor's bytes are a function of its name and position, so a test can
 * check every byte it loads without keeping what it wrote. */
#ifndef SHMRT_TESTS_SYNTH_CKPT_H
#define SHMRT_TESTS_SYNTH_CKPT_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "safetensors.h"

uint32_t synth_seed(const char *name);

/* Byte i of the tensor whose name hashes to seed (splitmix64 finaliser). */
uint8_t synth_byte(uint32_t seed, uint64_t i);

uint64_t synth_bytes(const struct shmrt_st_tensor *t);

/* Writes a safetensors file of the tensors t[0..n) with synthetic data. */
void synth_write(const char *path, struct shmrt_st_tensor *t, size_t n);

/* Checks len loaded bytes against bytes [from, from + len) of tensor name. */
void synth_check(const char *name, uint64_t from, const uint8_t *got, uint64_t len, const char *what);

void synth_text(const char *path, const char *text);

#endif
