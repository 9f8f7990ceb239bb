/* A model's weight bytes from its config, as they are or quantized at
 * load (model.h): the tensors model.c places, counted without loading. */
#include "shmrt/model.h"
#include "quantize.h"

/* rows x cols in dt, or quantized as model.c does (cols 0: a vector). */
static uint64_t tensor_bytes(enum shmrt_dtype dt, int quantize_to, int64_t rows, int64_t cols)
{
	enum shmrt_dtype q;
	if (cols && quantize_to && shmrt_quantize_row_type((enum shmrt_dtype)quantize_to, cols, &q))
		return (uint64_t)rows * shmrt_dtype_row_bytes(q, cols);
	return (uint64_t)rows * (cols ? (uint64_t)cols : 1) * shmrt_dtype_size(dt);
}

uint64_t shmrt_model_weight_bytes(const struct shmrt_model_config *c, int quantize_to)
{
	enum shmrt_dtype dt = c->dtype;
	int64_t H = c->hidden_size, V = c->vocab_size, I = c->intermediate_size;
	int64_t qd = (int64_t)c->num_heads * c->head_dim, kvd = (int64_t)c->num_kv_heads * c->head_dim;
	uint64_t layer = tensor_bytes(dt, quantize_to, qd + 2 * kvd, H) + tensor_bytes(dt, quantize_to, H, qd) +
			 tensor_bytes(dt, quantize_to, 2 * I, H) + tensor_bytes(dt, quantize_to, H, I) +
			 2 * tensor_bytes(dt, 0, H, 0);
	if (c->qkv_bias)
		layer += tensor_bytes(dt, 0, qd + 2 * kvd, 0);
	if (c->o_bias)
		layer += tensor_bytes(dt, 0, H, 0);
	uint64_t total = (uint64_t)c->num_layers * layer + tensor_bytes(dt, quantize_to, V, H) + tensor_bytes(dt, 0, H, 0);
	if (!c->tie_word_embeddings)
		total += tensor_bytes(dt, quantize_to, V, H);
	return total;
}
