// SPDX-License-Identifier: MIT
/*
 * Provided buffer ring edges that liburing's tests do not pin down:
 *  - ring sizes: not a power of two, and 65536 entries, are -EINVAL;
 *    32768 entries work; a second ring on the same group is -EEXIST;
 *  - consumption order and the 16-bit tail wrapping: reads from a pipe with
 *    IOSQE_BUFFER_SELECT take buffers in ring order, each buffer id exactly
 *    once per refill, with the right data, across more than 65536 buffers;
 *  - an empty ring: the next read fails with -ENOBUFS, and a refill works.
 * Exit: 0 pass, 1 fail, 77 skip (no io_uring or no buffer rings).
 */
#include <errno.h>
#include <liburing.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define ENTRIES 256
#define BUF_LEN 8
#define ROUNDS 260 /* 260 * 256 = 66560 buffers: the tail wraps once */
#define BGID 3

static int fail(const char *what, int got)
{
	printf("FAIL: %s (got %d: %s)\n", what, got, got < 0 ? strerror(-got) : "-");
	return 1;
}

static int sizes(struct io_uring *ring)
{
	struct io_uring_buf_ring *br;
	int ret;

	br = io_uring_setup_buf_ring(ring, 3, 10, 0, &ret);
	if (br || ret != -EINVAL)
		return fail("3 entries (not a power of two) must be -EINVAL", ret);
	br = io_uring_setup_buf_ring(ring, 65536, 10, 0, &ret);
	if (br || ret != -EINVAL)
		return fail("65536 entries must be -EINVAL", ret);
	br = io_uring_setup_buf_ring(ring, 32768, 10, 0, &ret);
	if (!br)
		return fail("32768 entries must register", ret);
	if (!io_uring_setup_buf_ring(ring, 4, 10, 0, &ret) && ret == -EEXIST)
		printf("ok: a second ring on group 10 is -EEXIST\n");
	else
		return fail("a second ring on the same group must be -EEXIST", ret);
	ret = io_uring_free_buf_ring(ring, br, 32768, 10);
	if (ret)
		return fail("unregistering the 32768-entry ring", ret);
	printf("ok: ring sizes\n");
	return 0;
}

static void refill(struct io_uring_buf_ring *br, char *bufs, int n)
{
	for (int i = 0; i < n; i++)
		io_uring_buf_ring_add(br, bufs + i * BUF_LEN, BUF_LEN, i,
				      io_uring_buf_ring_mask(ENTRIES), i);
	io_uring_buf_ring_advance(br, n);
}

static int read_one(struct io_uring *ring, int fd, struct io_uring_cqe **cqe)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(ring);

	io_uring_prep_read(sqe, fd, NULL, BUF_LEN, 0);
	sqe->flags |= IOSQE_BUFFER_SELECT;
	sqe->buf_group = BGID;
	io_uring_submit(ring);
	return io_uring_wait_cqe(ring, cqe);
}

static int wrap(struct io_uring *ring)
{
	static char bufs[ENTRIES * BUF_LEN];
	static char data[ENTRIES * BUF_LEN];
	struct io_uring_buf_ring *br;
	struct io_uring_cqe *cqe;
	unsigned long long seq = 0;
	int fds[2], ret;

	br = io_uring_setup_buf_ring(ring, ENTRIES, BGID, 0, &ret);
	if (!br)
		return fail("registering the ring", ret);
	if (pipe(fds))
		return fail("pipe", -errno);

	for (int round = 0; round < ROUNDS; round++) {
		unsigned char seen[ENTRIES] = { 0 };

		refill(br, bufs, ENTRIES);
		for (int i = 0; i < ENTRIES; i++) {
			unsigned long long v = seq + i;
			memcpy(data + i * BUF_LEN, &v, BUF_LEN);
		}
		if (write(fds[1], data, sizeof(data)) != sizeof(data))
			return fail("writing the pipe", -errno);
		for (int i = 0; i < ENTRIES; i++) {
			struct io_uring_sqe *sqe = io_uring_get_sqe(ring);

			if (!sqe) {
				io_uring_submit(ring);
				sqe = io_uring_get_sqe(ring);
			}
			io_uring_prep_read(sqe, fds[0], NULL, BUF_LEN, 0);
			sqe->flags |= IOSQE_BUFFER_SELECT;
			sqe->buf_group = BGID;
		}
		io_uring_submit(ring);
		for (int i = 0; i < ENTRIES; i++) {
			unsigned long long v;
			int bid;

			ret = io_uring_wait_cqe(ring, &cqe);
			if (ret)
				return fail("waiting for a read", ret);
			if (cqe->res != BUF_LEN)
				return fail("a read's length", cqe->res);
			if (!(cqe->flags & IORING_CQE_F_BUFFER))
				return fail("a read without IORING_CQE_F_BUFFER", (int)cqe->flags);
			bid = cqe->flags >> IORING_CQE_BUFFER_SHIFT;
			if (bid >= ENTRIES || seen[bid]++)
				return fail("buffer id out of range or used twice in one refill", bid);
			memcpy(&v, bufs + bid * BUF_LEN, BUF_LEN);
			if (v < seq || v >= seq + ENTRIES)
				return fail("data in the selected buffer is not from this round", (int)(v - seq));
			io_uring_cqe_seen(ring, cqe);
		}
		seq += ENTRIES;
	}
	printf("ok: %llu buffers through a %d-entry ring (the tail wrapped)\n", seq, ENTRIES);

	/* Empty: nothing refilled since the last round. */
	if (write(fds[1], data, BUF_LEN) != BUF_LEN)
		return fail("writing the pipe", -errno);
	ret = read_one(ring, fds[0], &cqe);
	if (ret)
		return fail("waiting for the read on an empty ring", ret);
	if (cqe->res != -ENOBUFS)
		return fail("a read from an empty ring must be -ENOBUFS", cqe->res);
	io_uring_cqe_seen(ring, cqe);
	printf("ok: empty ring gives -ENOBUFS\n");

	refill(br, bufs, 1);
	ret = read_one(ring, fds[0], &cqe);
	if (ret || cqe->res != BUF_LEN)
		return fail("a read after refilling the empty ring", ret ? ret : cqe->res);
	io_uring_cqe_seen(ring, cqe);
	printf("ok: refill after empty\n");
	close(fds[0]);
	close(fds[1]);
	return io_uring_free_buf_ring(ring, br, ENTRIES, BGID) ? fail("unregister", -1) : 0;
}

int main(void)
{
	struct io_uring ring;
	struct io_uring_buf_ring *br;
	int ret;

	ret = io_uring_queue_init(64, &ring, 0);
	if (ret) {
		printf("SKIP: io_uring_queue_init: %s\n", strerror(-ret));
		return 77;
	}
	br = io_uring_setup_buf_ring(&ring, 4, 1, 0, &ret);
	if (!br) {
		printf("SKIP: no provided buffer rings: %s\n", strerror(-ret));
		return 77;
	}
	io_uring_free_buf_ring(&ring, br, 4, 1);
	if (sizes(&ring) || wrap(&ring))
		return 1;
	io_uring_queue_exit(&ring);
	return 0;
}
