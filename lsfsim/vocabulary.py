"""Words shared by the kernel model, the reports and the tracer.

The kernel model charges CPU time to top(1)'s buckets at one of three
execution levels; the summary, the sampler, the plots, ftrace's output and
the lifecycle tables name them the same way.  They live here, below every
package, so that report/ and trace/ need not reach into the kernel model.
"""

from __future__ import annotations

# top(1)'s buckets, indices into CPU.acct: hardirq, softirq, system, user
HI, SI, SY, US = 0, 1, 2, 3
BUCKETS = ("hi", "si", "sy", "us")

# execution levels (what preempts what: hardirq over softirq over process context)
HARDIRQ, SOFTIRQ, PROCESS = 0, 1, 2
LEVELS = ("hardirq", "softirq", "process")

# the local APIC timer's vector (arch/x86/include/asm/irq_vectors.h): the tick's
# hard interrupt, whose entry ftrace shows as smp_apic_timer_interrupt, not do_IRQ
LOCAL_TIMER_VECTOR = 0xEF
IRQ_ENTRY = {LOCAL_TIMER_VECTOR: "smp_apic_timer_interrupt"}
