"""One module per external tool: pure argv builders (unit-tested on exact lists) and thin runners."""
