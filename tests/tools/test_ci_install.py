"""Each CI template's install steps, run for real in a fresh Debian bookworm (mmdebstrap --variant=apt: Essential
and apt, as in GitLab's debian:bookworm image), then `xenlive doctor` inside it as root: the host check must pass,
with every tool the build runs installed by the template alone. GitHub's workflow runs on an Ubuntu runner as
its user: here its installs run as root, without its runner's setup, which shows that its packages exist in
Debian and give every tool, not that it works on Ubuntu. And `make demo`'s installs (`make deps venv`)
there: the host check passes, and nothing only the tests use (Chromium, selenium, mypy, ruff) is installed.

Slow: each template installs QEMU, GRUB, OVMF and xenlive from scratch (minutes, and some 400 MB through
xenlive's own package cache, kept under XDG_CACHE_HOME for the next run). It runs only when asked for, with
XENLIVE_CI_INSTALL_TEST=1 (as root, with mmdebstrap): `XENLIVE_CI_INSTALL_TEST=1 make tools`."""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from xenlive.debcache import DebCache
from xenlive.fsutil import remove_tree
from xenlive.paths import default_cache_dir
from xenlive.tools.mmdebstrap import proxy_env

pytestmark = [
    pytest.mark.tools,
    pytest.mark.skipif(
        os.environ.get("XENLIVE_CI_INSTALL_TEST") != "1", reason="slow (minutes): set XENLIVE_CI_INSTALL_TEST=1"
    ),
    pytest.mark.skipif(os.geteuid() != 0 or shutil.which("mmdebstrap") is None, reason="needs root and mmdebstrap"),
]

ROOT = Path(__file__).resolve().parents[2]
CI = ROOT / "docs" / "ci"
MIRROR = "http://deb.debian.org/debian"
RECIPE = "recipes/ci.yaml"
LOCAL_CAS = Path("/usr/local/share/ca-certificates")
# What a checkout holds that pip does not need.
NOT_COPIED = shutil.ignore_patterns(".git", ".venv", "__pycache__", ".*_cache", "out", ".xenlive-cache", ".cache")


# The workflow's step that sets GitHub's Ubuntu runner up for a build as its user: a sysctl (the kernel is the
# test machine's own), usermod and udev, for an account that a fresh Debian has not. Not run here: the host check
# runs as root, as GitLab's job builds.
RUNNER_SETUP = "Let the runner user build without root"
# The workflow runs its installs with sudo, as its runner user; here they run as root, where sudo is not installed.
AS_ROOT = 'sudo() { env "$@"; }'


def github_script() -> str:
    """The workflow's steps up to the host check, as one root shell script (its expressions filled in), less
    its runner's setup; the later steps find xenlive through $GITHUB_PATH, as on GitHub."""
    workflow: dict[str, Any] = yaml.safe_load((CI / "github-actions.yml").read_text())
    lines = [AS_ROOT]
    names = [step.get("name") for step in workflow["jobs"]["iso"]["steps"]]
    assert RUNNER_SETUP in names and "Check the host" in names, names
    for step in workflow["jobs"]["iso"]["steps"]:
        if step.get("name") == "Check the host":
            lines.append('PATH="$(paste -sd: "$GITHUB_PATH"):$PATH"')
        if "run" in step and step.get("name") != RUNNER_SETUP:
            lines.append(step["run"].replace("${{ matrix.recipe }}", RECIPE))
        if step.get("name") == "Check the host":
            break
    return "\n".join(lines)


def gitlab_script() -> str:
    """The GitLab job's before_script (it ends with the host check)."""
    job: dict[str, Any] = yaml.safe_load((CI / "gitlab-ci.yml").read_text())["xenlive"]
    return "\n".join(job["before_script"])


def local_cas() -> list[str]:
    """This host's own certificate authorities (a network that inspects TLS has one), into the new Debian: the
    template's ca-certificates takes them in, as it would on a CI runner of that network, and pip can fetch."""
    return [f"--customize-hook=sync-in {LOCAL_CAS} {LOCAL_CAS}"] if LOCAL_CAS.is_dir() else []


def run_in_fresh_debian(tmp_path: Path, script: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """mmdebstrap a Debian bookworm with the checkout in /src, and run `script` in it from /src (`sh -e`)."""
    src = tmp_path / "src"
    shutil.copytree(ROOT, src, ignore=NOT_COPIED, symlinks=True)
    target = tmp_path / "debian"
    exports = " ".join(f"export {name}={shlex.quote(value)};" for name, value in env.items())
    inside = f"cd /src && {exports} {script}"
    debs = DebCache(default_cache_dir() / "debs")
    try:
        with debs.session([MIRROR]) as apt:
            proxy = proxy_env(apt.url)  # apt in the chroot downloads through it too (same network)
            exports_proxy = " ".join(f"export {name}={shlex.quote(value)};" for name, value in proxy.items())
            argv = [
                "mmdebstrap",
                "--mode=root",
                "--variant=apt",
                "--format=directory",
                '--customize-hook=mkdir "$1/src" "$1/usr/local/share/ca-certificates"',
                f"--customize-hook=sync-in {src} /src",
                *local_cas(),
                f'--customize-hook=chroot "$1" sh -ec {shlex.quote(exports_proxy + " " + inside)}',
                "bookworm",
                str(target),
                MIRROR,
            ]
            return subprocess.run(
                argv,
                env={**os.environ, **proxy, "DEBIAN_FRONTEND": "noninteractive"},
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                timeout=3600,
                check=False,
            )
    finally:
        remove_tree(target)


@pytest.mark.parametrize(
    ("template", "script", "env"),
    [
        (
            "github-actions.yml",
            github_script,
            {
                "XENLIVE": ".",
                "XENLIVE_CACHE": ".xenlive-cache",
                "GITHUB_PATH": "/tmp/github-path",
                "RUNNER_TEMP": "/tmp",
            },
        ),
        (
            "gitlab-ci.yml",
            gitlab_script,
            {"XENLIVE": ".", "XENLIVE_CACHE": "/src/.xenlive-cache", "RECIPE": RECIPE},
        ),
    ],
)
def test_the_template_s_install_step_gives_a_host_that_passes_the_host_check(
    tmp_path: Path, template: str, script: Any, env: dict[str, str]
) -> None:
    result = run_in_fresh_debian(tmp_path, script(), env)
    output = result.stdout + result.stderr
    assert result.returncode == 0, f"{template}: {output[-4000:]}"
    assert "ready to build" in output and "tools   ok" in output, output[-4000:]


# `make demo` less its build: what it installs, then the host check, then nothing of the tests' may be there.
MAKE_DEMO = """
apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends make python3
started=$(date +%s)
make deps venv
echo "make deps venv took $(( $(date +%s) - started )) s"
.venv/bin/python build.py doctor xen-demo
for p in chromium chromium-driver shellcheck; do
    if dpkg-query -W -f '${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
        echo "test package $p"; exit 1
    fi
done
for p in selenium mypy ruff pytest diskimage-builder; do
    if .venv/bin/python -m pip show -q "$p" 2>/dev/null; then echo "test package $p"; exit 1; fi
done
"""


def test_make_demo_installs_what_the_build_needs_and_nothing_only_the_tests_use(tmp_path: Path) -> None:
    result = run_in_fresh_debian(tmp_path, MAKE_DEMO, {})
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-4000:]
    assert "ready to build" in output, output[-4000:]
    print(next(line for line in output.splitlines() if line.startswith("make deps venv took")))
