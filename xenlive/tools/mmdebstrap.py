"""mmdebstrap: Debian root filesystems from the archive."""

from __future__ import annotations

import shlex
import urllib.parse
from collections.abc import Sequence
from pathlib import Path

# Paths left out of every tree we build: documentation, manual pages and translations are
# dead weight on a live medium (about 60 MB for dom0).
PATH_EXCLUDES = (
    "/usr/share/doc/*",
    "/usr/share/man/*",
    "/usr/share/info/*",
    "/usr/share/locale/*",
    "/usr/share/lintian/*",
)
# Keep copyright files: the licences must travel with the binaries.
PATH_INCLUDES = ("/usr/share/doc/*/copyright",)


def mmdebstrap_argv(
    *,
    suite: str,
    target: Path,
    sources: Sequence[str],
    packages: Sequence[str],
    setup_hooks: Sequence[str] = (),
    customize_hooks: Sequence[str] = (),
) -> list[str]:
    """`sources`: one-line apt sources ("deb URL SUITE COMPONENTS..."), the first one bootstraps."""
    argv = [
        "mmdebstrap",
        "--mode=root",
        "--variant=minbase",
        "--format=directory",
        '--aptopt=APT::Install-Recommends "false"',
        '--aptopt=Acquire::Retries "3"',
    ]
    argv += [f"--dpkgopt=path-exclude={p}" for p in PATH_EXCLUDES]
    argv += [f"--dpkgopt=path-include={p}" for p in PATH_INCLUDES]
    if packages:
        argv.append("--include=" + ",".join(sorted(set(packages))))
    argv += [f"--setup-hook={hook}" for hook in setup_hooks]
    argv += [f"--customize-hook={hook}" for hook in customize_hooks]
    argv += [suite, str(target), *apt_sources(sources)]
    return argv


# The service whose archives are snapshots: by design older than the Valid-Until of their Release files.
SNAPSHOT_HOST = "snapshot.debian.org"


def apt_sources(sources: Sequence[str]) -> list[str]:
    """One-line apt sources as apt is given them: a source whose host is the snapshot service, and only such
    a source, skips the Valid-Until check (`[check-valid-until=no]`); every other source keeps it, also
    beside a snapshot, and also when its URL merely names the service."""
    return [_with_options(line) for line in sources]


def _with_options(line: str) -> str:
    words = line.split()
    if len(words) < 2 or words[0] != "deb" or words[1].startswith("["):
        return line
    host = urllib.parse.urlsplit(words[1]).hostname
    if host != SNAPSHOT_HOST:
        return line
    return " ".join(["deb", "[check-valid-until=no]", *words[1:]])


def copy_tree_hook(src: Path, subdir: str = "") -> str:
    """A hook that copies the contents of src (or of src/subdir) into the chroot, owned by root."""
    source = src / subdir if subdir else src
    dest = '"$1"/' + subdir if subdir else '"$1"/'
    return (
        f"if [ -d {shlex.quote(str(source))} ]; then mkdir -p {dest} && "
        f"cp -a --no-preserve=ownership {shlex.quote(str(source))}/. {dest}; fi"
    )


def apt_config_hooks(name: str, config: str) -> tuple[str, str]:
    """A setup hook that gives every apt run of the build `config` (as etc/apt/apt.conf.d/NAME in the tree,
    which mmdebstrap's apt reads from inside and outside the chroot), and a customize hook that takes it out
    again: unlike --aptopt, it is not left in the image."""
    path = f'"$1"/etc/apt/apt.conf.d/{name}'
    return f"printf '%s\\n' {shlex.quote(config)} > {path}", f"rm -f {path}"


def proxy_env(proxy: str) -> dict[str, str]:
    """The environment that makes apt download http:// files through `proxy` (xenlive's package cache), and
    nothing bypass it."""
    return {"http_proxy": proxy, "no_proxy": "", "NO_PROXY": ""}
