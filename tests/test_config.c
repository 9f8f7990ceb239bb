/* config.json: the published configs of Llama 2, Llama 3.1, Mistral and
 * Qwen2.5 (tests/fixtures/config/, see its README for the sources) read to
 * the expected fields; then one fault at a time on top of them, each giving
 * the right error and a message naming the file and the key.
 *   test_config FIXTURE_DIR */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "shmrt/shmrt.h"
#include "shmrt/model_config.h"
#include "check.h"

static const char *fixtures;

static void load_fixture(const char *name, struct shmrt_model_config *c)
{
	char path[4096];
	snprintf(path, sizeof(path), "%s/%s", fixtures, name);
	CHECK_OK(shmrt_model_config_load(path, c));
}

static void check_llama2(void)
{
	struct shmrt_model_config c;
	load_fixture("llama-2-7b-hf.json", &c);
	CHECK(c.arch == SHMRT_ARCH_LLAMA && !strcmp(shmrt_arch_name(c.arch), "llama"), "arch %d", c.arch);
	CHECK(c.hidden_size == 4096 && c.intermediate_size == 11008 && c.num_layers == 32, "sizes");
	CHECK(c.num_heads == 32 && c.num_kv_heads == 32 && c.head_dim == 128, "heads %d/%d/%d", c.num_heads,
	      c.num_kv_heads, c.head_dim);
	CHECK(c.vocab_size == 32000 && c.max_position_embeddings == 4096 && c.max_context == 4096, "vocab, positions");
	CHECK(c.rope.theta == 10000.0f && c.rope.scaling == SHMRT_ROPE_DEFAULT, "rope default %g", c.rope.theta);
	CHECK(c.rms_norm_eps == 1e-5f, "eps %g", c.rms_norm_eps);
	CHECK(!c.tie_word_embeddings && !c.qkv_bias && !c.o_bias && c.sliding_window == 0, "flags");
	CHECK(c.bos_token_id == 1 && c.n_eos == 1 && c.eos_token_ids[0] == 2, "special ids");
	CHECK(c.dtype == SHMRT_F16, "dtype %d", c.dtype);
}

static void check_llama3(void)
{
	struct shmrt_model_config c;
	load_fixture("llama-3.1-8b-instruct.json", &c);
	CHECK(c.arch == SHMRT_ARCH_LLAMA, "arch");
	CHECK(c.hidden_size == 4096 && c.intermediate_size == 14336 && c.num_layers == 32, "sizes");
	CHECK(c.num_heads == 32 && c.num_kv_heads == 8 && c.head_dim == 128, "GQA heads");
	CHECK(c.vocab_size == 128256 && c.max_context == 131072, "vocab, positions");
	CHECK(c.rope.theta == 500000.0f && c.rope.scaling == SHMRT_ROPE_LLAMA3, "rope %g %d", c.rope.theta,
	      c.rope.scaling);
	CHECK(c.rope.factor == 8.0f && c.rope.low_freq_factor == 1.0f && c.rope.high_freq_factor == 4.0f &&
		      c.rope.original_max_position == 8192,
	      "llama3 scaling");
	CHECK(c.bos_token_id == 128000 && c.n_eos == 3 && c.eos_token_ids[0] == 128001 &&
		      c.eos_token_ids[1] == 128008 && c.eos_token_ids[2] == 128009,
	      "eos list");
	CHECK(!c.tie_word_embeddings && !c.qkv_bias && !c.o_bias && c.dtype == SHMRT_BF16, "flags, dtype");
}

static void check_mistral(void)
{
	struct shmrt_model_config c;
	load_fixture("mistral-7b-v0.1.json", &c);
	CHECK(c.arch == SHMRT_ARCH_MISTRAL && !strcmp(shmrt_arch_name(c.arch), "mistral"), "arch");
	CHECK(c.num_heads == 32 && c.num_kv_heads == 8 && c.head_dim == 128 && c.intermediate_size == 14336, "sizes");
	/* The 4096-token window caps the context we serve (model_config.h). */
	CHECK(c.sliding_window == 4096 && c.max_position_embeddings == 32768 && c.max_context == 4096,
	      "window %d, context %d", c.sliding_window, c.max_context);
	CHECK(c.rope.theta == 10000.0f && c.rope.scaling == SHMRT_ROPE_DEFAULT && !c.qkv_bias, "rope, bias");

	load_fixture("mistral-7b-instruct-v0.2.json", &c);
	CHECK(c.sliding_window == 0 && c.max_context == 32768, "null window: full context (%d)", c.max_context);
	CHECK(c.rope.theta == 1000000.0f, "theta %g", c.rope.theta);
}

static void check_qwen2(void)
{
	struct shmrt_model_config c;
	load_fixture("qwen2.5-0.5b-instruct.json", &c);
	CHECK(c.arch == SHMRT_ARCH_QWEN2 && !strcmp(shmrt_arch_name(c.arch), "qwen2"), "arch");
	CHECK(c.hidden_size == 896 && c.intermediate_size == 4864 && c.num_layers == 24, "sizes");
	CHECK(c.num_heads == 14 && c.num_kv_heads == 2 && c.head_dim == 64, "heads");
	CHECK(c.vocab_size == 151936 && c.max_context == 32768 && c.sliding_window == 0,
	      "sliding_window is ignored without use_sliding_window");
	CHECK(c.qkv_bias && !c.o_bias, "Qwen2 has q/k/v biases and no o bias");
	CHECK(c.tie_word_embeddings && c.rms_norm_eps == 1e-6f && c.rope.theta == 1000000.0f, "tie, eps, theta");
	CHECK(c.bos_token_id == 151643 && c.n_eos == 1 && c.eos_token_ids[0] == 151645, "ids");
}

/* One fault: the fixture with keys set (a JSON object merged on top; a
 * nested object replaces the old one) and keys deleted (space separated). */
struct fault {
	const char *fixture, *set, *del;
	int rc;             /* 0: must load */
	const char *msg[2]; /* substrings of the message */
};

static const struct fault faults[] = {
	{"llama-3.1-8b-instruct.json", NULL, "hidden_size", -EINVAL, {"key 'hidden_size' is missing"}},
	{"llama-3.1-8b-instruct.json", NULL, "max_position_embeddings", -EINVAL, {"'max_position_embeddings' is missing"}},
	{"llama-3.1-8b-instruct.json", "{\"hidden_size\": \"4096\"}", NULL, -EINVAL, {"'hidden_size' must be an integer"}},
	{"llama-3.1-8b-instruct.json", "{\"num_hidden_layers\": 0}", NULL, -EINVAL, {"'num_hidden_layers' is 0, outside"}},
	{"llama-3.1-8b-instruct.json", "{\"vocab_size\": 1e5}", NULL, -EINVAL, {"'vocab_size' must be an integer"}},
	{"llama-3.1-8b-instruct.json", "{\"num_key_value_heads\": 5}", NULL, -EINVAL,
	 {"num_attention_heads 32 is not a multiple of num_key_value_heads 5"}},
	{"llama-3.1-8b-instruct.json", "{\"hidden_size\": 4100}", NULL, -EINVAL,
	 {"hidden_size 4100 is not a multiple of num_attention_heads 32"}},
	{"llama-3.1-8b-instruct.json", "{\"hidden_size\": 4100, \"head_dim\": 128}", NULL, 0, {NULL}},
	{"llama-3.1-8b-instruct.json", "{\"head_dim\": 127}", NULL, -EINVAL, {"head_dim 127 is odd"}},
	{"llama-3.1-8b-instruct.json", "{\"architectures\": [\"GPT2LMHeadModel\"]}", NULL, -ENOTSUP,
	 {"architecture 'GPT2LMHeadModel' is not supported"}},
	{"llama-3.1-8b-instruct.json", "{\"architectures\": \"LlamaForCausalLM\"}", NULL, -EINVAL,
	 {"'architectures' must be a list"}},
	{"llama-3.1-8b-instruct.json", "{\"model_type\": \"gemma\"}", NULL, -ENOTSUP, {"model_type 'gemma' is not supported"}},
	{"llama-3.1-8b-instruct.json", "{\"model_type\": \"mistral\"}", NULL, -EINVAL, {"disagree"}},
	{"llama-3.1-8b-instruct.json", NULL, "architectures", 0, {NULL}},
	{"llama-3.1-8b-instruct.json", NULL, "architectures model_type", -EINVAL, {"key 'architectures' is missing"}},
	{"llama-3.1-8b-instruct.json",
	 "{\"rope_scaling\": {\"rope_type\": \"yarn\", \"factor\": 4.0, \"original_max_position_embeddings\": 32768}}", NULL,
	 -ENOTSUP, {"rope_scaling.rope_type 'yarn' is not supported"}},
	{"llama-3.1-8b-instruct.json",
	 "{\"rope_scaling\": {\"factor\": 8.0, \"low_freq_factor\": 1.0, \"high_freq_factor\": 4.0, "
	 "\"original_max_position_embeddings\": 8192}}",
	 NULL, -EINVAL, {"key 'rope_scaling.rope_type' is missing"}},
	{"llama-3.1-8b-instruct.json",
	 "{\"rope_scaling\": {\"low_freq_factor\": 1.0, \"high_freq_factor\": 4.0, "
	 "\"original_max_position_embeddings\": 8192, \"rope_type\": \"llama3\"}}",
	 NULL, -EINVAL, {"key 'rope_scaling.factor' is missing"}},
	{"llama-3.1-8b-instruct.json",
	 "{\"rope_scaling\": {\"factor\": 8.0, \"low_freq_factor\": 1.0, \"high_freq_factor\": 0.5, "
	 "\"original_max_position_embeddings\": 8192, \"rope_type\": \"llama3\"}}",
	 NULL, -EINVAL, {"high_freq_factor 0.5 must exceed low_freq_factor 1"}},
	{"llama-3.1-8b-instruct.json",
	 "{\"rope_scaling\": {\"factor\": \"8\", \"low_freq_factor\": 1.0, \"high_freq_factor\": 4.0, "
	 "\"original_max_position_embeddings\": 8192, \"rope_type\": \"llama3\"}}",
	 NULL, -EINVAL, {"'rope_scaling.factor' must be a number"}},
	{"llama-3.1-8b-instruct.json", "{\"rope_scaling\": \"llama3\"}", NULL, -EINVAL,
	 {"'rope_scaling' must be an object or null"}},
	{"llama-3.1-8b-instruct.json", "{\"rope_theta\": \"big\"}", NULL, -EINVAL, {"'rope_theta' must be a number"}},
	{"llama-3.1-8b-instruct.json", "{\"rope_theta\": -1}", NULL, -EINVAL, {"'rope_theta' is -1, must be positive"}},
	{"llama-3.1-8b-instruct.json", "{\"rms_norm_eps\": 0}", NULL, -EINVAL, {"'rms_norm_eps' is 0"}},
	{"llama-3.1-8b-instruct.json", "{\"eos_token_id\": \"2\"}", NULL, -EINVAL,
	 {"'eos_token_id' must be an integer or a list of integers"}},
	{"llama-3.1-8b-instruct.json", "{\"eos_token_id\": [1, \"x\"]}", NULL, -EINVAL,
	 {"'eos_token_id[1]' must be an integer"}},
	{"llama-3.1-8b-instruct.json", "{\"eos_token_id\": 128256}", NULL, -EINVAL, {"'eos_token_id' is 128256, outside"}},
	{"llama-3.1-8b-instruct.json", "{\"eos_token_id\": [1, 2, 3, 4, 5, 6, 7, 8, 9]}", NULL, -EINVAL,
	 {"lists 9 ids, at most 8"}},
	{"llama-3.1-8b-instruct.json", "{\"bos_token_id\": -1}", NULL, -EINVAL, {"'bos_token_id' is -1, outside"}},
	{"llama-3.1-8b-instruct.json", "{\"torch_dtype\": \"float64\"}", NULL, -ENOTSUP,
	 {"torch_dtype 'float64' is not supported"}},
	{"llama-3.1-8b-instruct.json", "{\"tie_word_embeddings\": \"yes\"}", NULL, -EINVAL,
	 {"'tie_word_embeddings' must be true or false"}},
	{"llama-3.1-8b-instruct.json", "{\"hidden_act\": \"gelu\"}", NULL, -ENOTSUP, {"hidden_act 'gelu' is not supported"}},
	{"llama-3.1-8b-instruct.json", "{\"mlp_bias\": true}", NULL, -ENOTSUP, {"mlp_bias true is not supported"}},
	{"qwen2.5-0.5b-instruct.json", "{\"use_sliding_window\": true}", NULL, -ENOTSUP,
	 {"use_sliding_window true is not supported"}},
	{"mistral-7b-v0.1.json", "{\"sliding_window\": \"4096\"}", NULL, -EINVAL, {"'sliding_window' must be an integer"}},
	{NULL, NULL, NULL, 0, {NULL}},
};

static char tmpdir[] = "/tmp/shmrt-test-config-XXXXXX";

static json_t *fixture_json(const char *name)
{
	char path[4096];
	json_error_t e;
	snprintf(path, sizeof(path), "%s/%s", fixtures, name);
	json_t *j = json_load_file(path, 0, &e);
	CHECK(j, "%s: %s", path, e.text);
	return j;
}

static void apply(json_t *j, const struct fault *f)
{
	if (f->set) {
		json_error_t e;
		json_t *set = json_loads(f->set, 0, &e);
		CHECK(set, "fault JSON %s: %s", f->set, e.text);
		CHECK(json_object_update(j, set) == 0, "merge");
		json_decref(set);
	}
	char keys[256];
	snprintf(keys, sizeof(keys), "%s", f->del ? f->del : "");
	for (char *save, *k = strtok_r(keys, " ", &save); k; k = strtok_r(NULL, " ", &save))
		CHECK(json_object_del(j, k) == 0, "delete %s", k);
}

static void check_fault(const struct fault *f, int i)
{
	char path[4096];
	snprintf(path, sizeof(path), "%s/fault-%d.json", tmpdir, i);
	json_t *j = fixture_json(f->fixture);
	apply(j, f);
	CHECK(json_dump_file(j, path, JSON_INDENT(2)) == 0, "write %s", path);
	json_decref(j);
	struct shmrt_model_config c;
	int rc = shmrt_model_config_load(path, &c);
	const char *msg = shmrt_last_error();
	CHECK(rc == f->rc, "fault %d (set %s, del %s): rc %d, want %d: %s", i, f->set ? f->set : "-",
	      f->del ? f->del : "-", rc, f->rc, msg);
	if (rc == 0) {
		CHECK(!*msg, "success leaves no message: %s", msg);
	} else {
		CHECK(strstr(msg, path), "fault %d: message names the file: %s", i, msg);
		for (int k = 0; k < 2 && f->msg[k]; k++)
			CHECK(strstr(msg, f->msg[k]), "fault %d: message '%s' lacks '%s'", i, msg, f->msg[k]);
	}
	unlink(path);
}

static void expect_parse(const char *json, int want, const char *sub)
{
	struct shmrt_model_config c;
	int rc = shmrt_model_config_parse(json, strlen(json), "inline.json", &c);
	CHECK(rc == want, "parse %s: rc %d, want %d: %s", json, rc, want, shmrt_last_error());
	CHECK(strstr(shmrt_last_error(), "inline.json") && strstr(shmrt_last_error(), sub), "message: %s",
	      shmrt_last_error());
}

/* What other files look like: transformers v5 spellings, older rope
 * scaling spelling, integer rope_theta, attention_bias. */
static void check_variants(void)
{
	const char *base = "{\"model_type\": \"llama\", \"hidden_size\": 64, \"intermediate_size\": 128,"
			   " \"num_hidden_layers\": 2, \"num_attention_heads\": 4, \"num_key_value_heads\": 2,"
			   " \"vocab_size\": 100, \"max_position_embeddings\": 256";
	char json[1024];
	struct shmrt_model_config c;

	snprintf(json, sizeof(json), "%s, \"dtype\": \"float16\", \"rope_parameters\": {\"rope_theta\": 500000,"
		 " \"rope_type\": \"llama3\", \"factor\": 32.0, \"low_freq_factor\": 1, \"high_freq_factor\": 4,"
		 " \"original_max_position_embeddings\": 8192}}", base);
	CHECK_OK(shmrt_model_config_parse(json, strlen(json), "v5.json", &c));
	CHECK(c.dtype == SHMRT_F16 && c.rope.theta == 500000.0f && c.rope.scaling == SHMRT_ROPE_LLAMA3 &&
		      c.rope.factor == 32.0f,
	      "transformers v5 keys");

	snprintf(json, sizeof(json), "%s, \"rope_theta\": 10000, \"rope_scaling\": {\"type\": \"llama3\", \"factor\": 8,"
		 " \"low_freq_factor\": 1, \"high_freq_factor\": 4, \"original_max_position_embeddings\": 8192}}", base);
	CHECK_OK(shmrt_model_config_parse(json, strlen(json), "old.json", &c));
	CHECK(c.rope.scaling == SHMRT_ROPE_LLAMA3 && c.rope.theta == 10000.0f && c.dtype == SHMRT_F32,
	      "'type' key, integer theta, no dtype: f32");
	CHECK(c.num_kv_heads == 2 && c.head_dim == 16 && c.bos_token_id == -1 && c.n_eos == 0 && c.rms_norm_eps == 1e-6f,
	      "defaults");

	snprintf(json, sizeof(json), "%s, \"attention_bias\": true, \"rope_scaling\": {\"rope_type\": \"default\"}}", base);
	CHECK_OK(shmrt_model_config_parse(json, strlen(json), "bias.json", &c));
	CHECK(c.qkv_bias && c.o_bias && c.rope.scaling == SHMRT_ROPE_DEFAULT, "Llama attention_bias: q, k, v and o");

	expect_parse("{\"model_type\": \"llama\",", -EINVAL, "not valid JSON");
	expect_parse("[1, 2]", -EINVAL, "not a JSON object");
	expect_parse("{\"model_type\": \"llama\", \"model_type\": \"llama\"}", -EINVAL, "duplicate");
}

int main(int argc, char **argv)
{
	CHECK(argc == 2, "usage: test_config FIXTURE_DIR");
	fixtures = argv[1];
	check_llama2();
	check_llama3();
	check_mistral();
	check_qwen2();
	check_variants();

	CHECK(mkdtemp(tmpdir), "mkdtemp");
	int n = 0;
	for (const struct fault *f = faults; f->fixture; f++)
		check_fault(f, n++);
	struct shmrt_model_config c;
	char path[4200];
	snprintf(path, sizeof(path), "%s/absent.json", tmpdir);
	CHECK(shmrt_model_config_load(path, &c) == -ENOENT && strstr(shmrt_last_error(), path), "missing file: %s",
	      shmrt_last_error());
	rmdir(tmpdir);
	printf("5 published configs, %d faults\n", n);
	return 0;
}
