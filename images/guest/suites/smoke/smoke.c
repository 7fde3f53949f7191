// SPDX-License-Identifier: GPL-2.0
/*
 * patchbay smoke suite: io_uring setup, and registering, using and
 * unregistering a provided buffer ring. Raw syscalls only, so it runs in a
 * static busybox guest and depends on nothing but the kernel's uapi.
 * Prints KTAP v1; exits 0 when every test passed, 1 otherwise.
 */
#include <errno.h>
#include <linux/io_uring.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#define NTESTS 6
#define BGID 7
#define NBUFS 8
#define BUFSZ 256

struct ring {
	int fd;
	struct io_uring_params p;
	void *sq_ptr, *cq_ptr;
	size_t sq_sz, cq_sz;
	unsigned *sq_head, *sq_tail, *sq_mask, *sq_array;
	unsigned *cq_head, *cq_tail, *cq_mask;
	struct io_uring_sqe *sqes;
	struct io_uring_cqe *cqes;
};

static int test_no;
static int failed;

static void result(int ok, const char *name, const char *fmt, ...)
{
	char why[256] = "";
	va_list ap;

	if (fmt) {
		va_start(ap, fmt);
		vsnprintf(why, sizeof(why), fmt, ap);
		va_end(ap);
	}
	test_no++;
	if (!ok) {
		failed++;
		if (why[0])
			printf("# %s: %s\n", name, why);
	}
	printf("%s %d %s\n", ok ? "ok" : "not ok", test_no, name);
	fflush(stdout);
}

static void skip(const char *name, const char *why)
{
	test_no++;
	printf("ok %d %s # SKIP %s\n", test_no, name, why);
	fflush(stdout);
}

static int sys_setup(unsigned entries, struct io_uring_params *p)
{
	return (int)syscall(__NR_io_uring_setup, entries, p);
}

static int sys_enter(int fd, unsigned to_submit, unsigned min_complete, unsigned flags)
{
	return (int)syscall(__NR_io_uring_enter, fd, to_submit, min_complete, flags, NULL, 0);
}

static int sys_register(int fd, unsigned op, void *arg, unsigned nr)
{
	return (int)syscall(__NR_io_uring_register, fd, op, arg, nr);
}

static int ring_init(struct ring *r, unsigned entries)
{
	memset(r, 0, sizeof(*r));
	r->fd = sys_setup(entries, &r->p);
	if (r->fd < 0)
		return -errno;
	r->sq_sz = r->p.sq_off.array + r->p.sq_entries * sizeof(unsigned);
	r->cq_sz = r->p.cq_off.cqes + r->p.cq_entries * sizeof(struct io_uring_cqe);
	if (r->p.features & IORING_FEAT_SINGLE_MMAP) {
		if (r->cq_sz > r->sq_sz)
			r->sq_sz = r->cq_sz;
		r->cq_sz = r->sq_sz;
	}
	r->sq_ptr = mmap(NULL, r->sq_sz, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE,
			 r->fd, IORING_OFF_SQ_RING);
	if (r->sq_ptr == MAP_FAILED)
		return -errno;
	r->cq_ptr = r->sq_ptr;
	if (!(r->p.features & IORING_FEAT_SINGLE_MMAP)) {
		r->cq_ptr = mmap(NULL, r->cq_sz, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE,
				 r->fd, IORING_OFF_CQ_RING);
		if (r->cq_ptr == MAP_FAILED)
			return -errno;
	}
	r->sqes = mmap(NULL, r->p.sq_entries * sizeof(struct io_uring_sqe), PROT_READ | PROT_WRITE,
		       MAP_SHARED | MAP_POPULATE, r->fd, IORING_OFF_SQES);
	if (r->sqes == MAP_FAILED)
		return -errno;
	r->sq_head = (unsigned *)((char *)r->sq_ptr + r->p.sq_off.head);
	r->sq_tail = (unsigned *)((char *)r->sq_ptr + r->p.sq_off.tail);
	r->sq_mask = (unsigned *)((char *)r->sq_ptr + r->p.sq_off.ring_mask);
	r->sq_array = (unsigned *)((char *)r->sq_ptr + r->p.sq_off.array);
	r->cq_head = (unsigned *)((char *)r->cq_ptr + r->p.cq_off.head);
	r->cq_tail = (unsigned *)((char *)r->cq_ptr + r->p.cq_off.tail);
	r->cq_mask = (unsigned *)((char *)r->cq_ptr + r->p.cq_off.ring_mask);
	r->cqes = (struct io_uring_cqe *)((char *)r->cq_ptr + r->p.cq_off.cqes);
	return 0;
}

static struct io_uring_sqe *get_sqe(struct ring *r)
{
	unsigned tail = *r->sq_tail;
	unsigned idx = tail & *r->sq_mask;
	struct io_uring_sqe *sqe = &r->sqes[idx];

	memset(sqe, 0, sizeof(*sqe));
	r->sq_array[idx] = idx;
	atomic_store_explicit((_Atomic unsigned *)r->sq_tail, tail + 1, memory_order_release);
	return sqe;
}

/* Submits what is queued and waits for one completion; returns it by copy. */
static int submit_and_wait(struct ring *r, struct io_uring_cqe *out)
{
	unsigned head;
	int ret = sys_enter(r->fd, 1, 1, IORING_ENTER_GETEVENTS);

	if (ret < 0)
		return -errno;
	head = *r->cq_head;
	if (head == atomic_load_explicit((_Atomic unsigned *)r->cq_tail, memory_order_acquire))
		return -EAGAIN;
	*out = r->cqes[head & *r->cq_mask];
	atomic_store_explicit((_Atomic unsigned *)r->cq_head, head + 1, memory_order_release);
	return 0;
}

int main(void)
{
	struct io_uring_buf_reg reg;
	struct io_uring_buf_ring *br = NULL;
	struct io_uring_cqe cqe;
	struct ring r;
	char *bufs = NULL;
	size_t ring_sz = NBUFS * sizeof(struct io_uring_buf);
	int pipefd[2];
	int ret, registered = 0, have_ring = 0;

	printf("KTAP version 1\n1..%d\n", NTESTS);
	fflush(stdout);

	ret = ring_init(&r, 8);
	have_ring = ret == 0;
	result(have_ring, "io_uring_setup", "io_uring_setup/mmap: %s", strerror(-ret));
	if (!have_ring) {
		for (int i = 1; i < NTESTS; i++)
			skip("(no ring)", "io_uring_setup failed");
		return 1;
	}

	/* Register a provided buffer ring backed by our own memory. */
	br = mmap(NULL, ring_sz, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	bufs = malloc(NBUFS * BUFSZ);
	memset(&reg, 0, sizeof(reg));
	reg.ring_addr = (unsigned long)br;
	reg.ring_entries = NBUFS;
	reg.bgid = BGID;
	ret = sys_register(r.fd, IORING_REGISTER_PBUF_RING, &reg, 1);
	registered = ret == 0;
	result(registered, "pbuf_ring_register", "IORING_REGISTER_PBUF_RING: %s",
	       ret < 0 ? strerror(errno) : "");

	/* The same group id twice is refused with EEXIST. */
	ret = sys_register(r.fd, IORING_REGISTER_PBUF_RING, &reg, 1);
	result(ret < 0 && errno == EEXIST, "pbuf_ring_register_duplicate",
	       "second register of bgid %d: ret=%d errno=%s (want EEXIST)", BGID, ret,
	       ret < 0 ? strerror(errno) : "none");

	/* Publish the buffers and read from a pipe with buffer selection. */
	if (!registered || pipe(pipefd) < 0) {
		skip("pbuf_ring_read_select", "no registered ring");
	} else {
		static const char msg[] = "patchbay provided buffer";
		unsigned short tail = 0;
		struct io_uring_sqe *sqe;
		unsigned bid;

		for (unsigned i = 0; i < NBUFS; i++) {
			struct io_uring_buf *b = &br->bufs[(tail + i) & (NBUFS - 1)];

			b->addr = (unsigned long)(bufs + i * BUFSZ);
			b->len = BUFSZ;
			b->bid = (unsigned short)i;
		}
		tail += NBUFS;
		atomic_store_explicit((_Atomic unsigned short *)&br->tail, tail, memory_order_release);

		ret = (int)write(pipefd[1], msg, sizeof(msg) - 1);
		sqe = get_sqe(&r);
		sqe->opcode = IORING_OP_READ;
		sqe->fd = pipefd[0];
		sqe->flags = IOSQE_BUFFER_SELECT;
		sqe->buf_group = BGID;
		sqe->len = BUFSZ;
		sqe->user_data = 42;
		ret = submit_and_wait(&r, &cqe);
		if (ret < 0) {
			result(0, "pbuf_ring_read_select", "submit: %s", strerror(-ret));
		} else if (cqe.res != (int)(sizeof(msg) - 1) || !(cqe.flags & IORING_CQE_F_BUFFER)) {
			result(0, "pbuf_ring_read_select", "cqe res=%d flags=0x%x (want res=%zu with F_BUFFER)",
			       cqe.res, cqe.flags, sizeof(msg) - 1);
		} else {
			bid = cqe.flags >> IORING_CQE_BUFFER_SHIFT;
			result(bid < NBUFS && memcmp(bufs + bid * BUFSZ, msg, sizeof(msg) - 1) == 0,
			       "pbuf_ring_read_select", "buffer %u does not hold the data read", bid);
		}
	}

	/* Unregister, then a second unregister finds nothing. */
	memset(&reg, 0, sizeof(reg));
	reg.bgid = BGID;
	ret = sys_register(r.fd, IORING_UNREGISTER_PBUF_RING, &reg, 1);
	result(ret == 0, "pbuf_ring_unregister", "IORING_UNREGISTER_PBUF_RING: %s",
	       ret < 0 ? strerror(errno) : "");
	ret = sys_register(r.fd, IORING_UNREGISTER_PBUF_RING, &reg, 1);
	result(ret < 0 && errno == ENOENT, "pbuf_ring_unregister_again",
	       "second unregister: ret=%d errno=%s (want ENOENT)", ret,
	       ret < 0 ? strerror(errno) : "none");

	printf("# totals: pass:%d fail:%d\n", test_no - failed, failed);
	return failed ? 1 : 0;
}
