// SPDX-License-Identifier: MIT
/*
 * Unregistering a provided buffer ring that a pending request uses: a
 * multishot receive is armed on the group with no data yet; the ring is
 * unregistered under it. The unregister succeeds; when data arrives the
 * receive ends with -ENOBUFS and no IORING_CQE_F_MORE (no use of the freed
 * ring, no crash, no splat); a second unregister is -ENOENT; a new ring on
 * the same group then serves a new receive.
 * Exit: 0 pass, 1 fail, 77 skip.
 */
#include <errno.h>
#include <liburing.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define BGID 7
#define ENTRIES 8
#define BUF_LEN 64

static int fail(const char *what, int got)
{
	printf("FAIL: %s (got %d: %s)\n", what, got, got < 0 ? strerror(-got) : "-");
	return 1;
}

static struct io_uring_buf_ring *ring_with_buffers(struct io_uring *ring, char *bufs, int *ret)
{
	struct io_uring_buf_ring *br = io_uring_setup_buf_ring(ring, ENTRIES, BGID, 0, ret);

	if (!br)
		return NULL;
	for (int i = 0; i < ENTRIES; i++)
		io_uring_buf_ring_add(br, bufs + i * BUF_LEN, BUF_LEN, i, io_uring_buf_ring_mask(ENTRIES), i);
	io_uring_buf_ring_advance(br, ENTRIES);
	return br;
}

static void arm_recv(struct io_uring *ring, int fd, int multishot)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(ring);

	if (multishot)
		io_uring_prep_recv_multishot(sqe, fd, NULL, 0, 0);
	else
		io_uring_prep_recv(sqe, fd, NULL, BUF_LEN, 0);
	sqe->flags |= IOSQE_BUFFER_SELECT;
	sqe->buf_group = BGID;
	io_uring_submit(ring);
}

int main(void)
{
	static char bufs[ENTRIES * BUF_LEN];
	struct io_uring_buf_ring *br;
	struct io_uring_cqe *cqe;
	struct io_uring ring;
	struct __kernel_timespec ts = { .tv_sec = 0, .tv_nsec = 200 * 1000 * 1000 };
	int sv[2], ret;

	ret = io_uring_queue_init(16, &ring, 0);
	if (ret) {
		printf("SKIP: io_uring_queue_init: %s\n", strerror(-ret));
		return 77;
	}
	br = ring_with_buffers(&ring, bufs, &ret);
	if (!br) {
		printf("SKIP: no provided buffer rings: %s\n", strerror(-ret));
		return 77;
	}
	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv))
		return fail("socketpair", -errno);

	arm_recv(&ring, sv[0], 1);
	ret = io_uring_wait_cqe_timeout(&ring, &cqe, &ts);
	if (ret != -ETIME) {
		if (ret == 0 && cqe->res == -EINVAL) {
			printf("SKIP: no multishot receive\n");
			return 77;
		}
		return fail("the armed receive must wait for data", ret ? ret : cqe->res);
	}

	ret = io_uring_unregister_buf_ring(&ring, BGID);
	if (ret)
		return fail("unregistering a ring a pending receive uses", ret);
	printf("ok: unregistered under a pending multishot receive\n");

	if (write(sv[1], "hello", 5) != 5)
		return fail("write", -errno);
	ret = io_uring_wait_cqe(&ring, &cqe);
	if (ret)
		return fail("waiting for the receive", ret);
	if (cqe->res != -ENOBUFS)
		return fail("the receive after unregister must end with -ENOBUFS", cqe->res);
	if (cqe->flags & IORING_CQE_F_MORE)
		return fail("the receive must not stay armed (IORING_CQE_F_MORE set)", (int)cqe->flags);
	io_uring_cqe_seen(&ring, cqe);
	printf("ok: the receive ended with -ENOBUFS\n");

	ret = io_uring_unregister_buf_ring(&ring, BGID);
	if (ret != -ENOENT)
		return fail("a second unregister must be -ENOENT", ret);
	printf("ok: second unregister is -ENOENT\n");

	br = ring_with_buffers(&ring, bufs, &ret);
	if (!br)
		return fail("registering a new ring on the same group", ret);
	arm_recv(&ring, sv[0], 0);
	ret = io_uring_wait_cqe(&ring, &cqe);
	if (ret)
		return fail("waiting for the new receive", ret);
	if (cqe->res != 5 || !(cqe->flags & IORING_CQE_F_BUFFER))
		return fail("the new receive must get the 5 waiting bytes in a ring buffer", cqe->res);
	if (memcmp(bufs + (cqe->flags >> IORING_CQE_BUFFER_SHIFT) * BUF_LEN, "hello", 5))
		return fail("the data in the selected buffer", 0);
	io_uring_cqe_seen(&ring, cqe);
	printf("ok: a new ring on the same group serves a receive\n");
	io_uring_free_buf_ring(&ring, br, ENTRIES, BGID);
	io_uring_queue_exit(&ring);
	return 0;
}
