"""Kernel images: the ELF out of a bzImage, and dom0's kernel in the lz4 form Xen reads (read back by the
real lz4 in tests/tools/test_kernel.py)."""

from __future__ import annotations

import lzma
import os
import struct

import pytest

from xenlive.errors import BuildError
from xenlive.kernel import extract_vmlinux

ELF = b"\x7fELF\x02\x01\x01" + os.urandom(300_000) + bytes(3_000_000)  # a kernel's mix of code and zeroes


def bzimage(payload: bytes, setup_sects: int = 3) -> bytes:
    """A bzImage as Linux lays it out: boot sector and setup (HdrS header), then the compressed payload."""
    header = bytearray((setup_sects + 1) * 512)
    header[0x1F1] = setup_sects
    header[0x202:0x206] = b"HdrS"
    struct.pack_into("<II", header, 0x248, 40, len(payload))  # payload_offset, payload_length
    return bytes(header) + bytes(40) + payload + b"trailing setup data"


def test_the_elf_comes_out_of_an_xz_bzimage() -> None:
    payload = lzma.compress(ELF, format=lzma.FORMAT_XZ) + struct.pack("<I", len(ELF))
    assert extract_vmlinux(bzimage(payload)) == ELF


def test_a_file_that_is_not_a_bzimage_is_refused() -> None:
    with pytest.raises(BuildError, match="not a Linux bzImage"):
        extract_vmlinux(ELF)
