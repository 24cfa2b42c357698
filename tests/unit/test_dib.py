"""The diskimage-builder backend: its exact command line and environment, and the images it refuses."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from xenlive.builders.dib import check_partition_less, dib_argv, dib_env, element_dir, make_dib_image
from xenlive.errors import PartitionedImageError, RecipeError, ToolError
from xenlive.guestimage import load_guest_image
from xenlive.recipe import Mirror

ROOT = Path(__file__).resolve().parents[2]

MIRRORS = [
    Mirror(url="http://deb.debian.org/debian", suites=["bookworm", "bookworm-updates"]),
    Mirror(url="http://deb.debian.org/debian-security", suites=["bookworm-security"], components=["main", "contrib"]),
]
SOURCES = [line for mirror in MIRRORS for line in mirror.source_lines()]
PARTITIONED = """
- local_loop:
    name: image0
- partitioning:
    base: image0
    label: mbr
    partitions:
      - name: root
        flags: [boot, primary]
        size: 100%
"""
PARTITION_LESS = """
- local_loop:
    name: image0
    mkfs:
      name: mkfs_root
      mount:
        mount_point: /
"""


def test_argv_builds_a_raw_amd64_image_labelled_root_with_the_xenlive_element_last() -> None:
    argv = dib_argv(
        elements=["debian-minimal", "baremetal"], output=Path("/w/dib/image"), packages=["iproute2", "curl", "curl"]
    )
    assert argv == [
        *("disk-image-create", "-a", "amd64", "-t", "raw", "--root-label", "root", "-o", "/w/dib/image"),
        *("-p", "curl,iproute2"),
        *("debian-minimal", "baremetal", "xenlive-guest"),
    ]


def test_argv_without_packages_has_no_p_and_keeps_a_listed_xenlive_element_once() -> None:
    argv = dib_argv(elements=["xenlive-guest", "debian-minimal"], output=Path("/w/image"))
    assert argv == [
        *("disk-image-create", "-a", "amd64", "-t", "raw", "--root-label", "root", "-o", "/w/image"),
        *("xenlive-guest", "debian-minimal"),
    ]


def test_environment_is_complete_bootstraps_from_the_first_mirror_and_lists_every_source() -> None:
    env = dib_env(
        suite="bookworm",
        sources=SOURCES,
        element_dirs=[Path("/mine"), Path("/x/dib-elements")],
        bin_dir=Path("/venv/bin"),
        home=Path("/root"),
        tmp=Path("/w/tmp"),
        overlays=[Path("/x/init/systemd"), Path("/x/debian")],
        free_mib=128,
    )
    assert env == {
        "PATH": "/venv/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        "HOME": "/root",
        "TMPDIR": "/w/tmp",
        "LANG": "C.UTF-8",
        "ELEMENTS_PATH": "/mine:/x/dib-elements",
        "DIB_RELEASE": "bookworm",
        "DIB_DISTRIBUTION_MIRROR": "http://deb.debian.org/debian",
        "DIB_APT_SOURCES_CONF": "xenlive-0:deb http://deb.debian.org/debian bookworm main\n"
        "xenlive-1:deb http://deb.debian.org/debian bookworm-updates main\n"
        "xenlive-2:deb http://deb.debian.org/debian-security bookworm-security main contrib",
        "DIB_IMAGE_EXTRA_SIZE": "128",
        "DIB_APT_MINIMAL_CREATE_INTERFACES": "0",
        "XENLIVE_GUEST_OVERLAYS": "/x/init/systemd:/x/debian",
    }


def test_the_users_dib_settings_win_and_no_overlay_means_an_empty_variable() -> None:
    env = dib_env(
        suite="bookworm",
        sources=SOURCES,
        element_dirs=[],
        bin_dir=Path("/b"),
        home=Path("/h"),
        tmp=Path("/t"),
        environment={"DIB_RELEASE": "trixie", "DIB_DEBIAN_COMPONENTS": "main,contrib"},
    )
    assert env["DIB_RELEASE"] == "trixie"
    assert env["DIB_DEBIAN_COMPONENTS"] == "main,contrib"
    assert env["XENLIVE_GUEST_OVERLAYS"] == ""


@pytest.mark.parametrize("element", ["vm", "block-device-mbr", "block-device-gpt", "block-device-efi"])
def test_elements_that_partition_are_refused_naming_the_element_and_the_way_out(element: str) -> None:
    with pytest.raises(PartitionedImageError) as exc:
        check_partition_less(["debian-minimal", element, "baremetal"])
    assert str(exc.value) == (
        f"diskimage-builder element '{element}' makes a partitioned image: the build host has no device-mapper, "
        "so partitioned images cannot be built; use a partition-less element set such as debian-minimal + baremetal"
    )


def test_a_users_element_that_depends_on_vm_is_refused_naming_both(tmp_path: Path) -> None:
    (tmp_path / "my-site").mkdir()
    (tmp_path / "my-site" / "element-deps").write_text("package-installs\nvm\n")
    with pytest.raises(PartitionedImageError, match=r"element 'vm' \(needed by 'my-site'\) makes a partitioned"):
        check_partition_less(["debian-minimal", "my-site"], [tmp_path])


def test_a_users_element_with_a_partitioned_block_device_config_is_refused(tmp_path: Path) -> None:
    (tmp_path / "my-disk").mkdir()
    (tmp_path / "my-disk" / "block-device-default.yaml").write_text(PARTITIONED)
    with pytest.raises(PartitionedImageError, match=r"'my-disk' defines partitions in block-device-default\.yaml"):
        check_partition_less(["debian-minimal", "my-disk"], [tmp_path])


def test_block_device_config_with_partitions_is_refused_inline_or_from_a_file(tmp_path: Path) -> None:
    with pytest.raises(PartitionedImageError, match="DIB_BLOCK_DEVICE_CONFIG defines partitions or LVM"):
        check_partition_less(["debian-minimal"], environment={"DIB_BLOCK_DEVICE_CONFIG": PARTITIONED})
    config = tmp_path / "bd.yaml"
    config.write_text("- lvm:\n    name: lvm\n    base: [root]\n")
    with pytest.raises(PartitionedImageError, match="DIB_BLOCK_DEVICE_CONFIG defines partitions or LVM"):
        check_partition_less(["debian-minimal"], environment={"DIB_BLOCK_DEVICE_CONFIG": f"file://{config}"})


def test_partition_less_sets_pass_including_xenlives_own_element_and_a_single_filesystem_config() -> None:
    check_partition_less(
        ["debian-minimal", "baremetal", "xenlive-guest"],
        [element_dir()],
        environment={"DIB_BLOCK_DEVICE_CONFIG": PARTITION_LESS},
    )


def test_a_partitioned_request_is_refused_before_anything_runs(tmp_path: Path) -> None:
    work = tmp_path / "work"
    with pytest.raises(PartitionedImageError, match="'vm'"):
        make_dib_image(work, elements=["debian-minimal", "vm"], suite="bookworm", sources=SOURCES)
    assert not work.exists()


def test_without_diskimage_builder_the_error_names_the_extra_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys, "executable", str(tmp_path / "python3"))
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(ToolError) as exc:
        make_dib_image(tmp_path / "work", elements=["debian-minimal"], suite="bookworm", sources=SOURCES)
    assert str(exc.value) == (
        "disk-image-create not found; install the diskimage-builder backend with: pip install xenlive[dib]"
    )


def test_the_shipped_dib_image_recipe_loads_with_its_elements() -> None:
    image = load_guest_image(ROOT / "guest-images" / "debian-dib.yaml")
    assert image.image.builder == "diskimage-builder"
    assert image.image.elements == ["debian-minimal", "baremetal"]


def test_elements_belong_to_the_diskimage_builder_builder(tmp_path: Path) -> None:
    (tmp_path / "x.cfg.j2").write_text("")
    (tmp_path / "x.yaml").write_text("builder: mmdebstrap\nelements: [debian-minimal]\nconfig: x.cfg.j2\n")
    with pytest.raises(RecipeError) as caught:
        load_guest_image(tmp_path / "x.yaml")
    assert [str(p) for p in caught.value.problems] == [
        f"{tmp_path / 'x.yaml'}:2:1: elements: belongs to builder diskimage-builder, but this image uses builder "
        "mmdebstrap (hint: remove `elements:` or set `builder: diskimage-builder`)"
    ]


def test_debootstrap_and_apt_download_through_xenlives_package_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from xenlive.builders import dib

    seen: list[dict[str, str]] = []

    def run(argv: object, *, env: dict[str, str], **kwargs: object) -> None:
        seen.append(env)
        raise ToolError("stop here")

    monkeypatch.setattr(dib, "run", run)
    monkeypatch.setattr(dib, "require_tools", lambda tools: None)
    monkeypatch.setattr(dib, "find_disk_image_create", lambda: Path("/venv/bin/disk-image-create"))
    monkeypatch.setenv("http_proxy", "http://corporate:3128")
    with pytest.raises(ToolError, match="stop here"):
        make_dib_image(
            tmp_path / "w",
            elements=["debian-minimal"],
            suite="bookworm",
            sources=SOURCES,
            proxy="http://127.0.0.1:4711",
        )
    assert (seen[0]["http_proxy"], seen[0]["no_proxy"]) == ("http://127.0.0.1:4711", "")
