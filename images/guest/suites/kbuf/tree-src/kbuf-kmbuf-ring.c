// SPDX-License-Identifier: MIT
/*
 * Kernel-managed buffer rings (the "kmbuf" series: io_uring allocates the
 * buffers, userspace maps them). Built by build-tree.sh against the uapi
 * header of the tree under test, so the register opcodes are the tree's own
 * (they differ between revisions of the series); raw system calls only, no
 * liburing, whose bundled header would not know them.
 *
 * Feature probe: when the tree's uapi declares no IORING_REGISTER_KMBUF_RING
 * (build-tree.sh passes -DPATCHBAY_TREE_HAS_KMBUF only when it does), the
 * test SKIPs. When it does, the kernel must implement it:
 *   - a ring of 8 page-sized buffers registers; a second one on the same
 *     group is -EEXIST;
 *   - a buffer size of 0 or one that is not page aligned, and a ring size
 *     that is not a power of two, are -EINVAL and leave no group behind;
 *   - when the uapi has IORING_OFF_KMBUF_RING: the buffers map at the
 *     group's offset, read as zero and are writable; a group with no ring
 *     does not map;
 *   - unregister succeeds, a second unregister is -ENOENT, and the group
 *     then takes an ordinary provided buffer ring;
 *   - closing the io_uring with a kernel-managed ring registered (and
 *     mapped) frees it (ktap.sh fails the test on any splat).
 * Exit: 0 pass, 1 fail, 77 skip.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <linux/io_uring.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef PATCHBAY_TREE_HAS_KMBUF
int main(void)
{
	printf("SKIP: the tree's include/uapi/linux/io_uring.h declares no IORING_REGISTER_KMBUF_RING\n");
	return 77;
}
#else

#define BGID 3
#define ENTRIES 8

static int failures;

static void check(int ok, const char *what, long got)
{
	printf("%s: %s (got %ld%s%s)\n", ok ? "ok" : "FAIL", what, got, got < 0 ? ": " : "", got < 0 ? strerror((int)-got) : "");
	if (!ok)
		failures++;
}

static long reg(int fd, unsigned int op, void *arg)
{
	long r = syscall(__NR_io_uring_register, fd, op, arg, 1);

	return r < 0 ? -errno : r;
}

static long kmbuf_register(int fd, unsigned int buf_size, unsigned int entries, unsigned short bgid)
{
	struct io_uring_buf_reg r;

	memset(&r, 0, sizeof(r));
	r.buf_size = buf_size;
	r.ring_entries = entries;
	r.bgid = bgid;
	return reg(fd, IORING_REGISTER_KMBUF_RING, &r);
}

static long kmbuf_unregister(int fd, unsigned short bgid)
{
	struct io_uring_buf_reg r;

	memset(&r, 0, sizeof(r));
	r.bgid = bgid;
	return reg(fd, IORING_UNREGISTER_KMBUF_RING, &r);
}

static int ring_fd(void)
{
	struct io_uring_params p;

	memset(&p, 0, sizeof(p));
	return (int)syscall(__NR_io_uring_setup, 4, &p);
}

int main(void)
{
	long page = sysconf(_SC_PAGESIZE);
	int fd = ring_fd();
	long r;

	if (fd < 0) {
		printf("SKIP: io_uring_setup: %s\n", strerror(errno));
		return 77;
	}

	r = kmbuf_register(fd, (unsigned int)page, ENTRIES, BGID);
	check(r == 0, "register 8 page-sized kernel-managed buffers", r);
	if (r != 0)
		return 1;
	r = kmbuf_register(fd, (unsigned int)page, ENTRIES, BGID);
	check(r == -EEXIST, "a second ring on the same group is -EEXIST", r);

	r = kmbuf_register(fd, 0, ENTRIES, BGID + 1);
	check(r == -EINVAL, "buffer size 0 is -EINVAL", r);
	r = kmbuf_register(fd, (unsigned int)page + 100, ENTRIES, BGID + 1);
	check(r == -EINVAL, "a buffer size that is not page aligned is -EINVAL", r);
	r = kmbuf_register(fd, (unsigned int)page, 3, BGID + 1);
	check(r == -EINVAL, "3 entries (not a power of two) is -EINVAL", r);
	r = kmbuf_unregister(fd, BGID + 1);
	check(r == -ENOENT, "the refused registrations left no group behind", r);

#ifdef IORING_OFF_KMBUF_RING
	{
		size_t len = (size_t)page * ENTRIES;
		off_t off = (off_t)(IORING_OFF_KMBUF_RING | ((unsigned long long)BGID << IORING_OFF_KMBUF_SHIFT));
		unsigned char *m = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, off);
		int zero = 1;

		check(m != MAP_FAILED, "the group's buffers map at its offset", m == MAP_FAILED ? -errno : 0);
		if (m != MAP_FAILED) {
			for (size_t i = 0; i < len; i++)
				zero &= m[i] == 0;
			check(zero, "the buffers read as zero", 0);
			m[0] = 0xa5;
			m[len - 1] = 0x5a;
			check(m[0] == 0xa5 && m[len - 1] == 0x5a, "the buffers are writable end to end", 0);
			munmap(m, len);
		}
		off = (off_t)(IORING_OFF_KMBUF_RING | ((unsigned long long)(BGID + 2) << IORING_OFF_KMBUF_SHIFT));
		m = mmap(NULL, (size_t)page, PROT_READ, MAP_SHARED, fd, off);
		check(m == MAP_FAILED, "a group with no ring does not map", m == MAP_FAILED ? -errno : 0);
		if (m != MAP_FAILED)
			munmap(m, (size_t)page);
	}
#else
	printf("# the tree's uapi has no IORING_OFF_KMBUF_RING: mapping not checked\n");
#endif

	r = kmbuf_unregister(fd, BGID);
	check(r == 0, "unregister", r);
	r = kmbuf_unregister(fd, BGID);
	check(r == -ENOENT, "a second unregister is -ENOENT", r);
	{
		struct io_uring_buf_reg p;

		memset(&p, 0, sizeof(p));
		p.ring_entries = ENTRIES;
		p.bgid = BGID;
		p.flags = IOU_PBUF_RING_MMAP;
		r = reg(fd, IORING_REGISTER_PBUF_RING, &p);
		check(r == 0, "the group then takes an ordinary provided buffer ring", r);
	}
	close(fd);

	fd = ring_fd();
	r = kmbuf_register(fd, (unsigned int)page * 2, ENTRIES, BGID);
	check(r == 0, "a ring of 2-page buffers registers on a new io_uring", r);
#ifdef IORING_OFF_KMBUF_RING
	{
		off_t off = (off_t)(IORING_OFF_KMBUF_RING | ((unsigned long long)BGID << IORING_OFF_KMBUF_SHIFT));
		void *m = mmap(NULL, (size_t)page * 2 * ENTRIES, PROT_READ, MAP_SHARED, fd, off);

		check(m != MAP_FAILED, "and maps", m == MAP_FAILED ? -errno : 0);
		/* Left mapped and registered: closing the io_uring must free it. */
	}
#endif
	close(fd);

	return failures ? 1 : 0;
}
#endif
