/* uffd.h: the Uffd memory backend of snapshot load: guest RAM registered with userfaultfd and
 * handed, with its layout, to an external page-fault handler (Firecracker's handshake). */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "util/compiler.h"
#include "vmm/memory.h"

/* How long attach waits for the handler to accept the connection and take the message. */
#define UFFD_HANDSHAKE_TIMEOUT_MS 5000

/*
 * What kiln keeps while the guest RAM it was attached to exists. Both stay open on purpose (as
 * in Firecracker): with kiln's copy of the uffd alive, a handler that dies leaves faulting
 * threads waiting instead of the kernel silently filling guest RAM with zero pages; the open
 * connection is how the handler learns that kiln is gone (it hangs up when kiln exits or calls
 * uffd_backend_close), and kiln's event loop can watch sock for POLLRDHUP | POLLHUP to learn
 * that the handler is gone.
 */
struct uffd_backend {
	int uffd;	   /* O_CLOEXEC | O_NONBLOCK; kiln never reads it */
	int sock;	   /* the connected Unix stream socket to the handler */
	uint64_t features; /* UFFD_FEATURE_* the kernel granted (UFFD_FEATURE_EVENT_REMOVE) */
};

/*
 * The handshake message: a JSON array with one object per region of m, in region order, as
 * Firecracker sends it:
 *   [{"base_host_virt_addr":H,"size":S,"offset":O,"page_size":4096,"page_size_kib":4096},...]
 * (offset = the region's RAM offset = its offset in the memory file; page_size in bytes, and
 * page_size_kib, deprecated in Firecracker, also in bytes despite its name). Writes it to buf
 * with a terminating NUL; returns its length, or -ENOSPC if it does not fit in len bytes.
 */
int uffd_mappings_json(const struct guest_mem *m, char *buf, size_t len) __must_check;

/*
 * Lay out and map ram_size bytes of guest RAM anonymously (guest_mem_init), register every
 * region with a new userfaultfd for missing pages (UFFD_FEATURE_EVENT_REMOVE requested: a
 * MADV_DONTNEED on guest RAM then waits until the handler has read the event), connect to the
 * handler's Unix socket sock_path and send uffd_mappings_json() with the uffd as SCM_RIGHTS
 * in the same sendmsg; then wait until the handler has read the message. Every wait (the
 * listener's full backlog, the send, the handler taking the message) ends within timeout_ms
 * (UFFD_HANDSHAKE_TIMEOUT_MS in kiln) with -ETIMEDOUT.
 *
 * No page of m may have been touched before this: it maps m itself. Afterwards every first
 * access to guest RAM - by a vCPU through KVM, by kiln, by the kernel on kiln's behalf (a
 * read() into guest RAM) - waits until the handler fills the page. The uffd is created
 * without UFFD_USER_MODE_ONLY on purpose: KVM's and the kernel's faults are not user-mode
 * faults, and with that flag they fail (EFAULT, SIGBUS) instead of reaching the handler.
 *
 * Returns 0 with m mapped and ub filled, or -errno with one line in err (the field and the
 * problem, e.g. "mem_backend: backend_path /run/h.sock: connect: Connection refused") and m
 * and ub left empty (ub's fds -1).
 */
int uffd_backend_attach(struct guest_mem *m, uint64_t ram_size, const char *sock_path,
			int timeout_ms, struct uffd_backend *ub, char *err,
			size_t errlen) __must_check;

/* Close ub's fds (idempotent). Call with, or after, guest_mem_destroy of the RAM it served. */
void uffd_backend_close(struct uffd_backend *ub);
