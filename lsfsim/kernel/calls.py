"""Folded call trees written the way ftrace prints them.

Much of what the kernel calls on this path costs too little to model apart
(spin locks, security hooks, slab helpers), yet a trace must show it, nested
as the kernel nests it.  ``folded("skb_clone() { ... }")``-style text turns
such a subtree into plan steps that cost nothing: ``name();`` is a ``mark``,
``name() { ... }`` a ``fold`` closed by ``exit_``.  Their time is carved out
of the nearest charged caller when traced (trace.calltree); untraced, a plan
with them is exactly as fast as without.

Only functions that ftrace can see belong here: ``static inline`` functions
and static functions gcc inlines (one call site) never appear in a
function_graph trace, so their work is their caller's.
"""

from __future__ import annotations

import re
from functools import cache
from typing import Any

from lsfsim.kernel.cpu import Step, charge, enter, exit_, fold, mark

_TOKEN = re.compile(r"\s*(?:([A-Za-z_][A-Za-z0-9_]*)\(\)\s*([{;])|(\}))")


@cache
def folded(text: str) -> tuple[Step, ...]:
    """The steps of one or more folded calls in ftrace notation, e.g.
    ``"local_bh_disable() { __local_bh_disable(); }"``."""
    steps: list[Step] = []
    open_: list[str] = []
    pos = 0
    text = text.rstrip()
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None:
            raise ValueError(f"not a call tree at {text[pos:pos + 30]!r}")
        name, kind, close = m.groups()
        if close:
            if not open_:
                raise ValueError(f"unbalanced '}}' in {text!r}")
            steps.append(exit_(open_.pop()))
        elif kind == "{":
            steps.append(fold(name))
            open_.append(name)
        else:
            steps.append(mark(name))
        pos = m.end()
    if open_:
        raise ValueError(f"unclosed {open_[-1]}() in {text!r}")
    return tuple(steps)


# Trees that recur on several paths (2.6.33, CONFIG_SLUB, CONFIG_PREEMPT).
LOCAL_BH_DISABLE = "local_bh_disable() { __local_bh_disable(); }"
ALLOC_SKB = "__alloc_skb() { kmem_cache_alloc(); __kmalloc_track_caller() { get_slab(); } }"
SKB_CLONE_CALLEES = "kmem_cache_alloc(); __skb_clone() { __copy_skb_header(); }"
# consume_skb/kfree_skb's callees when the last reference goes (skb_release_all and
# kfree_skbmem are inline); a received skb has no destructor here
KFREE_SKB_OWNED = ("__kfree_skb() { skb_release_head_state(); skb_release_data() { kfree(); }"
                   " kmem_cache_free(); }")


def socketcall_steps(word_bits: int, costs: Any) -> tuple[tuple[Step, ...], tuple[Step, ...]]:
    """The steps around a socket system call: (before, after).

    i386 has no system call per socket operation: libc calls ``socketcall(2)``
    and ``sys_socketcall`` copies the argument block and dispatches
    (net/socket.c; arch/x86/kernel/syscall_table_32.S:104).  x86_64 enters
    ``sys_socket``, ``sys_recvfrom``... directly: nothing around them.
    """
    if word_bits != 32:
        return (), ()
    before = (enter("sys_socketcall"), charge("sys_socketcall", costs.sys_socketcall),
              *folded("_copy_from_user(); audit_socketcall();"))
    return before, (exit_("sys_socketcall"),)


def copy_to_user(word_bits: int) -> str:
    """The traced name of copy_to_user: out of line on i386
    (arch/x86/lib/usercopy_32.c:852), an inline wrapper of ``_copy_to_user`` on
    x86_64 (arch/x86/include/asm/uaccess_64.h:22)."""
    return "copy_to_user" if word_bits == 32 else "_copy_to_user"
