"""zstd: unpacks the kernel of a suite whose bzImage payload is zstd (trixie's 6.12), where Python has no zstd."""

from __future__ import annotations

from xenlive.run import run


def zstd_decompress_argv() -> list[str]:
    """Decompress stdin to stdout."""
    return ["zstd", "-d", "-c", "-q"]


def zstd_decompress(data: bytes) -> bytes:
    return run(zstd_decompress_argv(), stdin_data=data, capture=True).stdout
