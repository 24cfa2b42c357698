"""Two builds writing into one OUTDIR at once (processes): each ends with one build's ISO beside that build's
own manifest, since the stage runner locks OUTDIR until the build has published."""

from __future__ import annotations

import hashlib
import json
import logging
import multiprocessing
import time
from pathlib import Path

import pytest

from xenlive.cache import Cache, StageInputs
from xenlive.context import BuildContext
from xenlive.fsutil import atomic_path, sha256_file
from xenlive.manifest import manifest_path
from xenlive.stages import Output, StageRunner

pytestmark = pytest.mark.tools


def _write_into_outdir(root: str, name: str, cache: str, publish_after: float) -> None:
    """One build writing OUTDIR/x.iso through the stage runner, then (after `publish_after` seconds) the manifest
    beside it, as build_iso() does; OUTDIR is released when the runner is closed."""
    handler = logging.FileHandler(Path(root, f"{name}.log"))
    logging.getLogger().addHandler(handler)
    logging.getLogger().setLevel(logging.INFO)
    out = Path(root, "out")
    iso = out / "x.iso"
    inputs = StageInputs("iso", 1, {"build": name}, {}, {})

    def build(work: Path) -> dict[str, object]:
        Path(root, f"{name}.started").touch()
        content = f"the ISO of {name}\n".encode() * 1000
        with atomic_path(iso) as tmp, tmp.open("wb") as f:
            for i in range(0, len(content), 1000):  # slowly, as xorriso would
                f.write(content[i : i + 1000])
                time.sleep(0.001)
        return {"sha256": hashlib.sha256(content).hexdigest()}

    runner = StageRunner(Cache(Path(cache)), BuildContext())
    try:
        result = runner.run(inputs, f"ISO of {name}", build, Output(iso, lambda key: None))
        time.sleep(publish_after)
        with atomic_path(manifest_path(iso)) as tmp:
            tmp.write_text(json.dumps({"build": name, "sha256": result.info["sha256"]}))
    finally:
        runner.close()
        handler.flush()


def test_two_builds_writing_into_one_outdir_at_once_leave_one_builds_iso_and_manifest(tmp_path: Path) -> None:
    """The first build is slow to publish; the second, on another cache, starts while the first writes its ISO.
    Unlocked, the second's ISO would end up beside the first's manifest."""
    (tmp_path / "out").mkdir()
    ctx = multiprocessing.get_context("fork")
    first = ctx.Process(target=_write_into_outdir, args=(str(tmp_path), "first", str(tmp_path / "c1"), 1.0))
    first.start()
    deadline = time.monotonic() + 10
    while not (tmp_path / "first.started").exists():
        assert time.monotonic() < deadline, "the first build never started"
        time.sleep(0.01)
    second = ctx.Process(target=_write_into_outdir, args=(str(tmp_path), "second", str(tmp_path / "c2"), 0.0))
    second.start()
    first.join(20)
    second.join(20)
    assert (first.exitcode, second.exitcode) == (0, 0)
    out = tmp_path / "out"
    manifest = json.loads(manifest_path(out / "x.iso").read_text())
    assert manifest == {"build": "second", "sha256": sha256_file(out / "x.iso")}
    assert f"waiting for {out}: another build is writing into it" in (tmp_path / "second.log").read_text()
    assert sorted(path.name for path in out.iterdir()) == ["x.iso", "x.manifest.json"]
