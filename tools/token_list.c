/* Command-line token lists and numbers (token_list.h). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "token_list.h"
#include "shmrt/model.h"

int parse_token_list(const char *cmd, const char *s, int32_t **ids)
{
	int n = 1;
	for (const char *p = s; *p; p++)
		n += *p == ',';
	int32_t *v = malloc((size_t)n * sizeof(*v));
	if (!v) {
		fprintf(stderr, "shmrt %s: no memory\n", cmd);
		return -1;
	}
	const char *p = s;
	for (int i = 0; i < n; i++) {
		char *end;
		errno = 0;
		long x = strtol(p, &end, 10);
		if (end == p || errno || x < 0 || x > INT32_MAX || (*end && *end != ',') || (*end == ',') != (i + 1 < n)) {
			fprintf(stderr, "shmrt %s: --tokens wants ids like 1,2,3, not '%s'\n", cmd, s);
			free(v);
			return -1;
		}
		v[i] = (int32_t)x;
		p = end + 1;
	}
	*ids = v;
	return n;
}

int parse_int_arg(const char *cmd, const char *opt, const char *s, long min, long max, long *out)
{
	char *end;
	errno = 0;
	long x = strtol(s, &end, 0);
	if (end == s || *end || errno || x < min || x > max) {
		fprintf(stderr, "shmrt %s: %s wants an integer in [%ld, %ld], not '%s'\n", cmd, opt, min, max, s);
		return -1;
	}
	*out = x;
	return 0;
}

int parse_float_arg(const char *cmd, const char *opt, const char *s, double *out)
{
	char *end;
	errno = 0;
	double x = strtod(s, &end);
	if (end == s || *end || errno || x != x) {
		fprintf(stderr, "shmrt %s: %s wants a number, not '%s'\n", cmd, opt, s);
		return -1;
	}
	*out = x;
	return 0;
}

int parse_quantize(const char *cmd, const char *s, int *out)
{
	enum shmrt_dtype dt;
	if (!shmrt_dtype_from_name(s, &dt) && (dt == SHMRT_Q8_0 || dt == SHMRT_Q4_0 || dt == SHMRT_Q4_K)) {
		*out = (int)dt;
		return 0;
	}
	fprintf(stderr, "shmrt %s: --quantize wants q8_0, q4_0 or q4_k, not '%s'\n", cmd, s);
	return -1;
}

void report_quantize(const char *cmd, const struct shmrt_model *m, int quantize_to)
{
	struct shmrt_load_stats st;
	if (!quantize_to)
		return;
	shmrt_model_load_stats(m, &st);
	fprintf(stderr, "[shmrt %s: weights quantized to %s at load: %.2f MiB, %.2f MiB saved]\n", cmd,
		shmrt_dtype_name((enum shmrt_dtype)quantize_to), (double)st.weight_bytes / 1048576.0,
		(double)st.quantize_saved / 1048576.0);
}

int parse_activations(const char *cmd, const char *s, enum shmrt_dtype *out)
{
	if (!strcmp(s, "f32") || !strcmp(s, "bf16")) {
		*out = !strcmp(s, "f32") ? SHMRT_F32 : SHMRT_BF16;
		return 0;
	}
	fprintf(stderr, "shmrt %s: --activations wants f32 or bf16, not '%s'\n", cmd, s);
	return -1;
}
