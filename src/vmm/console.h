/* console.h: put the controlling terminal in raw mode for the guest console and restore it. */
#pragma once

/* If fd is a tty, save its mode and switch to raw input (no echo, no line editing, no
 * signals from ^C: they go to the guest). Restored by console_raw_leave(), at exit, and
 * on fatal signals. */
void console_raw_enter(int fd);
void console_raw_leave(void);
