/* i8042.c: PS/2 controller with no devices behind it: status, command byte, self-tests, reset. */
#include "devices/i8042.h"

#include <errno.h>
#include <string.h>

#include "devices/devstate.h"
#include "util/log.h"

/*
 * Two ports, each registered as its own one-byte bus range:
 *
 *   0x60 read   output buffer (replies to controller commands), clears OBF
 *   0x60 write  data byte for a pending command (0x60, 0xD1..0xD4), else to the keyboard,
 *               which is absent: ignored
 *   0x64 read   status register
 *   0x64 write  controller command
 *
 * There is no keyboard or mouse, and no IRQ 1/12: every reply is polled by the guest.
 * The CPU reset line is bit 0 of the output port; pulsing it (0xFE, or any 0xF0-0xFE
 * command with bit 0 clear) or writing it 0 (0xD1) asks the VM to reset.
 */

#define STATUS_OBF 0x01     /* output buffer full */
#define STATUS_SYS 0x04     /* system flag, mirrors command byte bit 2 */
#define STATUS_CMD 0x08     /* last write was to the command port */
#define STATUS_UNLOCK 0x10  /* keyboard not inhibited by the keylock */
#define STATUS_AUXDATA 0x20 /* output buffer holds AUX data */

#define CTR_KBDINT 0x01
#define CTR_SYS 0x04
#define CTR_KBDDIS 0x10
#define CTR_AUXDIS 0x20
#define CTR_XLATE 0x40
/* What a PC BIOS leaves behind: translation on, POST passed, keyboard interrupt on. */
#define CTR_DEFAULT (CTR_XLATE | CTR_SYS | CTR_KBDINT)

#define OUTPORT_RESET 0x01 /* 1 = CPU running; 0 = held in reset */
#define OUTPORT_A20 0x02
#define OUTPORT_DEFAULT (OUTPORT_RESET | OUTPORT_A20)

enum {
	CMD_READ_CTR = 0x20,
	CMD_WRITE_CTR = 0x60,
	CMD_AUX_DISABLE = 0xa7,
	CMD_AUX_ENABLE = 0xa8,
	CMD_AUX_TEST = 0xa9,
	CMD_SELF_TEST = 0xaa,
	CMD_KBD_TEST = 0xab,
	CMD_KBD_DISABLE = 0xad,
	CMD_KBD_ENABLE = 0xae,
	CMD_READ_OUTPORT = 0xd0,
	CMD_WRITE_OUTPORT = 0xd1,
	CMD_WRITE_KBD_OBUF = 0xd2,
	CMD_WRITE_AUX_OBUF = 0xd3,
	CMD_WRITE_AUX = 0xd4,
	CMD_PULSE_FIRST = 0xf0,
};

#define REPLY_SELF_TEST_OK 0x55
#define REPLY_IFACE_OK 0x00

/* Guest-triggered messages: a token bucket per call site, checked only if they would print. */
#define i8042_log_limited(level, ...)                                                              \
	do {                                                                                       \
		static struct log_ratelimit rl__;                                                  \
		if (log_get_level() >= (level) && log_ratelimit_ok(&rl__, 5, 1000))                \
			log_msg((level), __FILE__, __LINE__, __VA_ARGS__);                         \
	} while (0)

static void reply(struct i8042 *k, uint8_t v, bool aux)
{
	/* One-byte buffer: a reply the guest never read is overwritten. */
	k->outbuf = v;
	k->outbuf_full = true;
	k->outbuf_aux = aux;
}

static uint8_t status(const struct i8042 *k)
{
	uint8_t st = STATUS_UNLOCK;

	if (k->outbuf_full)
		st |= STATUS_OBF | (k->outbuf_aux ? STATUS_AUXDATA : 0);
	if (k->cmd_byte & CTR_SYS)
		st |= STATUS_SYS;
	if (k->last_was_cmd)
		st |= STATUS_CMD;
	return st;
}

/* Returns true if the guest asked for a CPU reset. Called with k->lock held. */
static bool command(struct i8042 *k, uint8_t cmd)
{
	k->pending_cmd = 0; /* a new command abandons one still waiting for its data byte */

	switch (cmd) {
	case CMD_READ_CTR:
		reply(k, k->cmd_byte, false);
		return false;
	case CMD_WRITE_CTR:
	case CMD_WRITE_OUTPORT:
	case CMD_WRITE_KBD_OBUF:
	case CMD_WRITE_AUX_OBUF:
	case CMD_WRITE_AUX:
		k->pending_cmd = cmd;
		return false;
	case CMD_AUX_DISABLE:
		k->cmd_byte |= CTR_AUXDIS;
		return false;
	case CMD_AUX_ENABLE:
		k->cmd_byte &= (uint8_t)~CTR_AUXDIS;
		return false;
	case CMD_KBD_DISABLE:
		k->cmd_byte |= CTR_KBDDIS;
		return false;
	case CMD_KBD_ENABLE:
		k->cmd_byte &= (uint8_t)~CTR_KBDDIS;
		return false;
	case CMD_AUX_TEST:
	case CMD_KBD_TEST:
		reply(k, REPLY_IFACE_OK, false);
		return false;
	case CMD_SELF_TEST:
		k->cmd_byte |= CTR_SYS;
		reply(k, REPLY_SELF_TEST_OK, false);
		return false;
	case CMD_READ_OUTPORT:
		reply(k, k->outport, false);
		return false;
	default:
		break;
	}
	if (cmd >= CMD_PULSE_FIRST)
		return !(cmd & OUTPORT_RESET); /* low nibble: 0 = pulse that output line */
	i8042_log_limited(LOG_DEBUG, "i8042: ignoring command 0x%02x", cmd);
	return false;
}

/* The data byte of a two-byte command. Returns true if it resets the CPU. */
static bool command_data(struct i8042 *k, uint8_t cmd, uint8_t v)
{
	switch (cmd) {
	case CMD_WRITE_CTR:
		k->cmd_byte = v;
		return false;
	case CMD_WRITE_OUTPORT:
		k->outport = v;
		return !(v & OUTPORT_RESET);
	case CMD_WRITE_KBD_OBUF:
		reply(k, v, false);
		return false;
	case CMD_WRITE_AUX_OBUF:
		reply(k, v, true); /* AUX loopback: comes back as if the mouse sent it */
		return false;
	default:
		return false; /* CMD_WRITE_AUX: no mouse to receive it */
	}
}

void i8042_data_io(void *opaque, uint64_t offset, uint8_t *data, uint32_t len, bool is_write)
{
	struct i8042 *k = opaque;
	bool reset = false;

	if (!len)
		return;
	if (!is_write)
		memset(data, 0xff, len);
	if (offset != 0)
		return;

	pthread_mutex_lock(&k->lock);
	if (is_write) {
		uint8_t cmd = k->pending_cmd;
		k->last_was_cmd = false;
		k->pending_cmd = 0;
		if (cmd)
			reset = command_data(k, cmd, data[0]);
		/* else: a byte for the keyboard, which is absent */
	} else {
		data[0] = k->outbuf; /* stale byte if the buffer is empty, like the real part */
		k->outbuf_full = false;
		k->outbuf_aux = false;
	}
	pthread_mutex_unlock(&k->lock);

	if (reset) {
		i8042_log_limited(LOG_INFO, "i8042: guest reset via output port write");
		vm_stopper_request(&k->stop, VM_STOP_RESET);
	}
}

void i8042_cmd_io(void *opaque, uint64_t offset, uint8_t *data, uint32_t len, bool is_write)
{
	struct i8042 *k = opaque;
	bool reset = false;
	uint8_t cmd = 0;

	if (!len)
		return;
	if (!is_write)
		memset(data, 0xff, len);
	if (offset != 0)
		return;

	pthread_mutex_lock(&k->lock);
	if (is_write) {
		cmd = data[0];
		k->last_was_cmd = true;
		reset = command(k, cmd);
	} else {
		data[0] = status(k);
	}
	pthread_mutex_unlock(&k->lock);

	if (reset) {
		i8042_log_limited(LOG_INFO, "i8042: guest reset via command 0x%02x", cmd);
		vm_stopper_request(&k->stop, VM_STOP_RESET);
	}
}

void i8042_init(struct i8042 *k, struct vm_stopper stop)
{
	memset(k, 0, sizeof(*k));
	pthread_mutex_init(&k->lock, NULL);
	k->stop = stop;
	k->cmd_byte = CTR_DEFAULT;
	k->outport = OUTPORT_DEFAULT;
}

/* ---- snapshot ------------------------------------------------------------------------- */

int i8042_state_save(struct i8042 *k, struct snap_buf *b)
{
	pthread_mutex_lock(&k->lock);
	devstate_put_header(b);
	snap_put_u8(b, k->cmd_byte);
	snap_put_u8(b, k->pending_cmd);
	snap_put_u8(b, k->outport);
	snap_put_u8(b, k->outbuf);
	snap_put_bool(b, k->outbuf_full);
	snap_put_bool(b, k->outbuf_aux);
	snap_put_bool(b, k->last_was_cmd);
	pthread_mutex_unlock(&k->lock);
	return snap_buf_failed(b);
}

/* The commands that wait for a data byte on 0x60 (see command()). */
static bool takes_data(uint8_t cmd)
{
	return cmd == CMD_WRITE_CTR || (cmd >= CMD_WRITE_OUTPORT && cmd <= CMD_WRITE_AUX);
}

int i8042_state_load(struct i8042 *k, struct snap_cursor *c)
{
	struct i8042 t = {0};

	if (!devstate_get_header(c))
		return -EINVAL;
	t.cmd_byte = snap_get_u8(c);
	t.pending_cmd = snap_get_u8(c);
	t.outport = snap_get_u8(c);
	t.outbuf = snap_get_u8(c);
	t.outbuf_full = snap_get_bool(c);
	t.outbuf_aux = snap_get_bool(c);
	t.last_was_cmd = snap_get_bool(c);
	if (c->bad)
		return -EINVAL;
	if (t.pending_cmd && !takes_data(t.pending_cmd))
		snap_cursor_fail(c, "pending command 0x%02x takes no data byte", t.pending_cmd);
	else if (t.outbuf_aux && !t.outbuf_full)
		snap_cursor_fail(c, "AUX data flag set on an empty output buffer");
	if (!devstate_done(c))
		return -EINVAL;

	pthread_mutex_lock(&k->lock);
	k->cmd_byte = t.cmd_byte;
	k->pending_cmd = t.pending_cmd;
	k->outport = t.outport;
	k->outbuf = t.outbuf;
	k->outbuf_full = t.outbuf_full;
	k->outbuf_aux = t.outbuf_aux;
	k->last_was_cmd = t.last_was_cmd;
	pthread_mutex_unlock(&k->lock);
	return 0;
}
