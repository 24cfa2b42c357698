"""docs/ci: the GitHub Actions workflow and the GitLab CI file each build a matrix of recipes with xenlive's
cache restored and saved, smoke-test each ISO with --junit, and keep the serial logs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

CI = Path(__file__).resolve().parents[2] / "docs" / "ci"


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
