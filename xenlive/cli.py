"""The command line: parses arguments, calls the library, maps exceptions to messages and exit codes.

Exit codes: 0 success, 1 build/tool/boot failure, 2 invalid input (recipe or arguments), 130 interrupted.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from xenlive.errors import XenliveError

log = logging.getLogger("xenlive")

# Under QEMU TCG the demo's two guests were all ready after 287-377 s (BENCHMARKS.md); leave room.
SMOKE_TIMEOUT = 600


def _setup_logging(debug: bool) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.DEBUG if debug else logging.INFO)


def _guarded(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Turn library exceptions into one clear message and an exit code; tracebacks only with --debug."""

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        ctx = click.get_current_context()
        debug = bool(ctx.find_root().params.get("debug"))
        try:
            return fn(*args, **kwargs)
        except XenliveError as exc:
            if debug:
                log.exception("error")
            click.echo(f"error: {exc}" if exc.exit_code != 2 else str(exc), err=True)
            sys.exit(exc.exit_code)
        except KeyboardInterrupt:
            click.echo("interrupted", err=True)
            sys.exit(130)

    wrapper.__name__ = fn.__name__
    wrapper.__doc__ = fn.__doc__
    return wrapper


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--debug", is_flag=True, help="Show command lines of external tools and tracebacks.")
def main(debug: bool) -> None:
    """xenlive: build bootable Xen live ISOs from YAML recipes, boot them in QEMU, smoke-test them."""
    _setup_logging(debug)


recipe_arg = click.argument("recipe", type=click.Path(path_type=Path, dir_okay=False))


@main.command()
@recipe_arg
@_guarded
def validate(recipe: Path) -> None:
    """Check RECIPE (and the guest images it uses); print every problem as file:line:column."""
    from xenlive.recipe import load_recipe

    loaded = load_recipe(recipe)
    click.echo(f"{recipe}: ok ({len(loaded.recipe.guests)} guest(s))")


@main.command()
@recipe_arg
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of YAML.")
@_guarded
def show(recipe: Path, as_json: bool) -> None:
    """Print RECIPE as resolved: after `extends`, with every default filled in."""
    import yaml

    from xenlive.recipe import load_recipe

    data = resolved_data(load_recipe(recipe))
    if as_json:
        click.echo(json.dumps(data, indent=2))
    else:
        click.echo(yaml.safe_dump(data, sort_keys=False), nl=False)


def resolved_data(loaded: Any) -> dict[str, Any]:
    data: dict[str, Any] = loaded.recipe.model_dump(mode="json")
    data["dom0"]["mirrors"] = [m.model_dump(mode="json") for m in loaded.recipe.dom0.resolved_mirrors()]
    return data


@main.command()
@recipe_arg
@click.option(
    "-o",
    "--output",
    "outdir",
    type=click.Path(path_type=Path, file_okay=False),
    default=Path("out"),
    show_default=True,
    help="Directory for NAME.iso and NAME.manifest.json.",
)
@click.option(
    "--cache-dir",
    type=click.Path(path_type=Path, file_okay=False),
    default=None,
    help="Stage cache (default: $XDG_CACHE_HOME/xenlive).",
)
@click.option(
    "--offline", is_flag=True, help="Download nothing: take pinned files from the cache (or --artifacts DIR)."
)
@click.option(
    "--artifacts",
    metavar="DIR_OR_URL",
    default=None,
    help="A local mirror (directory or URL) holding the pinned files under their own names; tried first.",
)
@click.option("--strict", is_flag=True, help="Fail if a guest's files cannot be fetched, instead of leaving it out.")
@click.option("--smoke", is_flag=True, help="Smoke-test the ISO after building it.")
@click.option("--timeout", default=SMOKE_TIMEOUT, show_default=True, help="Smoke timeout in seconds (with --smoke).")
@_guarded
def build(
    recipe: Path,
    outdir: Path,
    cache_dir: Path | None,
    offline: bool,
    artifacts: str | None,
    strict: bool,
    smoke: bool,
    timeout: int,
) -> None:
    """Build the ISO described by RECIPE into OUTDIR."""
    from xenlive.pipeline import BuildOptions, build_iso
    from xenlive.recipe import load_recipe

    loaded = load_recipe(recipe)
    options = BuildOptions.make(outdir=outdir, cache_dir=cache_dir, offline=offline, artifacts=artifacts, strict=strict)
    result = build_iso(loaded, options)
    click.echo(f"wrote {result.iso} ({result.iso.stat().st_size / 2**20:.0f} MiB) and {result.manifest.name}")
    for entry in result.left_out:
        click.echo(f"left out guest {entry.guest}: {entry.reason}")
    click.echo(f"boot it with: ./build.py boot {result.iso}")
    if smoke:
        _run_smoke(result.iso, timeout=timeout, junit=None, serial_log=None, accel="auto")


@main.command()
@click.argument("iso", type=click.Path(path_type=Path, dir_okay=False, exists=True))
@click.option(
    "--accel",
    type=click.Choice(["auto", "kvm", "tcg"]),
    default="auto",
    show_default=True,
    help="auto probes whether KVM really works and falls back to TCG.",
)
@click.option("--cpu", default=None, help="QEMU CPU model (default: host with KVM, qemu64,+svm,+npt with TCG).")
@click.option("--memory", "-m", type=int, default=None, help="RAM in MiB (default: the recipe's machine.memory).")
@click.option("--smp", type=int, default=None, help="vCPUs (default: the recipe's machine.vcpus).")
@click.option("--vga", is_flag=True, help="Open a VGA window besides the serial console.")
@click.option("--uefi", is_flag=True, help="Boot with OVMF (UEFI) instead of SeaBIOS.")
@click.option("--usb", is_flag=True, help="Attach the ISO as a USB stick instead of a CD.")
@click.option("--snapshot/--no-snapshot", default=True, show_default=True, help="Discard writes to the image.")
@_guarded
def boot(
    iso: Path,
    accel: str,
    cpu: str | None,
    memory: int | None,
    smp: int | None,
    vga: bool,
    uefi: bool,
    usb: bool,
    snapshot: bool,
) -> None:
    """Boot ISO in QEMU with the serial console on this terminal (quit: Ctrl-A X)."""
    from xenlive.qemu import boot_interactive

    sys.exit(
        boot_interactive(
            iso, accel=accel, cpu=cpu, memory=memory, smp=smp, vga=vga, uefi=uefi, usb=usb, snapshot=snapshot
        )
    )


@main.command()
@click.argument("iso", type=click.Path(path_type=Path, dir_okay=False, exists=True))
@click.option(
    "--timeout", default=SMOKE_TIMEOUT, show_default=True, help="Seconds from power-on until all guests must be ready."
)
@click.option("--junit", type=click.Path(path_type=Path, dir_okay=False), default=None, help="Write JUnit XML here.")
@click.option(
    "--log",
    "serial_log",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="Keep the full serial log here (default: ISO name + .serial.log beside the ISO).",
)
@click.option("--accel", type=click.Choice(["auto", "kvm", "tcg"]), default="auto", show_default=True)
@_guarded
def smoke(iso: Path, timeout: int, junit: Path | None, serial_log: Path | None, accel: str) -> None:
    """Boot ISO headless and pass only when Xen, dom0, the toolstack and every guest report ready."""
    _run_smoke(iso, timeout=timeout, junit=junit, serial_log=serial_log, accel=accel)


def _run_smoke(iso: Path, *, timeout: int, junit: Path | None, serial_log: Path | None, accel: str) -> None:
    from xenlive.smoke import run_smoke

    report = run_smoke(
        iso, timeout=timeout, junit=junit, serial_log=serial_log, accel=accel, echo=lambda line: click.echo(line)
    )
    if not report.passed:
        sys.exit(1)


if __name__ == "__main__":
    main()
