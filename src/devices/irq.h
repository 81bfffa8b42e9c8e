/* irq.h: an interrupt line a device drives without knowing how it reaches the guest. */
#pragma once

struct irq_line {
	/* Set the line level (1 asserted, 0 deasserted). Edge-triggered pins fire on 0 -> 1. */
	void (*set)(void *opaque, unsigned gsi, int level);
	void *opaque;
	unsigned gsi;
};

static inline void irq_line_set(const struct irq_line *l, int level)
{
	if (l && l->set)
		l->set(l->opaque, l->gsi, level);
}
