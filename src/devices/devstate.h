/* devstate.h: helpers shared by the devices' snapshot save/load functions (snapshot/state.h).
 *
 * Every X_state_load() decodes its section into a local copy, checks each field against what
 * the device could hold, and applies nothing unless the whole section was valid and consumed:
 * on error the device is untouched, the cursor is bad and snap_cursor_end() gives the one line
 * ("section 'serial': IER 0xf0 has bits a 16550A does not hold").
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "snapshot/state.h"

/* The layout version every device section starts with. */
#define DEVSTATE_VERSION 1

static inline void devstate_put_header(struct snap_buf *b) { snap_put_u16(b, DEVSTATE_VERSION); }

/* Reads the version; false (cursor bad) when it is not ours. */
static inline bool devstate_get_header(struct snap_cursor *c)
{
	uint16_t v = snap_get_u16(c);

	if (c->bad)
		return false;
	if (v != DEVSTATE_VERSION) {
		snap_cursor_fail(c, "layout version %u (this kiln reads %u)", v, DEVSTATE_VERSION);
		return false;
	}
	return true;
}

/* True when every read succeeded, every check passed and nothing is left over: only then may a
 * load apply what it decoded. */
static inline bool devstate_done(struct snap_cursor *c)
{
	if (!c->bad && c->off != c->len)
		snap_cursor_fail(c, "%zu bytes left over", c->len - c->off);
	return !c->bad;
}
