"""`xenlive doctor`: can this host build a recipe and boot it, without building anything. The tools and files
come from the build's own check (pipeline.examine_build_host, which `build` runs first), KVM from the probe
`boot` and `smoke` use; memory and disk are what a build would find."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from xenlive.cache.space import free_bytes
from xenlive.fsutil import MEMORY_RESERVE, available_memory
from xenlive.pipeline import examine_build_host, find_root_only
from xenlive.qemu import QEMU, find_kvm_problem
from xenlive.recipe import LoadedRecipe
from xenlive.run import TOOL_PACKAGES
from xenlive.userns import find_problems, problems_message, this_host

GIB = 2**30
# Free space under the cache below which a cold build of a shipped recipe is likely to run out: dom0's tree and
# squashfs, the guest images' disks, the Debian packages, each stage's work directory beside its entry.
DISK_WANTED = 4 * GIB


@dataclass(frozen=True)
class Probes:
    """How the doctor looks at the host (tests give their own)."""

    which: Callable[[str], str | None] | None = None  # shutil.which
    kvm_problem: Callable[[], str | None] = find_kvm_problem
    memory: Callable[[], int] = available_memory
    disk: Callable[[Path], int] = free_bytes
    userns: Callable[[], list[str]] = lambda: find_problems(this_host())  # what a user build lacks


@dataclass(frozen=True)
class Finding:
    topic: str
    ok: bool  # False: a build fails (or, for `warn`, may fail) here
    text: str
    warn: bool = False  # not ok, but a build may still work

    def __str__(self) -> str:
        mark = "ok" if self.ok else "warning" if self.warn else "MISSING"
        return f"{self.topic:<7} {mark:<8} {self.text}"


@dataclass(frozen=True)
class DoctorReport:
    findings: list[Finding] = field(default_factory=list)

    @property
    def ready(self) -> bool:
        """A build can start: nothing it needs is missing (warnings aside)."""
        return all(f.ok or f.warn for f in self.findings)

    def lines(self) -> list[str]:
        return [str(f) for f in self.findings]


def examine_host(loaded: LoadedRecipe, cache_dir: Path, probes: Probes | None = None) -> DoctorReport:
    """What a build of `loaded` into `cache_dir`, and a boot of its ISO, would find on this host."""
    probes = probes or Probes()
    host = examine_build_host(loaded, probes.which)
    findings = [_tools(host.tools, host.missing_tools)]
    findings += [
        Finding("files", False, f"{path} (install with: apt-get install {package})")
        for path, package in host.missing_files
    ]
    findings += [Finding("builder", False, str(problem)) for problem in host.problems]
    findings.append(_root(host.root, probes.userns))
    if not host.root:
        findings += [Finding("builder", False, str(problem)) for problem in find_root_only(loaded)]
    look = probes.which or shutil.which
    findings.append(
        Finding("qemu", True, f"{QEMU} (for boot and smoke)")
        if look(QEMU)
        else Finding(
            "qemu",
            False,
            f"{QEMU}: install with: apt-get install {TOOL_PACKAGES[QEMU]} (boot and smoke run it)",
            warn=True,
        )
    )
    kvm = probes.kvm_problem()
    findings.append(
        Finding("kvm", True, "usable: boot and smoke use it")
        if kvm is None
        else Finding("kvm", False, f"not usable ({kvm}): boot and smoke fall back to TCG, much slower", warn=True)
    )
    findings.append(_memory(probes.memory()))
    findings.append(_disk(cache_dir, probes.disk(cache_dir)))
    return DoctorReport(findings)


def _root(root: bool, userns: Callable[[], list[str]]) -> Finding:
    """Root builds as it is; an ordinary user as root of a user namespace (xenlive.userns), if the host lets it."""
    if root:
        return Finding("root", True, "yes")
    problems = userns()
    if problems:
        return Finding("root", False, problems_message(problems))
    return Finding("root", True, "no: builds as root of a user namespace (user namespaces, uidmap, subordinate ids)")


def _tools(tools: tuple[str, ...], missing: tuple[str, ...]) -> Finding:
    if not missing:
        return Finding("tools", True, f"all {len(tools)} that the build runs: {', '.join(tools)}")
    named = ", ".join(f"{tool} ({TOOL_PACKAGES.get(tool, tool)})" for tool in missing)
    packages = " ".join(sorted({TOOL_PACKAGES.get(tool, tool) for tool in missing}))
    return Finding("tools", False, f"{named}; install with: apt-get install {packages}")


def _memory(available: int) -> Finding:
    text = f"{available / GIB:.1f} GiB available"
    if available < MEMORY_RESERVE:
        return Finding("memory", False, f"{text}: less than a build leaves to the rest of the host", warn=True)
    return Finding("memory", True, f"{text} (root filesystems are built in memory while it has room to spare)")


def _disk(cache_dir: Path, free: int) -> Finding:
    text = f"{free / GIB:.1f} GiB free for the cache {cache_dir}"
    if free < DISK_WANTED:
        return Finding("disk", False, f"{text}: a cold build may need {DISK_WANTED // GIB} GiB", warn=True)
    return Finding("disk", True, text)
