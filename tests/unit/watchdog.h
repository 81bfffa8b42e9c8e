/* watchdog.h: a test whose write blocks fails (an alarm ends it) instead of hanging. */
#pragma once

#include <signal.h>
#include <unistd.h>

#define WATCHDOG_S 20

static inline void watchdog_fired(int sig)
{
	static const char msg[] =
	    "watchdog: a write blocked (a vCPU or the event loop would hang)\n";
	ssize_t w = write(2, msg, sizeof(msg) - 1);

	(void)w;
	(void)sig;
	_exit(1);
}

/* Arm for `seconds`; alarm(0) disarms. */
static inline void watchdog(unsigned seconds)
{
	signal(SIGALRM, watchdog_fired);
	alarm(seconds);
}
