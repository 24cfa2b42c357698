"""Hatch's build hook: the wheel carries xenlive's data trees as one tar, xenlive/data.tar, made here from the
checkout (xenlive/data_archive.py says why a tar). An editable install reads the checkout itself."""

from __future__ import annotations

import importlib.util
import tempfile
from pathlib import Path
from typing import Any

from hatchling.builders.hooks.plugin.interface import BuildHookInterface


class DataArchiveHook(BuildHookInterface):
    PLUGIN_NAME = "custom"

    def initialize(self, version: str, build_data: dict[str, Any]) -> None:
        if self.target_name != "wheel" or version == "editable":
            return
        root = Path(self.root)
        spec = importlib.util.spec_from_file_location("xenlive_data_archive", root / "xenlive" / "data_archive.py")
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        self._made = tempfile.TemporaryDirectory(prefix="xenlive-data.")
        archive = Path(self._made.name) / module.ARCHIVE
        with archive.open("wb") as out:
            module.make_archive(root, out)
        build_data["force_include"][str(archive)] = f"xenlive/{module.ARCHIVE}"

    def finalize(self, version: str, build_data: dict[str, Any], artifact_path: str) -> None:
        if hasattr(self, "_made"):
            self._made.cleanup()
