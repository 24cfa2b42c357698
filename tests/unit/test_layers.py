"""The layers of the package (ARCHITECTURE.md): no module imports one above it.

LAYERS lists every module, lowest first; a module may import only modules listed before it (a package
after its own modules). A new module must be placed here, which is the moment to decide its layer.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "xenlive"

LAYERS: dict[str, tuple[str, ...]] = {
    # Used by every layer above; each imports nothing of xenlive but what is listed before it.
    "foundation": (
        "xenlive",
        "xenlive.data_archive",
        "xenlive.contract",
        "xenlive.errors",
        "xenlive.inputs",
        "xenlive.formats",
        "xenlive.progress",
        "xenlive.paths",
        "xenlive.project",
        "xenlive.packages",
        "xenlive.run",
        "xenlive.userns",
        "xenlive.parallel",
        "xenlive.fsutil",
        "xenlive.context",
        "xenlive.render",
        "xenlive.manifest",
        "xenlive.sbom",
        "xenlive.yamlpos",
        "xenlive.schema",
        "xenlive.validation",
        "xenlive.pins",
        "xenlive.suites",
    ),
    # One module per external tool: argv builders and thin runners; Debian trees made with them.
    "tools": (
        "xenlive.tools",
        "xenlive.tools.grub",
        "xenlive.tools.mmdebstrap",
        "xenlive.tools.dpkg",
        "xenlive.tools.squashfs",
        "xenlive.tools.tar",
        "xenlive.tools.makefs",
        "xenlive.tools.xorriso",
        "xenlive.tools.lz4",
        "xenlive.tools.zstd",
        "xenlive.kernel",
        "xenlive.rootfs",
    ),
    # Where artifacts are kept: the stage cache and the download cache.
    "caches": (
        "xenlive.cache.keys",
        "xenlive.cache.locks",
        "xenlive.cache.space",
        "xenlive.cache.entries",
        "xenlive.cache",
        "xenlive.download",
        "xenlive.debcache",
    ),
    # Guest image builders: each declares its recipe section, tools, cache inputs and build step.
    "builders": (
        "xenlive.builders.base",
        "xenlive.builders.debian",
        "xenlive.builders.files",
        "xenlive.builders.mmdebstrap",
        "xenlive.builders.dib",
        "xenlive.builders.netbsd",
        "xenlive.builders.freebsd",
        "xenlive.builders.url",
        "xenlive.builders",
    ),
    # What the user asked for: the recipe and guest image models, loaded with located errors.
    "recipes": (
        "xenlive.guestimage",
        "xenlive.recipe.model",
        "xenlive.recipe.valid",
        "xenlive.recipe.extends",
        "xenlive.recipe.checks",
        "xenlive.recipe.files",
        "xenlive.recipe",
    ),
    # One artifact each, from declared inputs, through the cache.
    "stages": (
        "xenlive.stages",
        "xenlive.stages.dom0",
        "xenlive.services",
        "xenlive.stages.config",
        "xenlive.stages.guest",
        "xenlive.stages.grub",
        "xenlive.stages.iso",
    ),
    # A whole build: one call per stage, then the ISO, manifest and SBOM published.
    "build": ("xenlive.publish", "xenlive.pipeline"),
    # After the build: boot an ISO, smoke-test it, compare two builds (they read the manifest only).
    "boot": (
        "xenlive.sshboot",
        "xenlive.qemu",
        "xenlive.smoke.console",
        "xenlive.smoke.state",
        "xenlive.smoke.report",
        "xenlive.smoke.run",
        "xenlive.smoke",
        "xenlive.diff",
    ),
    # The front: the command line, and the recipe reference generated from the models.
    "front": ("xenlive.reference", "xenlive.starter", "xenlive.doctor", "xenlive.cli"),
}
ORDER = [module for layer in LAYERS.values() for module in layer]


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported(path: Path, modules: set[str]) -> set[str]:
    """The xenlive modules a file imports, wherever the import is (also inside functions)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "xenlive":
            for alias in node.names:
                submodule = f"{node.module}.{alias.name}"
                found.add(submodule if submodule in modules else node.module)
        elif isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names if alias.name.split(".")[0] == "xenlive"}
    return found


def test_every_module_has_its_place_in_the_layers() -> None:
    modules = {module_name(path) for path in PACKAGE.rglob("*.py")}
    assert sorted(modules - set(ORDER)) == [], "place the new module in LAYERS (and in ARCHITECTURE.md)"
    assert sorted(set(ORDER) - modules) == []
    assert len(ORDER) == len(set(ORDER))


def test_no_module_imports_one_above_it() -> None:
    rank = {module: i for i, module in enumerate(ORDER)}
    upward = []
    for path in sorted(PACKAGE.rglob("*.py")):
        name = module_name(path)
        for target in sorted(imported(path, set(rank)) - {name}):
            if rank[target] > rank[name]:
                upward.append(f"{name} imports {target}")
    assert upward == []
