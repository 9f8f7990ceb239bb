/* The reader that the step plan fuzz target and test_step_plan use for the
 * seeds of tests/corpus/step_plan/: its plan's capacities and limits. */
#ifndef SHMRT_TESTS_STEP_PLAN_CORPUS_H
#define SHMRT_TESTS_STEP_PLAN_CORPUS_H

#define CORPUS_SEQS 64
#define CORPUS_TOKENS 1024
#define CORPUS_BLOCKS 256
#define CORPUS_BLOCK_SIZE 16
#define CORPUS_VOCAB 1000
#define CORPUS_MAX_CTX 4096

#endif
