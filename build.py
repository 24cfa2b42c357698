#!/usr/bin/env python3
"""xenlive command line (thin entry point; the same verbs as the `xenlive` console script)."""

import os
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
VENV_PYTHON = HERE / ".venv" / "bin" / "python"

try:
    import click  # noqa: F401
    import jinja2  # noqa: F401
    import pydantic  # noqa: F401
    import yaml  # noqa: F401
except ImportError:
    # Run from a checkout: use the project's virtualenv (`make venv`) when the system Python lacks the deps.
    if VENV_PYTHON.exists() and Path(sys.executable).resolve() != VENV_PYTHON.resolve():
        # sys.argv[0] as the user typed it (./build.py), for the commands xenlive prints (cli.command_name).
        os.execv(str(VENV_PYTHON), [str(VENV_PYTHON), sys.argv[0], *sys.argv[1:]])
    sys.exit("xenlive needs click, jinja2, pydantic and pyyaml: run `make venv` first")

sys.path.insert(0, str(HERE))
from xenlive.cli import main  # noqa: E402

main()
