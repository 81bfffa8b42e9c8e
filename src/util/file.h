/* file.h: opening user-named paths without letting a FIFO or device stall the caller. */
#pragma once

#include <sys/types.h>

#include "util/compiler.h"

#define FILE_KIND_REG 1u  /* regular file */
#define FILE_KIND_BLK 2u  /* block device */
#define FILE_KIND_CHR 4u  /* character device */
#define FILE_KIND_FIFO 8u /* named pipe */

/* Open path (O_CLOEXEC added) without blocking: O_NONBLOCK during open(2), so that a FIFO
 * with no peer or a slow device cannot stall the caller, then fstat and check the type
 * against `kinds`, then clear O_NONBLOCK again unless flags asked for it. Returns the fd,
 * or -errno; -EMEDIUMTYPE when the type is not one of `kinds` (name the accepted kinds
 * with file_kinds_name()). */
int file_open(const char *path, int flags, mode_t mode, unsigned kinds) __must_check;

/* "a regular file or block device": the accepted kinds, for error messages. */
const char *file_kinds_name(unsigned kinds);

/* An output (serial, console, log or metrics path): created if missing (0644), appended to;
 * a regular file, FIFO or character device; LEFT non-blocking, so its writer must never
 * wait on it. A FIFO with no reader yet is opened read-write, so that the open does not fail
 * with ENXIO and the writer's data waits in the pipe for a reader that comes later (as
 * Firecracker opens its log and metrics FIFOs). Returns the fd or -errno, as file_open. */
int file_open_output(const char *path) __must_check;
