"""A stand-in for QEMU in the smoke runner's shutdown tests (the real one is booted by tests/boot): it prints
a serial transcript, serves QMP on the socket given, and when the power button is pressed through it prints
dom0's shutdown lines and exits, as a machine that powers itself off.

Usage: python fake_qemu_qmp.py QMP_SOCKET TRANSCRIPT [SHUTDOWN_LINE...]
"""

from __future__ import annotations

import json
import socket
import sys
from pathlib import Path


def main() -> int:
    qmp, transcript, *shutdown_lines = sys.argv[1:]
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(qmp)
    server.listen(1)
    sys.stdout.buffer.write(Path(transcript).read_bytes())
    sys.stdout.flush()
    conn, _ = server.accept()
    replies = conn.makefile("rb")
    conn.sendall(json.dumps({"QMP": {"version": {}, "capabilities": []}}).encode() + b"\r\n")
    for line in replies:
        command = json.loads(line)["execute"]
        conn.sendall(json.dumps({"return": {}}).encode() + b"\r\n")
        if command == "system_powerdown":
            break
    for text in shutdown_lines:
        print(text, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
