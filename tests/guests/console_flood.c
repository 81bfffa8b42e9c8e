/* console_flood.c: a guest that never ends: numbered lines to hvc0 (virtio-console port 0's
 * transmit queue) as fast as the ring takes them, and every COM1_EVERY-th line to COM1 too, so
 * that a host test can check that a reader that never reads cannot make kiln unkillable, with
 * either output or both flooding it (console_flood.sh).
 */
#include "virtio_drv.h"

const char guest_name[] = "console_flood";

#define CONSOLE_TXQ 1 /* port 0: receiveq 0, transmitq 1 (5.3.2, no MULTIPORT) */
#define TX_LINE_MAX 96
/* kiln gives a transmit chain back as soon as it wrote, kept or dropped the bytes: a ring that
 * stays full this long means the device stopped, which is what issue 12 was. */
#define TX_STALL_US 4000000
/* COM1 costs two exits a byte, hvc0 one a line: at 1:1 COM1 would set the pace. */
#define COM1_EVERY 8

static struct vdev con;
static struct vq txq;
static char lines[VQ_SIZE_MAX][TX_LINE_MAX]; /* one line per descriptor: lines[head] */

static unsigned put_str(char *p, const char *s)
{
	unsigned n = 0;

	while (s[n]) {
		p[n] = s[n];
		n++;
	}
	return n;
}

static unsigned put_ulong(char *p, unsigned long v)
{
	char tmp[20];
	unsigned n = 0, len = 0;

	do {
		tmp[n++] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	while (n)
		p[len++] = tmp[--n];
	return len;
}

/* "hvc0 flood N: ...\n" into lines[head]. */
static unsigned format_line(char *p, unsigned long n)
{
	unsigned len = put_str(p, "hvc0 flood ");

	len += put_ulong(p + len, n);
	len += put_str(p + len, ": the quick brown fox jumps over the lazy dog\n");
	return len;
}

/* Take back every chain the device has used; wait for one if none is free. */
static void reclaim(void)
{
	uint32_t head, len;

	while (vq_get_used(&txq, 0, &head, &len))
		;
	if (vq_next_head(&txq) >= 0)
		return;
	if (!vq_get_used(&txq, TX_STALL_US, &head, &len))
		fail("hvc0: transmit ring full and nothing used for %u ms (status 0x%x)",
		     TX_STALL_US / 1000, vdev_status(&con));
}

void guest_main(void)
{
	if (!vdev_find(&con, VIRTIO_ID_CONSOLE))
		fail("no virtio-console on bus 0 (run kiln with --console)");
	vdev_negotiate(&con, 0);
	vdev_setup_queue(&con, &txq, CONSOLE_TXQ);
	vdev_driver_ok(&con);
	kprintf("READY console_flood: virtio-console at 00:%02x.0, transmit ring of %u\n", con.slot,
		txq.size);
	for (unsigned long n = 0;; n++) {
		reclaim();
		int h = vq_next_head(&txq);
		struct vbuf b = {lines[h], format_line(lines[h], n), false};

		if (vq_add(&txq, &b, 1) != h)
			fail("hvc0: vq_add did not take head %d", h);
		vq_kick(&txq);
		if (n % COM1_EVERY == 0)
			kprintf("com1 flood %lu: the quick brown fox jumps over the lazy dog\n", n);
	}
}
