/* Sampling the logits of the last step on the device (model.h): only the
 * parameters go in and the token ids come back. */
#include <errno.h>

#include "fail.h"
#include "model_impl.h"

int shmrt_model_sample(struct shmrt_model *m, const struct shmrt_sample_params *params, int n_rows,
		       int32_t *tokens)
{
	shmrt_clear_error();
	if (n_rows != m->logit_rows || n_rows > m->s.cap_tokens)
		return shmrt_fail(EINVAL, "sample: %d rows asked for, the last step made %d", n_rows,
				  m->logit_rows);
	if (n_rows == 0)
		return 0;
	struct shmrt_scratch *s = &m->s;
	int rc = m->b->copy_to_device(NULL, s->params, params, (size_t)n_rows * sizeof(*params));
	if (rc < 0)
		return rc;
	struct shmrt_sample_args a = {.n_seqs = n_rows, .vocab = m->cfg.vocab_size,
				      .logits = s->logits, .logits_stride = m->cfg.vocab_size,
				      .dtype = SHMRT_F32, .params = s->params, .tokens = s->sampled};
	if ((rc = m->b->sample(NULL, &a)) < 0)
		return rc;
	return m->b->copy_from_device(NULL, tokens, s->sampled, (size_t)n_rows * sizeof(int32_t));
}
