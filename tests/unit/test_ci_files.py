"""docs/ci: the GitHub Actions workflow and the GitLab CI file each build a matrix of recipes with xenlive's
cache restored and saved, smoke-test each ISO with --junit, and keep the serial logs; each installs every
Debian package the build's own tool table asks for (tests/tools/test_ci_install.py runs their install steps
in a fresh Debian). The workflow builds as GitHub's runner user, without root; GitLab's job as root of its
privileged container."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from xenlive import userns
from xenlive.pipeline import host_packages
from xenlive.qemu import QEMU
from xenlive.recipe import load_recipe
from xenlive.run import TOOL_PACKAGES

ROOT = Path(__file__).resolve().parents[2]
CI = ROOT / "docs" / "ci"


def commands(steps: list[Any]) -> str:
    return "\n".join(str(step.get("run", "")) if isinstance(step, dict) else str(step) for step in steps)


def test_github_actions_builds_a_matrix_with_the_cache_restored_and_keeps_the_serial_logs() -> None:
    workflow = yaml.safe_load((CI / "github-actions.yml").read_text())
    job = workflow["jobs"]["iso"]
    assert len(job["strategy"]["matrix"]["include"]) >= 2
    uses = [step.get("uses", "") for step in job["steps"]]
    assert uses.index("actions/cache/restore@v4") < uses.index("actions/cache/save@v4")
    run = commands(job["steps"])
    assert 'xenlive build "${{ matrix.recipe }}"' in run and '--cache-dir "$XENLIVE_CACHE"' in run
    assert "xenlive smoke out/*.iso --junit out/smoke.xml" in run
    upload = next(step for step in job["steps"] if step.get("uses", "").startswith("actions/upload-artifact"))
    assert upload["if"] == "always()" and "out/*.serial.log" in upload["with"]["path"]


def test_gitlab_ci_builds_a_matrix_with_one_cache_and_reports_junit() -> None:
    job = yaml.safe_load((CI / "gitlab-ci.yml").read_text())["xenlive"]
    assert len(job["parallel"]["matrix"][0]["RECIPE"]) >= 2
    assert job["cache"]["paths"] == [".xenlive-cache/"] and job["cache"]["when"] == "always"
    run = commands(job["script"])
    assert 'xenlive build "$RECIPE" -o out --cache-dir "$XENLIVE_CACHE"' in run
    assert "xenlive smoke out/*.iso --junit out/smoke.xml" in run
    assert job["artifacts"]["when"] == "always" and "out/*.serial.log" in job["artifacts"]["paths"]
    assert job["artifacts"]["reports"]["junit"] == "out/smoke.xml"


# --- what the templates install, against the build's own tool table -------------------------------------------

# Essential packages, in every Debian and Ubuntu system and container image: the templates need not name them.
ESSENTIAL = {"coreutils", "dpkg", "tar", "util-linux"}


def apt_packages(command: str) -> set[str]:
    """The packages the `apt-get install ...` command line of `command` names (options left out; its line
    continued with backslashes, and only that line)."""
    [line] = [line for line in command.replace("\\\n", " ").splitlines() if "apt-get install" in line]
    words = line.split()
    start = words.index("install") + 1
    return {word for word in words[start:] if not word.startswith("-")}


def install_command(commands: list[str]) -> str:
    [command] = [c for c in commands if "apt-get install" in c]
    return command


def github_job() -> dict[str, Any]:
    job: dict[str, Any] = yaml.safe_load((CI / "github-actions.yml").read_text())["jobs"]["iso"]
    return job


def gitlab_job() -> dict[str, Any]:
    job: dict[str, Any] = yaml.safe_load((CI / "gitlab-ci.yml").read_text())["xenlive"]
    return job


def github_install() -> str:
    return install_command([str(step.get("run", "")) for step in github_job()["steps"]])


def gitlab_install() -> str:
    return install_command([str(line) for line in gitlab_job()["before_script"]])


def needed_packages(recipes: list[str], rootless: bool) -> set[str]:
    """What a job that builds `recipes` and smoke-tests their ISOs needs: the packages of the build's tools and
    files (pipeline.host_packages, the table `build` and `doctor` check), QEMU's, python3-venv for pip, and
    for a build without root those of the tools that enter its user namespace (userns.TOOLS)."""
    needed = {TOOL_PACKAGES[QEMU], "python3-venv"}
    if rootless:
        needed |= {TOOL_PACKAGES[tool] for tool in userns.TOOLS}
    for recipe in recipes:
        needed |= host_packages(load_recipe(ROOT / recipe))
    return needed - ESSENTIAL


def test_each_template_installs_every_package_the_build_and_smoke_need() -> None:
    """lz4 (dom0's initramfs) and makefs (the demo's FreeBSD guest) were missing from both: the build stopped
    before its first stage."""
    github_recipes = [entry["recipe"] for entry in github_job()["strategy"]["matrix"]["include"]]
    gitlab_recipes = gitlab_job()["parallel"]["matrix"][0]["RECIPE"]
    for name, installed, recipes, rootless in [
        ("github-actions.yml", apt_packages(github_install()), github_recipes, True),
        ("gitlab-ci.yml", apt_packages(gitlab_install()), gitlab_recipes, False),
    ]:
        missing = needed_packages(recipes, rootless) - installed
        assert not missing, f"{name} does not install {sorted(missing)}"


def test_the_table_the_templates_are_checked_against_holds_lz4_and_grub_s_files() -> None:
    needed = needed_packages(["recipes/xen-demo.yaml"], rootless=False)
    assert {"lz4", "makefs", "mmdebstrap", "grub-pc-bin", "grub-efi-amd64-bin", "qemu-system-x86"} <= needed
    assert "uidmap" not in needed and "uidmap" in needed_packages(["recipes/xen-demo.yaml"], rootless=True)
    assert apt_packages("sudo apt-get update\nsudo apt-get install -y -q a \\\n b\nsudo cp x y") == {"a", "b"}


def test_each_template_checks_the_host_before_building() -> None:
    github = commands(github_job()["steps"])
    assert github.index("xenlive doctor") < github.index("xenlive build")
    gitlab = commands(gitlab_job()["before_script"])
    assert 'xenlive doctor "$RECIPE"' in gitlab


def test_the_workflow_is_bounded_in_time_and_rights_and_does_not_save_its_cache_on_every_run() -> None:
    workflow = yaml.safe_load((CI / "github-actions.yml").read_text())
    assert workflow["permissions"] == {"contents": "read"}
    job = workflow["jobs"]["iso"]
    assert 0 < job["timeout-minutes"] <= 120
    steps = {step.get("name"): step for step in job["steps"]}
    restore, save = steps["Restore the xenlive cache"], steps["Save the xenlive cache"]
    key = restore["with"]["key"]
    assert "github.run_id" not in key and "run_attempt" not in key  # a new key on every run saves every time
    assert "hashFiles(" in key and restore["with"]["restore-keys"].split()  # an older cache still restores
    assert save["with"]["key"] == "${{ steps.restore.outputs.cache-primary-key }}"
    assert "steps.restore.outputs.cache-hit != 'true'" in save["if"]  # a hit is not saved again
    assert "timeout" in yaml.safe_load((CI / "gitlab-ci.yml").read_text())["xenlive"]


# --- who builds ------------------------------------------------------------------------------------------------

XENLIVE_VERBS = ("xenlive doctor", "xenlive build", "xenlive smoke", "xenlive cache prune")


def test_the_workflow_sets_the_runner_up_with_sudo_then_builds_as_the_runner_user() -> None:
    job = github_job()
    assert "container" not in job and job["runs-on"].startswith("ubuntu-")
    runs = [str(step["run"]) for step in job["steps"] if "run" in step]
    xenlive = [line for run in runs for line in run.splitlines() if any(verb in line for verb in XENLIVE_VERBS)]
    assert len(xenlive) == len(XENLIVE_VERBS), xenlive
    assert not [line for line in xenlive if "sudo" in line]  # every xenlive step as runner, without root
    setup = commands(job["steps"]).split("xenlive doctor")[0]  # all that runs before the host check
    assert "sudo sysctl -w kernel.apparmor_restrict_unprivileged_userns=0" in setup
    assert "usermod --add-subuids 100000-165535" in setup and "usermod --add-subgids 100000-165535" in setup
    assert "/dev/kvm" in setup
    assert {"uidmap", "debian-archive-keyring"} <= apt_packages(github_install())
    assert "/etc/apt/trusted.gpg.d/" in github_install()  # mmdebstrap on Ubuntu checks Debian's archive with it


def test_the_gitlab_job_builds_as_root_of_its_container_and_says_why() -> None:
    job = gitlab_job()
    assert job["image"].startswith("debian:")
    assert "sudo" not in commands(job["before_script"] + job["script"])
    text = (CI / "gitlab-ci.yml").read_text()
    assert "seccomp" in text and "privileged" in text
    assert "shell executor" in (CI / "README.md").read_text()
