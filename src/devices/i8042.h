/* i8042.h: the bit of the PS/2 controller a microVM needs: status reads and the 0xFE CPU reset. */
#pragma once

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "devices/stop.h"

#define I8042_DATA_PORT 0x60
#define I8042_CMD_PORT 0x64

struct i8042 {
	pthread_mutex_t lock; /* several vCPUs may poke the ports */
	struct vm_stopper stop;
	uint8_t cmd_byte;    /* controller configuration byte */
	uint8_t pending_cmd; /* command awaiting a data byte on 0x60, 0 if none */
	uint8_t outport;     /* output port: bit 0 = CPU not in reset, bit 1 = A20 */
	uint8_t outbuf;
	bool outbuf_full;
	bool outbuf_aux;   /* the pending byte came from the AUX (mouse) side */
	bool last_was_cmd; /* status bit 3: last write went to 0x64 */
};

/* Holds no resources beyond a default mutex: no destroy needed. */
void i8042_init(struct i8042 *k, struct vm_stopper stop);
/* Bus callback; register it twice: at 0x60 (offset 0) and at 0x64 (offset 0), see i8042.c. */
void i8042_data_io(void *opaque, uint64_t offset, uint8_t *data, uint32_t len, bool is_write);
void i8042_cmd_io(void *opaque, uint64_t offset, uint8_t *data, uint32_t len, bool is_write);

/* Snapshot (snapshot/state.h, devices/devstate.h): command byte, pending two-byte command,
 * output port, output buffer and status flags. Load checks them and applies all or nothing (0,
 * or -EINVAL with the cursor bad). */
struct snap_buf;
struct snap_cursor;
int i8042_state_save(struct i8042 *k, struct snap_buf *b);
int i8042_state_load(struct i8042 *k, struct snap_cursor *c);
