/* console.c: terminal raw mode for the serial console, restored on every exit path. */
#include "vmm/console.h"

#include <signal.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include "util/outfd.h"

static struct termios saved;
static int saved_fd = -1;

void console_raw_leave(void)
{
	if (saved_fd >= 0) {
		tcsetattr(saved_fd, TCSANOW, &saved);
		saved_fd = -1;
	}
}

static void fatal_signal(int sig)
{
	/* Async-signal-safe: tcsetattr and fcntl are. Then die by the same signal. This handler
	 * may have replaced outfd's, which puts back shared file flags (util/outfd.h). */
	console_raw_leave();
	outfd_restore_shared();
	signal(sig, SIG_DFL);
	raise(sig);
}

void console_raw_enter(int fd)
{
	static bool hooks_installed;
	struct termios raw;

	if (!isatty(fd) || tcgetattr(fd, &saved) < 0)
		return;
	if (!hooks_installed) {
		static const int fatal[] = { SIGSEGV, SIGBUS, SIGABRT, SIGFPE, SIGILL, SIGQUIT };
		atexit(console_raw_leave);
		for (size_t i = 0; i < sizeof(fatal) / sizeof(fatal[0]); i++)
			signal(fatal[i], fatal_signal);
		hooks_installed = true;
	}
	raw = saved;
	/* Input: raw bytes to the guest. Output post-processing stays on so kiln's own log
	 * lines still start at column 0. */
	raw.c_iflag &= ~(tcflag_t)(IGNBRK | BRKINT | PARMRK | ISTRIP | INLCR | IGNCR | ICRNL | IXON);
	raw.c_lflag &= ~(tcflag_t)(ECHO | ECHONL | ICANON | ISIG | IEXTEN);
	raw.c_cflag &= ~(tcflag_t)(CSIZE | PARENB);
	raw.c_cflag |= CS8;
	raw.c_cc[VMIN] = 1;
	raw.c_cc[VTIME] = 0;
	if (tcsetattr(fd, TCSANOW, &raw) == 0)
		saved_fd = fd;
}
