"""Rootless builds with the real tools, as an ordinary account made for the test (bench/asuser.py), beside root.

The BSD builders untar sets (owners kept) and run makefs on the tree: inside the user namespace (xenlive.userns)
they write the same image, byte for byte, as root does, and outside it they cannot. `cache prune` by the user
enters the namespace too, to remove what a build left owned by the user's subordinate ids.
The builds of whole recipes: tests/boot/test_rootless.py.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.accounts import asuser
from tests.fakeserver import FakeServer
from tests.unit.test_bsd_images import FREEBSD_SETS, NETBSD_SETS, Member, freebsd_image, netbsd_image
from xenlive import userns
from xenlive.userns import find_problems, is_real_root, this_host

pytestmark = [
    pytest.mark.tools,
    pytest.mark.skipif(not is_real_root(), reason="makes an account: needs the host's root"),
]

ROOT = Path(__file__).resolve().parents[2]


def user_builds_possible() -> bool:
    """Whether an account with subordinate ids could enter a user namespace here (all but its own ids)."""
    host = this_host()
    return not [p for p in find_problems(host) if "subordinate ids" not in p]


needs_userns = pytest.mark.skipif(not user_builds_possible(), reason="no user namespaces for ordinary users here")


def account_fixture(name: str) -> Callable[[], Iterator[asuser.Account]]:
    def make() -> Iterator[asuser.Account]:
        account = asuser.ensure_account(name)
        try:
            yield account
        finally:
            asuser.remove_account(account)

    return pytest.fixture(make)


account = account_fixture("xlt-rootless")

# The builder's own step, as the guest stage runs it (a job made as tests/tools/test_bsd_images.py makes it), on
# stand-in sets fetched from the loopback server; it records each file of the tree makefs is given (owner, group,
# mode) in argv[4], seen from where it runs.
BUILD_IMAGE = textwrap.dedent(
    """
    import json, sys
    from pathlib import Path

    from xenlive.builders import files, freebsd, netbsd
    from xenlive.builders.base import Archive
    from xenlive.context import BuildContext
    from xenlive.download import DownloadCache
    from xenlive.guestimage import load_guest_image
    from xenlive.stages.guest import fetch_image_files, image_job
    from xenlive.tools import makefs

    recipe, downloads, work, tree_record = map(Path, sys.argv[1:5])
    image = load_guest_image(recipe)
    fetched = fetch_image_files(image, DownloadCache(downloads), offline=False, artifacts=None)

    def make_ffs_recording_its_tree(tree, out, **options):
        seen = {p.relative_to(tree).as_posix(): p.lstat() for p in tree.rglob("*")}
        record = {name: [s.st_uid, s.st_gid, oct(s.st_mode)] for name, s in sorted(seen.items())}
        tree_record.write_text(json.dumps(record))
        return makefs.make_ffs(tree, out, **options)

    netbsd.make_ffs = freebsd.make_ffs = make_ffs_recording_its_tree
    work.mkdir()
    image.builder.build(work, image_job(BuildContext(), image, Archive("bookworm", ()), fetched))
    """
)

# Started by the account: BUILD_IMAGE as root of user namespaces of its own, as `xenlive build` enters them.
INSIDE = textwrap.dedent(
    """
    import sys
    from xenlive.userns import find_account, run_inside, this_host

    sys.exit(run_inside(find_account(this_host()), [sys.executable, *sys.argv[1:]]))
    """
)

# Files of several owners, and setuid and setgid files, as the real sets have: root's, a daemon's (uid 25), a
# user's (1001), a setuid root program, a setuid program of another owner and a setgid one.
OWNERS = {
    "usr/bin/su": Member(b"stand-in su\n", 0o4555, 0, "wheel"),
    "usr/bin/wall": Member(b"stand-in wall\n", 0o2555, 4, "tty"),
    "usr/libexec/sm.bin/sendmail": Member(b"stand-in sendmail\n", 0o6555, 25, "smmsp", uid=25, user="smmsp"),
    "var/spool/clientmqueue/.keep": Member(b"", 0o640, 25, "smmsp", uid=25, user="smmsp"),
    "home/ada/.profile": Member(b"PATH=/bin\n", 0o600, 1001, "ada", uid=1001, user="ada"),
}


def sets_with_owners(sets: dict[str, dict[str, bytes | Member]], base: str) -> dict[str, dict[str, bytes | Member]]:
    return {name: {**files, **OWNERS} if name == base else files for name, files in sets.items()}


IMAGES = {
    "netbsd": lambda d, server: netbsd_image(d, server, sets=sets_with_owners(NETBSD_SETS, "base.tar.xz")),
    "freebsd": lambda d, server: freebsd_image(d, server, sets=sets_with_owners(FREEBSD_SETS, "base.txz")),
}


def build_image(argv_prefix: list[str], recipe: Path, where: Path) -> tuple[subprocess.CompletedProcess[str], Path]:
    """BUILD_IMAGE's run through `argv_prefix` (a python), in `where`: how it ended, and its work directory."""
    work = where / "work"
    argv = [*argv_prefix, "-c", BUILD_IMAGE, str(recipe), str(where / "dl"), str(work), str(where / "tree.json")]
    done = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=300, check=False)
    return done, work


@needs_userns
@pytest.mark.skipif(shutil.which("makefs") is None, reason="needs makefs (apt-get install makefs)")
@pytest.mark.parametrize("system", ["netbsd", "freebsd"])
def test_a_user_build_writes_the_bsd_image_root_writes_byte_for_byte(
    tmp_path: Path, server: FakeServer, account: asuser.Account, system: str
) -> None:
    # The recipe and its overlay where the account can read them.
    recipe = IMAGES[system](_readable_dir(account.home / "recipe"), server)

    as_root = tmp_path / "root"
    as_root.mkdir()
    done, root_work = build_image([sys.executable], recipe, as_root)
    assert done.returncode == 0, done.stderr[-3000:]

    inside = _own_dir(account, account.home / "inside")
    python = asuser.python_argv(account, ["-c", INSIDE])
    done, user_work = build_image(python, recipe, inside)
    assert done.returncode == 0, done.stderr[-3000:]

    # makefs saw the same tree (every owner, group and mode; the setuid and setgid bits kept) ...
    root_tree = json.loads((as_root / "tree.json").read_text())
    assert root_tree["usr/libexec/sm.bin/sendmail"] == [25, 25, oct(0o106555)]
    assert root_tree["home/ada/.profile"] == [1001, 1001, oct(0o100600)]
    assert json.loads((inside / "tree.json").read_text()) == root_tree
    # ... and wrote it the same: the image, and what the manifest lists of it.
    for name in ("image.squashfs", "packages.tsv"):
        assert (user_work / name).read_bytes() == (root_work / name).read_bytes(), name

    # The same account outside a user namespace cannot keep the sets' owners: the build fails.
    outside = _own_dir(account, account.home / "outside")
    done, _ = build_image(asuser.python_argv(account, []), recipe, outside)
    assert done.returncode != 0
    assert "Cannot change ownership" in done.stderr, done.stderr[-3000:]


def _readable_dir(path: Path) -> Path:
    path.mkdir(mode=0o755)
    return path


def _own_dir(account: asuser.Account, path: Path) -> Path:
    path.mkdir()
    asuser.give(account, path)
    return path


@needs_userns
def test_cache_prune_by_the_user_removes_what_its_builds_left_owned_by_its_subordinate_ids(
    account: asuser.Account,
) -> None:
    # What a user build killed with SIGKILL leaves: a tree in CACHE/tmp whose files belong to ids of the
    # namespace (here 100, mapped to the account's 100th subordinate id), in directories only they may write.
    cache = account.cache / "xenlive"
    leftover = cache / "tmp" / "dom0-rootfs-0123abcd" / "tree"
    (leftover / "var" / "lib" / "private").mkdir(parents=True)
    (leftover / "var" / "lib" / "private" / "state").write_text("stand-in\n")
    subuid = userns.sub_range(userns.SUBUID, account.name, account.uid)
    subgid = userns.sub_range(userns.SUBGID, account.name, account.gid)
    assert subuid and subgid
    for path in [account.cache, cache, cache / "tmp", leftover.parent]:
        os.chown(path, account.uid, account.gid)
    for path in [leftover, *leftover.rglob("*")]:
        os.chown(path, subuid.start + 99, subgid.start + 99)
    (leftover / "var" / "lib" / "private").chmod(0o700)

    removing = subprocess.run(["runuser", "-u", account.name, "--", "rm", "-rf", str(leftover)], check=False)
    assert removing.returncode != 0 and leftover.exists()  # the account alone cannot

    done = subprocess.run(
        asuser.xenlive_argv(account, ["cache", "prune", "--all"]),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert list((cache / "tmp").iterdir()) == []
    assert cache.stat().st_uid == account.uid  # the cache is still the account's
