/* GPT-2's byte-to-character table (byte_level.h).
 *
 * From GPT-2's encoder.py (bytes_to_unicode): the printable bytes
 * '!'..'~', 0xA1..0xAC and 0xAE..0xFF stand for themselves (as code points);
 * the other 68 bytes (0x00..0x20, 0x7F..0xA0, 0xAD) get U+0100 onwards, in
 * byte order. So ' ' is U+0120 'Ġ' and '\n' is U+010A 'Ċ'. */
#include "byte_level.h"
#include "utf8.h"

static bool printable(unsigned b)
{
	return (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE;
}

uint32_t tok_byte_level_char(uint8_t b)
{
	if (printable(b))
		return b;
	if (b <= 0x20)
		return 0x100 + b;
	if (b <= 0xA0)
		return 0x100 + 0x21 + (b - 0x7F);
	return 0x100 + 0x21 + 0x22; /* 0xAD */
}

int tok_byte_level_byte(uint32_t cp)
{
	if (cp < 0x100)
		return printable(cp) ? (int)cp : -1;
	if (cp <= 0x120)
		return (int)(cp - 0x100);
	if (cp <= 0x142)
		return (int)(cp - 0x121 + 0x7F);
	return cp == 0x143 ? 0xAD : -1;
}

int tok_byte_level_unmap(const char *s, size_t n, struct tok_buf *out)
{
	int rc = tok_buf_reserve(out, n);
	if (rc < 0)
		return rc;
	const uint8_t *p = (const uint8_t *)s;
	size_t start = out->n;
	for (size_t i = 0; i < n;) {
		uint32_t cp;
		int k = tok_utf8_scan(p + i, n - i, &cp);
		int b = k > 0 ? tok_byte_level_byte(cp) : -1;
		if (b < 0) {
			out->n = start;
			return 0;
		}
		out->p[out->n++] = (char)b;
		i += (size_t)k;
	}
	return 1;
}
