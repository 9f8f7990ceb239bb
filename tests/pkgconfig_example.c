/* A model server's view of shmrt: built against an installed copy with
 * nothing but `pkg-config --cflags --libs shmrt` (scripts/dev.sh test).
 * It formats a ring in private memory and passes a record through it. */
#include <shmrt/shmrt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(void)
{
	size_t need = shmrt_ring_footprint(SHMRT_RING_SPSC, 4096, 1);
	void *mem = aligned_alloc(64, (need + 63) / 64 * 64);
	struct shmrt_ring *tx, *rx;
	char out[16];
	size_t len = 0;
	if (!need || !mem || shmrt_ring_format(mem, need, SHMRT_RING_SPSC, 4096, 1) ||
	    shmrt_ring_open(&tx, mem, need, SHMRT_RING_PRODUCER, 0) ||
	    shmrt_ring_open(&rx, mem, need, SHMRT_RING_CONSUMER, 0) ||
	    shmrt_ring_send(tx, "hello", 6, 0) || shmrt_ring_recv(rx, out, sizeof(out), &len, 0) ||
	    len != 6 || strcmp(out, "hello")) {
		fprintf(stderr, "pkgconfig example: %s\n", shmrt_last_error());
		return 1;
	}
	printf("shmrt %s linked through pkg-config: ring round trip ok\n", shmrt_version());
	shmrt_ring_close(rx);
	shmrt_ring_close(tx);
	free(mem);
	return 0;
}
