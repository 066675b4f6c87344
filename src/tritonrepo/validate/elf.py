"""What the dynamic loader would say about a shared library, read from its ELF headers without loading it.

The server ``dlopen``s backend libraries and ``TRITON_BATCH_STRATEGY_PATH`` libraries, then looks their entry points
up with ``dlsym``. ``validate`` must not load them (a library's constructors run at ``dlopen``), so this module reads
the file: the ELF header for the errors glibc's loader reports before mapping anything (``open_verify`` in
glibc elf/dl-load.c: ``file too short``, ``invalid ELF header``, ``wrong ELF class``, ``cannot read file data``),
and the ``.dynsym`` section for the symbols the library defines and the ones it imports. Bounded: only the ELF
header, the section headers and the dynamic symbol and string tables (capped at 64 MiB) are read.

Layout: the System V ABI ELF-64 / ELF-32 header, section header and symbol table entry (``SHT_DYNSYM`` = 11).
"""

from __future__ import annotations

import os
import struct
from pathlib import Path

_SHT_DYNSYM = 11
_MAX_TABLE = 64 * 1024 * 1024


def dlopen_error(path: str | os.PathLike[str]) -> str | None:
    """The loader's error text for ``path`` when the header alone makes ``dlopen`` fail, else ``None``.

    ``None`` does not promise that ``dlopen`` succeeds (a missing dependency, a foreign machine type, a broken
    program header are only found by loading). Texts are glibc's (elf/dl-load.c ``open_verify``), as the server
    prints them after ``unable to load shared library: <path>: ``.
    """
    p = Path(path)
    if os.path.isdir(p):
        return "cannot read file data: Is a directory"
    try:
        with open(p, "rb") as f:
            head = f.read(64)
    except OSError as exc:
        return f"cannot open shared object file: {exc.strerror}"
    elf_class = head[4:5]
    size = 52 if elf_class == b"\x01" else 64
    if len(head) < size:
        return "file too short"
    if head[:4] != b"\x7fELF":
        return "invalid ELF header"
    if elf_class != b"\x02":
        return "wrong ELF class: ELFCLASS32" if elf_class == b"\x01" else "invalid ELF header"
    return None


def dynamic_symbols(path: str | os.PathLike[str]) -> tuple[set[str], set[str]] | None:
    """``(defined, imported)`` names of the library's dynamic symbol table, or ``None`` when the file is not a
    64-bit little-endian ELF with section headers (the caller then knows nothing).

    ``defined``: symbols with a section (what ``dlsym`` finds in this library); ``imported``: undefined ones (what the
    library calls in others, e.g. a backend's ``TRITONBACKEND_ModelSetConfig``).
    """
    try:
        with open(path, "rb") as f:
            head = f.read(64)
            if len(head) < 64 or head[:4] != b"\x7fELF" or head[4] != 2 or head[5] != 1:
                return None
            shoff, = struct.unpack_from("<Q", head, 0x28)
            shentsize, shnum = struct.unpack_from("<HH", head, 0x3A)
            if not shoff or shentsize < 64 or not 0 < shnum < 65536:
                return None
            f.seek(shoff)
            table = f.read(shentsize * shnum)
            if len(table) < shentsize * shnum:
                return None
            sections = [struct.unpack_from("<IIQQQQIIQQ", table, i * shentsize) for i in range(shnum)]
            defined: set[str] = set()
            imported: set[str] = set()
            for _, sh_type, _, _, offset, size, link, _, _, entsize in sections:
                if sh_type != _SHT_DYNSYM or not 0 <= link < shnum or size > _MAX_TABLE:
                    continue
                str_offset, str_size = sections[link][4], sections[link][5]
                if str_size > _MAX_TABLE:
                    return None
                f.seek(offset)
                symbols = f.read(size)
                f.seek(str_offset)
                strings = f.read(str_size)
                step = entsize or 24
                for i in range(0, len(symbols) - step + 1, step):
                    name_at, _, _, shndx = struct.unpack_from("<IBBH", symbols, i)
                    end = strings.find(b"\0", name_at)
                    if name_at == 0 or end < 0:
                        continue
                    name = strings[name_at:end].decode("utf-8", "replace")
                    (defined if shndx else imported).add(name)
            return defined, imported
    except (OSError, struct.error):
        return None
