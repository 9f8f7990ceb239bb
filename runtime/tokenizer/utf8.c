/* UTF-8 scanning and lossy conversion (utf8.h). */
#include <errno.h>
#include <string.h>

#include "fail.h"
#include "utf8.h"

/* Well-formed sequences, Unicode 15 table 3-7: the lead byte fixes the length
 * and the range of the second byte; later bytes are 80..BF. */
static int lead(uint8_t b, uint8_t *lo, uint8_t *hi)
{
	*lo = 0x80;
	*hi = 0xBF;
	if (b >= 0xC2 && b <= 0xDF)
		return 2;
	if (b == 0xE0)
		*lo = 0xA0;
	else if (b == 0xED)
		*hi = 0x9F;
	if (b >= 0xE0 && b <= 0xEF)
		return 3;
	if (b == 0xF0)
		*lo = 0x90;
	else if (b == 0xF4)
		*hi = 0x8F;
	if (b >= 0xF0 && b <= 0xF4)
		return 4;
	return 0;
}

int tok_utf8_scan(const uint8_t *p, size_t n, uint32_t *cp)
{
	if (p[0] < 0x80) {
		*cp = p[0];
		return 1;
	}
	uint8_t lo, hi;
	int len = lead(p[0], &lo, &hi);
	if (len == 0)
		return -1;
	uint32_t c = p[0] & (0x7F >> len);
	for (int i = 1; i < len; i++) {
		if ((size_t)i >= n)
			return 0;
		if (p[i] < lo || p[i] > hi)
			return -i;
		c = c << 6 | (p[i] & 0x3F);
		lo = 0x80;
		hi = 0xBF;
	}
	*cp = c;
	return len;
}

size_t tok_utf8_encode(uint32_t cp, char *out)
{
	uint8_t *o = (uint8_t *)out;
	if (cp < 0x80) {
		o[0] = (uint8_t)cp;
		return 1;
	}
	if (cp < 0x800) {
		o[0] = (uint8_t)(0xC0 | cp >> 6);
		o[1] = (uint8_t)(0x80 | (cp & 0x3F));
		return 2;
	}
	if (cp < 0x10000) {
		o[0] = (uint8_t)(0xE0 | cp >> 12);
		o[1] = (uint8_t)(0x80 | (cp >> 6 & 0x3F));
		o[2] = (uint8_t)(0x80 | (cp & 0x3F));
		return 3;
	}
	o[0] = (uint8_t)(0xF0 | cp >> 18);
	o[1] = (uint8_t)(0x80 | (cp >> 12 & 0x3F));
	o[2] = (uint8_t)(0x80 | (cp >> 6 & 0x3F));
	o[3] = (uint8_t)(0x80 | (cp & 0x3F));
	return 4;
}

int tok_utf8_lossy(const char *p, size_t n, bool final, struct tok_buf *out, size_t *used)
{
	static const char replacement[] = "\xEF\xBF\xBD";
	/* Each input byte becomes at most the 3 bytes of U+FFFD. */
	if (n > SIZE_MAX / 3)
		return shmrt_fail(ENOMEM, "tokenizer: %zu bytes to decode is too many", n);
	int rc = tok_buf_reserve(out, 3 * n);
	if (rc < 0)
		return rc;
	const uint8_t *s = (const uint8_t *)p;
	char *o = out->p + out->n;
	size_t i = 0;
	while (i < n) {
		uint32_t cp;
		int k = s[i] < 0x80 ? 1 : tok_utf8_scan(s + i, n - i, &cp);
		if (k > 0) {
			memcpy(o, s + i, (size_t)k);
			o += k;
			i += (size_t)k;
		} else if (k == 0 && !final) {
			break;
		} else {
			memcpy(o, replacement, 3);
			o += 3;
			i += k < 0 ? (size_t)-k : n - i;
		}
	}
	out->n = (size_t)(o - out->p);
	*used = i;
	return 0;
}
