"""Program text formats: tcpdump -d/-dd/-ddd, bpf_asm, and raw sock_filter arrays.

* ``tcpdump-d``: libpcap's ``bpf_dump(prog, 1)``, one ``bpf_image()`` line per
  instruction (``(000) ldh      [12]``): ``image`` writes it, ``tcpdump_d`` reads it.
* ``tcpdump-dd``: ``{ 0x28, 0, 0, 0x0000000c },`` (C initialisers): ``tcpdump_dd``.
* ``tcpdump-ddd``: a count line, then ``code jt jf k`` in decimal; also read:
  bpf_asm's one-line ``4,40 0 0 12,...`` form (what ``xt_bpf`` takes): ``tcpdump_ddd``.
* ``bpf_asm``: the assembler syntax of the kernel's tools/bpf/bpf_asm
  (bpf_exp.l / bpf_exp.y): ``asm_lexer``, ``asm_parser``, ``asm_writer``.
* ``binary``: the array of 8-byte little-endian ``struct sock_filter``: ``binary``.

``detect`` guesses a format; ``registry`` holds the entry points re-exported
here (``parse``, ``load``, ``format``).  ``tcpdump-d`` and ``bpf_asm`` keep only
the fields an instruction uses (see ``canonical``); ``bpf_asm`` has no syntax
for opcodes outside the instruction set and refuses them.  The other formats
are lossless.
"""

from lsfsim.bpf.formats.detect import detect
from lsfsim.bpf.formats.image import canonical, insn_text
from lsfsim.bpf.formats.registry import FORMATS, format, load, parse

__all__ = ["FORMATS", "canonical", "detect", "format", "insn_text", "load", "parse"]
