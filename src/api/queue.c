/* queue.c: the commands the API's connection threads post to the main thread: the queue, the
 * time-limited wait for a result, and the reference counts that keep a command alive. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "api/api.h"
#include "util/clock.h"

/*
 * A poster waits at most a->post_timeout_ms. Then, under api->lock:
 *   QUEUED  -> taken off the queue: the main thread never sees it; the client gets 503 and
 *              may retry, nothing happened.
 *   RUNNING -> marked abandoned: the main thread finishes it (an InstanceStart that takes long
 *              still starts the VM); api_queue_finish logs the result, since nobody reads it.
 *              The client gets 504: GET / tells the outcome.
 * Either way the poster returns at once; the command is freed by whichever side drops the
 * last reference (api_cmd_put, api_queue_finish).
 */

int api_queue_init(struct api *a)
{
	int ret = pthread_mutex_init(&a->lock, NULL);

	if (ret)
		return -ret;
	ret = clock_cond_init(&a->done_cond);
	if (ret) {
		pthread_mutex_destroy(&a->lock);
		return ret;
	}
	a->queue_head = a->queue_tail = NULL;
	a->post_timeout_ms = API_POST_TIMEOUT_MS;
	return 0;
}

void api_queue_destroy(struct api *a)
{
	pthread_cond_destroy(&a->done_cond);
	pthread_mutex_destroy(&a->lock);
}

const char *api_cmd_name(enum api_cmd_type type)
{
	switch (type) {
	case API_CMD_START:
		return "InstanceStart";
	case API_CMD_PAUSE:
		return "pause";
	case API_CMD_RESUME:
		return "resume";
	case API_CMD_FLUSH_METRICS:
		return "FlushMetrics";
	case API_CMD_CTRL_ALT_DEL:
		return "SendCtrlAltDel";
	case API_CMD_DRIVE_PATH:
		return "drive update";
	case API_CMD_SNAPSHOT_CREATE:
		return "snapshot/create";
	case API_CMD_SNAPSHOT_LOAD:
		return "snapshot/load";
	}
	return "command";
}

struct api_cmd *api_cmd_new(enum api_cmd_type type)
{
	struct api_cmd *cmd = calloc(1, sizeof(*cmd));

	if (cmd) {
		cmd->type = type;
		cmd->phase = API_CMD_NEW;
		cmd->refs = 1;
	}
	return cmd;
}

void api_cmd_put(struct api *a, struct api_cmd *cmd)
{
	if (!cmd)
		return;
	pthread_mutex_lock(&a->lock);
	bool last = --cmd->refs == 0;
	pthread_mutex_unlock(&a->lock);
	if (last) {
		free(cmd->path);
		if (cmd->arg && cmd->arg_free)
			cmd->arg_free(cmd->arg);
		free(cmd->arg);
		free(cmd);
	}
}

/* Take cmd off the queue (api->lock held). */
static void unlink_cmd(struct api *a, struct api_cmd *cmd)
{
	struct api_cmd *prev = NULL;

	for (struct api_cmd *c = a->queue_head; c; prev = c, c = c->next) {
		if (c != cmd)
			continue;
		if (prev)
			prev->next = c->next;
		else
			a->queue_head = c->next;
		if (a->queue_tail == c)
			a->queue_tail = prev;
		c->next = NULL;
		return;
	}
}

int api_post(struct api *a, struct api_cmd *cmd)
{
	struct timespec until = clock_after_ms(a->post_timeout_ms);
	uint64_t one = 1;
	int ret;

	pthread_mutex_lock(&a->lock);
	if (a->state == API_EXITING) {
		pthread_mutex_unlock(&a->lock);
		return -ESHUTDOWN;
	}
	if (cmd->phase != API_CMD_NEW) { /* a command is posted once */
		pthread_mutex_unlock(&a->lock);
		return -EINVAL;
	}
	cmd->phase = API_CMD_QUEUED;
	cmd->refs++; /* the queue's, then the main thread's */
	cmd->next = NULL;
	if (a->queue_tail)
		a->queue_tail->next = cmd;
	else
		a->queue_head = cmd;
	a->queue_tail = cmd;
	ssize_t w = write(a->cmd_efd, &one, sizeof(one));
	(void)w; /* non-blocking; the counter cannot come near overflowing */
	while (cmd->phase != API_CMD_DONE &&
	       pthread_cond_timedwait(&a->done_cond, &a->lock, &until) != ETIMEDOUT)
		;
	if (cmd->phase == API_CMD_DONE) {
		ret = cmd->ret;
	} else if (cmd->phase == API_CMD_QUEUED) {
		unlink_cmd(a, cmd);
		cmd->phase = API_CMD_DONE;
		cmd->refs--; /* the queue's: the caller's is left */
		ret = -ECANCELED;
	} else {
		cmd->abandoned = true;
		ret = -ETIMEDOUT;
	}
	pthread_mutex_unlock(&a->lock);
	return ret;
}

struct api_cmd *api_queue_pop(struct api *a)
{
	pthread_mutex_lock(&a->lock);
	struct api_cmd *cmd = a->queue_head;
	if (cmd) {
		a->queue_head = cmd->next;
		if (!a->queue_head)
			a->queue_tail = NULL;
		cmd->next = NULL;
		cmd->phase = API_CMD_RUNNING;
	}
	pthread_mutex_unlock(&a->lock);
	return cmd;
}

void api_queue_finish(struct api *a, struct api_cmd *cmd, int ret)
{
	pthread_mutex_lock(&a->lock);
	cmd->ret = ret;
	cmd->phase = API_CMD_DONE;
	bool late = cmd->abandoned;
	pthread_cond_broadcast(&a->done_cond);
	pthread_mutex_unlock(&a->lock);
	/* The main thread's reference keeps cmd (and err, which only it writes) alive here. */
	if (late && ret)
		log_warn("api: %s failed after its client had been answered 504: %s",
			 api_cmd_name(cmd->type), cmd->err[0] ? cmd->err : strerror(-ret));
	else if (late)
		log_info("api: %s finished after its client had been answered 504",
			 api_cmd_name(cmd->type));
	api_cmd_put(a, cmd);
}

void api_queue_shut(struct api *a)
{
	pthread_mutex_lock(&a->lock);
	a->state = API_EXITING;
	for (struct api_cmd *cmd = a->queue_head, *next; cmd; cmd = next) {
		next = cmd->next;
		cmd->next = NULL;
		cmd->ret = -ESHUTDOWN;
		cmd->phase = API_CMD_DONE;
		/* The queue's reference. A queued command's poster is still waiting (it stops
		 * waiting only when the command is DONE or after taking it off the queue), so
		 * its own reference keeps the command alive. */
		cmd->refs--;
	}
	a->queue_head = a->queue_tail = NULL;
	pthread_cond_broadcast(&a->done_cond);
	pthread_mutex_unlock(&a->lock);
}
