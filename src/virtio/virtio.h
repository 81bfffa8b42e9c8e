/* virtio.h: the virtio device model: a transport-independent device core and the device types.
 *
 * Layers:
 *
 *   guest driver --MMIO--> transport (virtio/pci.c: common cfg, ISR, notify, device cfg)
 *                              |  virtio_set_status / virtio_queue_enable / ops->config_*
 *                              v
 *                          struct virtio_dev (virtio/virtio.c: status machine, queues,
 *                              |              kick eventfds, interrupts, NEEDS_RESET)
 *                              v  ops->queue_notify (event-loop thread, dev->lock held)
 *                          device type (block.c, rng.c, console.c)
 *
 * Each device type's state struct embeds `struct virtio_dev` as its FIRST member and
 * describes itself with one `static const struct virtio_dev_ops`.
 *
 * Threads and locking: register accesses arrive on vCPU threads; queue processing, backend
 * completions and console input run on the event-loop thread. Both sides hold dev->lock:
 * the core takes it around every ops callback, so a device never takes it inside one. A
 * device's own event handlers (io_uring completions, stdin) take it themselves, and wrap
 * their queue work in virtio_dispatch_begin/end (the per-dispatch budget).
 * A reset (status 0) runs under the lock and returns only after ops->reset has stopped all
 * I/O, so when the driver reads status back as 0 nothing touches the rings any more. A
 * device whose I/O does not stop in time leaves the reset pending (reset_pending): the status
 * reads NEEDS_RESET until the I/O is back.
 */
#pragma once

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "util/compiler.h"
#include "virtio/queue.h"
#include "vmm/event.h"
#include "vmm/memory.h"

/* Device types (virtio 1.2, 5). */
#define VIRTIO_ID_NET 1
#define VIRTIO_ID_BLOCK 2
#define VIRTIO_ID_CONSOLE 3
#define VIRTIO_ID_RNG 4

/* Device status bits (2.1). */
#define VIRTIO_STATUS_ACKNOWLEDGE 1
#define VIRTIO_STATUS_DRIVER 2
#define VIRTIO_STATUS_DRIVER_OK 4
#define VIRTIO_STATUS_FEATURES_OK 8
#define VIRTIO_STATUS_NEEDS_RESET 64
#define VIRTIO_STATUS_FAILED 128

/* Transport-level feature bits (6). */
#define VIRTIO_RING_F_INDIRECT_DESC 28
#define VIRTIO_RING_F_EVENT_IDX 29
#define VIRTIO_F_VERSION_1 32

#define VIRTIO_MSI_NO_VECTOR 0xffff
/* ISR status bits (4.1.4.5). */
#define VIRTIO_ISR_QUEUE 1
#define VIRTIO_ISR_CONFIG 2

#define VIRTIO_MAX_QUEUES 8
#define VIRTIO_CONFIG_MAX 256 /* bytes of device-specific config a device may have */

#define BIT_ULL(n) (1ULL << (n))

struct virtio_dev;

struct virtio_dev_ops {
	const char *name;   /* "virtio-blk", for logs */
	uint16_t type;	    /* VIRTIO_ID_* */
	uint32_t pci_class; /* class << 16 | subclass << 8 | prog_if */
	/* Device-specific config (lock held; the transport has checked off + len against
	 * dev->config_size). Reads fill buf; writes to read-only fields are ignored. */
	void (*config_read)(struct virtio_dev *d, uint32_t off, void *buf, uint32_t len);
	void (*config_write)(struct virtio_dev *d, uint32_t off, const void *buf, uint32_t len);
	/* Queue q has new buffers (event-loop thread, lock held, queue ready). */
	void (*queue_notify)(struct virtio_dev *d, unsigned q);
	/* DRIVER_OK was set: features are final (lock held, any thread). Optional. Returns 0 or
	 * -errno, on which the device goes NEEDS_RESET. */
	int (*activate)(struct virtio_dev *d);
	/* Device reset (lock held, any thread): stop and drain in-flight I/O; after it returns
	 * the device touches neither the rings nor the buffers. The core then resets the queues.
	 * Optional. */
	void (*reset)(struct virtio_dev *d);
	/* Free the device (nothing runs any more). Must end with virtio_dev_cleanup(). */
	void (*destroy)(struct virtio_dev *d);
	/* Snapshot: true when no request is in flight and no chain is held between dispatches
	 * (lock held). Optional: a device that completes every chain within its dispatch. */
	bool (*quiesced)(struct virtio_dev *d);
	/* Snapshot (lock held, event-loop thread, vCPUs parked): finish the I/O in flight within
	 * ms, publishing its used entries as usual, so that quiesced becomes true. Optional:
	 * a device that never holds I/O across a return to the event loop has none. */
	void (*drain)(struct virtio_dev *d, unsigned ms);
};

struct virtio_queue {
	struct virtq vq;      /* size/addresses written by the driver through the transport */
	uint16_t max_size;    /* power of two */
	uint16_t msix_vector; /* VIRTIO_MSI_NO_VECTOR: none */
	bool enabled;
	uint16_t used_checked; /* used_idx at the last interrupt decision */
	int kick_efd;	       /* eventfd: target of the queue's ioeventfd (or the bus fallback) */
	bool kick_registered;  /* kick_efd is in the event loop */
	struct virtio_dev *dev;
	unsigned index;
};

/* Transport callbacks into the device core's owner. */
struct virtio_transport {
	/* Raise an interrupt on an MSI-X vector (any thread; never VIRTIO_MSI_NO_VECTOR). */
	void (*raise)(void *opaque, uint16_t vector);
	void *opaque;
};

struct virtio_dev {
	const struct virtio_dev_ops *ops;
	char id[VM_CONFIG_ID_MAX]; /* instance name for logs ("disk0", "rng") */
	pthread_mutex_t lock;
	const struct guest_mem *mem;
	struct event_loop *ev; /* NULL: kicks are processed by virtio_dev_process() (tests) */
	struct virtio_transport transport;

	uint64_t host_features;	  /* offered; VERSION_1 always */
	uint64_t driver_features; /* written by the driver; final once FEATURES_OK is set */
	uint32_t config_size;	  /* bytes of device-specific config */
	uint8_t status;
	uint8_t config_generation;
	uint8_t isr;
	uint16_t msix_config;
	/* Set by ops->reset when I/O it could not stop in time still owns guest buffers: the
	 * reset then stays in progress (status NEEDS_RESET, not 0) until the device calls
	 * virtio_dev_reset_done(). */
	bool reset_pending;
	unsigned nr_queues;
	struct virtio_queue queues[VIRTIO_MAX_QUEUES];
};

/* What a device needs from the VM. ev may be NULL (unit tests: no event loop). */
struct virtio_env {
	const struct guest_mem *mem;
	struct event_loop *ev;
};

/* ---- core (virtio.c) --------------------------------------------------------------------- */

/* Initialise the base: lock, queues (max size each, power of two <= VQ_MAX_SIZE), one kick
 * eventfd per queue, registered in env->ev when it is not NULL. VERSION_1 is added to
 * features. Returns 0 or -errno (nothing to clean up on error). */
int virtio_dev_init(struct virtio_dev *d, const struct virtio_dev_ops *ops, const char *id,
		    const struct virtio_env *env, uint64_t features, unsigned nr_queues,
		    uint16_t queue_max, uint32_t config_size) __must_check;
/* Undo virtio_dev_init (event-loop handlers removed, eventfds closed). */
void virtio_dev_cleanup(struct virtio_dev *d);
/* Destroy a device of any type (NULL is fine). */
void virtio_dev_destroy(struct virtio_dev *d);

/* Register protocol, for transports (lock held). */
void virtio_dev_reset(struct virtio_dev *d);
/* Finish a reset that ops->reset left pending (d->reset_pending): reset the queues and the
 * status to 0 (lock held; the device calls it once its last request is back). */
void virtio_dev_reset_done(struct virtio_dev *d);
/* A driver status write: 0 resets; FEATURES_OK is kept only if the driver's features are a
 * subset of the offered ones and include VERSION_1; DRIVER_OK activates the device. */
void virtio_set_status(struct virtio_dev *d, uint8_t status);
/* Write 32 bits of driver features (select 0: bits 0-31, 1: bits 32-63; others ignored).
 * Ignored once FEATURES_OK is set. */
void virtio_set_driver_features(struct virtio_dev *d, uint32_t select, uint32_t value);
uint32_t virtio_get_host_features(const struct virtio_dev *d, uint32_t select);
/* The driver wrote queue_enable = 1: check size (power of two, <= max) and the ring addresses
 * against guest RAM. A bad queue sets NEEDS_RESET. */
void virtio_queue_enable(struct virtio_dev *d, unsigned q);
/* Device config bytes changed: bump config_generation and raise the config interrupt. */
void virtio_config_changed(struct virtio_dev *d);

/* For devices (lock held). */
bool virtio_dev_has_feature(const struct virtio_dev *d, unsigned bit);
/* Queue q may be processed: DRIVER_OK, not NEEDS_RESET or FAILED, queue enabled. */
bool virtio_queue_ready(const struct virtio_dev *d, unsigned q);
/* After vq_push(es): interrupt the driver if anything was pushed since the last call and
 * vq_should_notify() says so. */
void virtio_queue_interrupt(struct virtio_dev *d, unsigned q);
/* The guest broke the protocol: set NEEDS_RESET, raise the config interrupt, log once per
 * reset (rate-limited). The device stops processing until the driver resets it. */
void virtio_dev_needs_reset(struct virtio_dev *d, const char *fmt, ...) __printf(2, 3);

/* Kick queue q as the guest would (the bus fallback of the notify area; any thread). */
void virtio_dev_kick(struct virtio_dev *d, unsigned q);
/* Run queue q's handler now if the queue is ready (takes the lock), as one dispatch (below).
 * For tests and for the event-loop kick handler. */
void virtio_dev_process(struct virtio_dev *d, unsigned q);

/* One dispatch of device work (event-loop thread, lock held). Every path that takes chains
 * off d's queues runs between these two calls: virtio_dev_process does it for kicks, and a
 * device's own event handlers (I/O completions, backend readiness, console input) call them
 * right after taking the lock and right before dropping it. begin gives each queue a budget
 * of one ring's worth of chains (its size; vq_budget_begin); end kicks every queue that ran
 * out with chains left, so the rest runs in a later event-loop round after the other event
 * sources (signals, the API, other devices), and puts a device whose ring vq_pop found
 * malformed in NEEDS_RESET. A chain taken outside a dispatch may leave its queue stalled. */
void virtio_dispatch_begin(struct virtio_dev *d);
void virtio_dispatch_end(struct virtio_dev *d);

/* ---- snapshot (virtio_state.c; snapshot/state.h, devices/devstate.h) -------------------- */

struct snap_buf;
struct snap_cursor;

/* One device's core state, decoded and checked, not yet applied. */
struct virtio_dev_state {
	uint64_t driver_features;
	uint8_t status, config_generation, isr;
	uint16_t msix_config;
	struct {
		struct virtq vq; /* ring addresses, size, engine indexes; host views if enabled */
		uint16_t msix_vector, used_checked;
		bool enabled;
	} queues[VIRTIO_MAX_QUEUES];
};

/* Nothing in flight (lock held): no reset pending and the device's ops->quiesced. The caller
 * of a save pauses the vCPUs and the event loop's device work, then waits for this. */
bool virtio_dev_quiesced(struct virtio_dev *d);
/* Building blocks (lock held for put and apply): put saves what the guest can see or set:
 * the type, queue count, offered features and device config (checked on load, so a device
 * configured differently, a disk whose capacity changed, is refused), driver features,
 * status, config generation, ISR, config vector, and per queue the size, enable, ring
 * addresses, vector and the ring engine's indexes (last_avail, used_idx, the event-idx
 * shadow). get decodes into *st and checks it against d; vectors must be below nr_vectors
 * (or VIRTIO_MSI_NO_VECTOR). apply installs it; resume then activates a device the driver had
 * started (ops->activate: backend offloads, write-through mode) and kicks its ready queues,
 * since a kick pending at save time is not in the snapshot. */
void virtio_dev_state_put(struct virtio_dev *d, struct snap_buf *b);
bool virtio_dev_state_get(struct virtio_dev *d, struct snap_cursor *c, unsigned nr_vectors,
			  struct virtio_dev_state *st);
void virtio_dev_state_apply(struct virtio_dev *d, const struct virtio_dev_state *st);
void virtio_dev_state_resume(struct virtio_dev *d);
/* A section of its own, for a device without a transport (tests); takes the lock. Save is
 * -EBUSY when the device is not quiesced; load is all or nothing (0, or -EINVAL with the
 * cursor bad). */
int virtio_dev_state_save(struct virtio_dev *d, struct snap_buf *b) __must_check;
int virtio_dev_state_load(struct virtio_dev *d, struct snap_cursor *c,
			  unsigned nr_vectors) __must_check;

/* ---- virtio-pci modern transport (pci.c) -------------------------------------------------- */

struct virtio_pci;
struct pci_bus;

/* Put d on the PCI bus: identity (0x1af4:0x1040+type), one 32-bit memory BAR with common,
 * ISR, device and notify areas plus the MSI-X table, vendor capabilities, MSI-X with one
 * vector per queue plus one for config changes, and a KVM ioeventfd per queue when
 * vm_fd >= 0. On success *out owns nothing but the transport; the caller still owns d. */
int virtio_pci_create(struct virtio_dev *d, struct pci_bus *bus, int vm_fd,
		      struct virtio_pci **out) __must_check;
/* Same, without a bus (unit tests): the PCI device is built but not added; interrupts are
 * counted instead of raised. */
int virtio_pci_create_detached(struct virtio_dev *d, struct virtio_pci **out) __must_check;
void virtio_pci_destroy(struct virtio_pci *vp);
/* BAR MMIO (what the bus calls) and config space, for tests. */
void virtio_pci_bar_io(void *opaque, uint64_t off, uint8_t *data, uint32_t len, bool is_write);
struct pci_device *virtio_pci_device(struct virtio_pci *vp);
/* Interrupts raised so far on vector v (detached devices only). */
unsigned virtio_pci_irq_count(const struct virtio_pci *vp, unsigned v);
/* Snapshot of the whole device: its PCI function (config space, BARs, MSI-X), the transport's
 * selectors and the device core (virtio_dev_state_put). Save is -EBUSY unless the device is
 * quiesced; load checks everything against the device built from the same configuration and
 * applies all or nothing (0, or -EINVAL with the cursor bad), before vCPUs run. */
int virtio_pci_state_save(struct virtio_pci *vp, struct snap_buf *b) __must_check;
int virtio_pci_state_load(struct virtio_pci *vp, struct snap_cursor *c) __must_check;

/* BAR 0 layout (all areas 4-byte aligned; the BAR is 16 KiB):
 *   0x0000 common cfg   0x0800 ISR        0x1000 device cfg
 *   0x2000 notify (4 bytes per queue)     0x3000 MSI-X table   0x3800 MSI-X PBA */
#define VIRTIO_PCI_BAR_SIZE 0x4000
#define VIRTIO_PCI_COMMON_OFF 0x0000
#define VIRTIO_PCI_ISR_OFF 0x0800
#define VIRTIO_PCI_DEVICE_OFF 0x1000
#define VIRTIO_PCI_NOTIFY_OFF 0x2000
#define VIRTIO_PCI_NOTIFY_MULT 4
#define VIRTIO_PCI_MSIX_TABLE_OFF 0x3000
#define VIRTIO_PCI_MSIX_PBA_OFF 0x3800

/* ---- device types ------------------------------------------------------------------------ */

/* Counters of one virtio-blk device (for metrics), updated on the event-loop thread. */
struct virtio_blk_stats {
	uint64_t read_reqs, write_reqs, flush_reqs, discard_reqs, write_zeroes_reqs, get_id_reqs;
	uint64_t read_bytes, write_bytes;
	uint64_t io_errors;    /* host I/O failed: IOERR to the guest */
	uint64_t bad_requests; /* malformed requests: IOERR/UNSUPP to the guest */
};

/* virtio-blk on the image cfg->path: opens and locks it (LOCK_EX, LOCK_SH when read-only),
 * picks the engine. On error a one-line message naming the disk. */
int virtio_blk_create(const struct virtio_env *env, const struct disk_config *cfg,
		      struct virtio_dev **out, char *err, size_t errlen) __must_check;
/* Snapshot of the counters (takes the lock). */
void virtio_blk_get_stats(struct virtio_dev *d, struct virtio_blk_stats *st);
/* The I/O engine in use: "io_uring" or "sync". */
const char *virtio_blk_engine(const struct virtio_dev *d);
/* Replace the image under a virtio-blk device while the guest runs (PATCH /drives), on the
 * event-loop thread: open and lock path as virtio_blk_create did (same read-only flag,
 * engine and cache mode; the image in use, given again, keeps its open file and lock),
 * complete the requests in flight on the old image, switch, set the new capacity and raise
 * a configuration change (config_generation, ISR bit 1 and the config vector, once the
 * driver is up). On error the device keeps its image and err names the disk and the path. */
int virtio_blk_set_path(struct virtio_dev *d, const char *path, char *err,
			size_t errlen) __must_check;

/* virtio-rng: fills the guest's buffers from getrandom(2). */
int virtio_rng_create(const struct virtio_env *env, struct virtio_dev **out, char *err,
		      size_t errlen) __must_check;

/* virtio-console, one port (hvc0): guest output to out_fd (-1: discarded) through an output
 * sink (vmm/output.h) that never waits for its reader, so the transmit queue never stalls the
 * event loop; input from in_fd (-1: none), read in the event loop only while the guest has
 * receive buffers. in_fd is made non-blocking; neither fd is closed by the device. */
int virtio_console_create(const struct virtio_env *env, int in_fd, int out_fd,
			  struct virtio_dev **out, char *err, size_t errlen) __must_check;
/* The console's output sink: its counters (metrics) and the final drain. */
struct output;
struct output *virtio_console_output(struct virtio_dev *d);
