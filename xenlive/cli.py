"""The command line: parses arguments, calls the library, maps exceptions to messages and exit codes.

Exit codes: 0 success, 1 build/tool/boot failure, 2 invalid input (recipe or arguments), 130 interrupted.
"""

from __future__ import annotations

import json
import logging
import os
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import click

from xenlive import __version__
from xenlive.errors import XenliveError, printable

if TYPE_CHECKING:
    from xenlive.qemu import AccelChoice
    from xenlive.smoke import SmokeOptions

log = logging.getLogger("xenlive")

# Smoke's limit only ends a run that hangs (a passing run stops at its verdict), so it is generous: it leaves
# room for the slowest guest under TCG on a machine that is busy with something else, which slows a boot
# several times over (BENCHMARKS.md has the figures).
SMOKE_TIMEOUT = 900


class _PrintableFormatter(logging.Formatter):
    """Log lines name files, guests and URLs from recipes: each is escaped as error messages are."""

    def formatMessage(self, record: logging.LogRecord) -> str:  # logging's own name for it
        return printable(super().formatMessage(record))


def _echo(text: str) -> None:
    """Print one line of the CLI's own output, escaped: it may name files whose names someone else chose."""
    click.echo(printable(text))


def _setup_logging(debug: bool) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_PrintableFormatter("%(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.DEBUG if debug else logging.INFO)


def _guarded(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Turn exceptions into one line and an exit code; tracebacks only with --debug.

    No exception reaches the user as a traceback: one that is not a XenliveError is a bug, and says so."""

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        ctx = click.get_current_context()
        debug = bool(ctx.find_root().params.get("debug"))
        try:
            return fn(*args, **kwargs)
        except XenliveError as exc:
            if debug:
                log.exception("error")
            click.echo(("error: " if exc.exit_code != 2 else "") + "\n".join(exc.lines()), err=True)
            sys.exit(exc.exit_code)
        except KeyboardInterrupt:
            click.echo("interrupted", err=True)
            sys.exit(130)
        except (click.ClickException, click.exceptions.Exit, click.exceptions.Abort):
            raise  # click's own: a usage error found inside the command is printed by click (exit status 2)
        except Exception as exc:  # a bug: one line, and the traceback only on request
            if debug:
                log.exception("unexpected error")
            text = printable(" ".join(str(exc).split()))
            click.echo(
                f"error: unexpected {type(exc).__name__}{': ' + text if text else ''} "
                "(a bug in xenlive; --debug shows the traceback)",
                err=True,
            )
            sys.exit(1)

    wrapper.__name__ = fn.__name__
    wrapper.__doc__ = fn.__doc__
    return wrapper


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--debug", is_flag=True, help="Show command lines of external tools and tracebacks.")
@click.version_option(__version__, prog_name="xenlive")
def main(debug: bool) -> None:
    """xenlive: build bootable Xen live ISOs from YAML recipes, boot them in QEMU, smoke-test them."""
    _setup_logging(debug)


def _find_recipe(ctx: click.Context, param: click.Parameter, value: Path) -> Path:
    from xenlive.paths import find_recipe

    return find_recipe(value)


# A recipe file, or the name of a shipped one (`xenlive build xen-demo`, from any directory): a file wins.
recipe_arg = click.argument("recipe", type=click.Path(path_type=Path, dir_okay=False), callback=_find_recipe)
allow_dir_option = click.option(
    "--allow-dir",
    "allow",
    multiple=True,
    type=click.Path(path_type=Path, file_okay=False, exists=True),
    metavar="DIR",
    help="Let the recipe use files under DIR, outside its project (repeatable). Never /proc, /sys, /dev, /run.",
)


@main.command()
@click.argument("directory", type=click.Path(path_type=Path, dir_okay=True, file_okay=False))
@click.option("--name", default=None, help="The ISO's name (default: the directory's).")
@_guarded
def init(directory: Path, name: str | None) -> None:
    """Write a starter project into DIRECTORY (new or empty): a recipe, an overlay with a template, a README."""
    from xenlive.starter import write_starter

    starter = write_starter(directory, name)
    for path in starter.written:
        _echo(f"wrote {path}")
    _echo(f"next: xenlive validate {starter.recipe}, then: sudo xenlive build {starter.recipe} -o out")


@main.command()
@recipe_arg
@allow_dir_option
@_guarded
def validate(recipe: Path, allow: tuple[Path, ...]) -> None:
    """Check RECIPE (and the guest images it uses); print every problem as file:line:column."""
    from xenlive.recipe import load_recipe

    loaded = load_recipe(recipe, allow)
    from xenlive.pipeline import find_root_only
    from xenlive.userns import is_real_root

    if not is_real_root():  # valid, but not for a build by this user
        for problem in find_root_only(loaded):
            click.echo(f"warning: {problem}", err=True)
    _echo(f"{recipe}: ok ({len(loaded.recipe.guests)} guest(s))")


@main.command()
@click.argument("recipe", type=click.Path(path_type=Path, dir_okay=False), default="xen-demo", callback=_find_recipe)
@click.option(
    "--cache-dir",
    type=click.Path(path_type=Path, file_okay=False),
    default=None,
    help="Stage cache (default: $XDG_CACHE_HOME/xenlive).",
)
@allow_dir_option
@_guarded
def doctor(recipe: Path, cache_dir: Path | None, allow: tuple[Path, ...]) -> None:
    """Check this host for a build of RECIPE (default: xen-demo) and a boot of its ISO, building nothing: the
    tools (with their Debian packages) and files the build runs, root, KVM, free memory and disk.
    Exit status 1 if a build could not start; `build` runs the same check first."""
    from xenlive.doctor import examine_host
    from xenlive.paths import default_cache_dir
    from xenlive.recipe import load_recipe

    report = examine_host(load_recipe(recipe, allow), cache_dir or default_cache_dir())
    click.echo(f"host check for a build of {recipe}:")
    for line in report.lines():
        click.echo(f"  {line}")
    click.echo("ready to build" if report.ready else "not ready to build: install or fix what is MISSING")
    sys.exit(0 if report.ready else 1)


@main.command()
def recipes() -> None:
    """List the recipes xenlive ships, which any verb takes by name (`xenlive build xen-demo`)."""
    from xenlive.paths import shipped_recipes

    shipped = shipped_recipes()
    width = max((len(name) for name in shipped), default=0)
    for name, path in shipped.items():
        click.echo(f"{name:<{width}}  {first_comment(path)}".rstrip())


def first_comment(path: Path) -> str:
    """A recipe's first comment line (what it is for), without the `#`."""
    with path.open(encoding="utf-8", errors="replace") as text:
        for line in text:
            if line.startswith("#"):
                return line.lstrip("#").strip()
    return ""


@main.command()
@recipe_arg
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of YAML.")
@allow_dir_option
@_guarded
def show(recipe: Path, as_json: bool, allow: tuple[Path, ...]) -> None:
    """Print RECIPE as resolved: after `extends`, with every default filled in."""
    import yaml

    from xenlive.recipe import load_recipe

    data = resolved_data(load_recipe(recipe, allow))
    if as_json:
        click.echo(json.dumps(data, indent=2))
    else:
        click.echo(yaml.safe_dump(data, sort_keys=False), nl=False)


def resolved_data(loaded: Any) -> dict[str, Any]:
    """The recipe with every default filled in (the suite's Xen, dom0's mirrors), and after it the guest images
    the guests name: each one's builder and Debian suite (dom0's unless it names its own)."""
    from xenlive.stages.guest import image_suite, unique_images

    recipe = loaded.recipe
    data: dict[str, Any] = recipe.model_dump(mode="json")
    data["hypervisor"]["xen_version"] = recipe.xen_version()
    data["dom0"]["mirrors"] = [m.model_dump(mode="json") for m in recipe.dom0.resolved_mirrors()]
    data["guest_images"] = {
        image.name: {
            "builder": image.image.builder,
            "suite": image_suite(loaded, image) if image.builder.from_archive else None,
        }
        for image in unique_images(loaded)
    }
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
@click.option(
    "-j",
    "--jobs",
    type=click.IntRange(min=1),
    default=None,
    help="How many independent stages (dom0, guest images) run at once (default: all; 1: one after another).",
)
@click.option("--smoke", is_flag=True, help="Smoke-test the ISO after building it.")
@click.option("--timeout", default=SMOKE_TIMEOUT, show_default=True, help="Smoke timeout in seconds (with --smoke).")
@allow_dir_option
@_guarded
def build(
    recipe: Path,
    outdir: Path,
    cache_dir: Path | None,
    offline: bool,
    artifacts: str | None,
    strict: bool,
    jobs: int | None,
    smoke: bool,
    timeout: int,
    allow: tuple[Path, ...],
) -> None:
    """Build the ISO described by RECIPE into OUTDIR."""
    from xenlive.download import local_dir
    from xenlive.pipeline import BuildOptions, build_iso
    from xenlive.recipe import load_recipe

    if artifacts and (directory := local_dir(artifacts)) and not directory.is_dir():
        raise click.BadParameter(
            f"{directory} is not a directory; give a directory or an http(s) URL", param_hint="--artifacts"
        )
    loaded = load_recipe(recipe, allow)
    if os.geteuid() != 0:  # an ordinary user builds as root of user namespaces of its own (xenlive.userns)
        from xenlive.userns import reenter

        check_root_only(loaded)
        sys.exit(reenter(sys.argv[1:]))
    options = BuildOptions.make(
        outdir=outdir,
        cache_dir=cache_dir,
        offline=offline,
        artifacts=artifacts,
        strict=strict,
        source_date_epoch=environment_epoch(),
        jobs=jobs,
    )
    result = build_iso(loaded, options)
    _echo(f"wrote {result.iso} ({result.iso.stat().st_size / 2**20:.0f} MiB) and {result.manifest.name}")
    for entry in result.left_out:
        _echo(f"left out guest {entry.guest}: {entry.reason}")
    _echo(f"boot it with: {invoked_as()} boot {result.iso}")
    if smoke:
        from xenlive.smoke import SmokeOptions

        _run_smoke(result.iso, SmokeOptions(timeout=timeout))


def check_root_only(loaded: Any) -> None:
    """A build by an ordinary user cannot make images whose builder needs the host's root: say which, located."""
    from xenlive.errors import RecipeError
    from xenlive.pipeline import find_root_only

    problems = find_root_only(loaded)
    if problems:
        raise RecipeError(problems)


def command_name(info_name: str | None, argv0: str) -> str:
    """How the user ran xenlive, for the commands it prints: the console script's name (`xenlive`), or the
    path of build.py as it was typed (`./build.py`; `python3 build.py` also gives `./build.py`)."""
    if info_name and info_name.endswith(".py"):
        return argv0 if "/" in argv0 else f"./{argv0}"
    return info_name or "xenlive"


def invoked_as() -> str:
    """command_name() of this run."""
    return command_name(click.get_current_context().find_root().info_name, sys.argv[0])


def environment_epoch() -> int | None:
    """The SOURCE_DATE_EPOCH this command was started with, if it is a number: it dates every stage but those
    that read the recipe when the recipe names iso.source_date_epoch (xenlive.context.Dates)."""
    value = os.environ.get("SOURCE_DATE_EPOCH", "")
    return int(value) if value.isdigit() else None


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
@click.option(
    "--forward",
    "forwards",
    multiple=True,
    metavar="HOST:DOM0",
    help="Forward a host TCP port (on 127.0.0.1) to dom0; repeatable. Default: 8080:8080 (web console), 2222:22 (SSH).",
)
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
    forwards: tuple[str, ...],
) -> None:
    """Boot ISO in QEMU with the serial console on this terminal (quit: Ctrl-A X)."""
    from xenlive.qemu import DEFAULT_FORWARDS, BootOptions, Forward, boot_interactive

    try:
        chosen = tuple(Forward.parse(f) for f in forwards) if forwards else DEFAULT_FORWARDS
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--forward") from None
    options = BootOptions(
        accel=cast("AccelChoice", accel),
        cpu=cpu,
        memory=memory,
        smp=smp,
        vga=vga,
        uefi=uefi,
        usb=usb,
        snapshot=snapshot,
        forwards=chosen,
    )
    sys.exit(boot_interactive(iso, options))


@main.command(context_settings={"ignore_unknown_options": True, "allow_interspersed_args": False})
@click.option(
    "--iso",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="The ISO whose boot to reach, when several `xenlive boot` run at once.",
)
@click.argument("guest", required=False)
@click.argument("command", nargs=-1, type=click.UNPROCESSED)
@_guarded
def ssh(iso: Path | None, guest: str | None, command: tuple[str, ...]) -> None:
    """SSH into dom0 of a running `xenlive boot`, or into GUEST through dom0, and run COMMAND (a login shell
    without one); exits with its status. `dom0` as GUEST is dom0 itself. Needs no key in the recipe: each
    boot makes a key pair of its own and hands dom0 the public half."""
    from xenlive.sshboot import choose_session, find_sessions, run_ssh, ssh_argv

    session = choose_session(find_sessions(), iso)
    target = None if guest in (None, "dom0", "Domain-0") else guest
    sys.exit(run_ssh(ssh_argv(session, target, command)))


@main.command()
@click.argument("iso", type=click.Path(path_type=Path, dir_okay=False))
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
@click.option("--cpu", default=None, help="QEMU CPU model (default: host with KVM, qemu64,+svm,+npt with TCG).")
@click.option(
    "--memory",
    "-m",
    type=click.IntRange(min=1),
    default=None,
    help="RAM in MiB (default: the recipe's machine.memory).",
)
@click.option("--smp", type=click.IntRange(min=1), default=None, help="vCPUs (default: the recipe's machine.vcpus).")
@click.option("--uefi", is_flag=True, help="Boot with UEFI firmware (OVMF) instead of BIOS.")
@click.option("--usb", is_flag=True, help="Boot the ISO as a USB stick instead of a CD.")
@click.option(
    "--shutdown",
    is_flag=True,
    help="Once every guest is ready, press the machine's power button: pass only if dom0 shuts the guests down "
    "cleanly and powers the machine off by itself (QEMU exits) within 180 s.",
)
@click.option(
    "--from-log",
    type=click.Path(path_type=Path, dir_okay=False, exists=True),
    default=None,
    help="Do not boot: judge this recorded serial log as a live run would, against the manifest beside ISO "
    "(the ISO itself need not be there). The log has no timestamps: the report gives line numbers.",
)
@_guarded
def smoke(
    iso: Path,
    timeout: int,
    junit: Path | None,
    serial_log: Path | None,
    accel: str,
    cpu: str | None,
    memory: int | None,
    smp: int | None,
    uefi: bool,
    usb: bool,
    shutdown: bool,
    from_log: Path | None,
) -> None:
    """Boot ISO headless and pass only when Xen, dom0, the toolstack and every guest report ready
    (with --from-log, judge a recorded serial log instead)."""
    from xenlive.smoke import SmokeOptions

    options = SmokeOptions(
        timeout=timeout,
        junit=junit,
        serial_log=serial_log,
        accel=cast("AccelChoice", accel),
        shutdown=shutdown,
        uefi=uefi,
        usb=usb,
        from_log=from_log,
        cpu=cpu,
        memory=memory,
        smp=smp,
    )
    _run_smoke(iso, options)


def _run_smoke(iso: Path, options: SmokeOptions) -> None:
    from xenlive.smoke import run_smoke

    report = run_smoke(iso, options, echo=lambda line: click.echo(line))
    if not report.passed:
        sys.exit(1)


@main.command()
@click.argument("a", type=click.Path(path_type=Path, dir_okay=False, exists=True))
@click.argument("b", type=click.Path(path_type=Path, dir_okay=False, exists=True))
@click.option("--summary", is_flag=True, help="Print xenlive's summary even when diffoscope is installed.")
@_guarded
def diff(a: Path, b: Path, summary: bool) -> None:
    """Explain what differs between two builds: A and B are two ISOs or two manifests.

    Uses diffoscope when installed; otherwise prints the differing package versions, stage keys and
    recipe hash, and the files that differ on the ISOs (and inside their squashfs images).
    Exit status: 0 identical, 1 different, 2 bad input."""
    import shutil

    from xenlive.diff import diff_builds, run_diffoscope

    if not summary and shutil.which("diffoscope"):
        status = run_diffoscope(a, b)
        sys.exit(2 if status not in (0, 1) else status)
    report = diff_builds(a, b)
    for line in report.lines:
        _echo(line)  # names files of the two ISOs
    if not report.different:
        _echo(f"{a} and {b}: identical")
    sys.exit(1 if report.different else 0)


DURATION_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
SIZE_UNITS = {"": 1, "K": 2**10, "M": 2**20, "G": 2**30, "T": 2**40}


def parse_duration(text: str) -> float:
    """'90m', '12h', '30d', '2w' (or plain seconds) -> seconds."""
    match = re.fullmatch(r"(\d+(?:\.\d+)?)([smhdw]?)", text.strip())
    if match is None:
        raise click.BadParameter(f"{text!r}: give a number with s, m, h, d or w, e.g. 30d")
    return float(match[1]) * DURATION_UNITS[match[2] or "s"]


def parse_size(text: str) -> int:
    """'500M', '10G', '1.5GiB', '2TB' (binary units) or plain bytes -> bytes."""
    match = re.fullmatch(r"(\d+(?:\.\d+)?)\s*([KMGT]?)(?:I?B)?", text.strip().upper())
    if match is None:
        raise click.BadParameter(f"{text!r}: give a size such as 500M, 10G or 1.5GiB")
    return int(float(match[1]) * SIZE_UNITS[match[2]])


cache_dir_option = click.option(
    "--cache-dir",
    type=click.Path(path_type=Path, file_okay=False),
    default=None,
    help="Stage cache (default: $XDG_CACHE_HOME/xenlive).",
)


def _open_cache(cache_dir: Path | None) -> Any:
    from xenlive.cache import Cache
    from xenlive.paths import default_cache_dir

    return Cache(cache_dir or default_cache_dir())


def _age(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds / size:.0f}{unit}"
    return f"{seconds:.0f}s"


@main.group(invoke_without_command=True)
@cache_dir_option
@click.pass_context
def cache(ctx: click.Context, cache_dir: Path | None) -> None:
    """Show or prune the stage cache (`cache` alone lists it)."""
    ctx.obj = cache_dir
    if ctx.invoked_subcommand is None:
        ctx.invoke(cache_list, cache_dir=cache_dir)


@cache.command("list")
@cache_dir_option
@click.pass_context
@_guarded
def cache_list(ctx: click.Context, cache_dir: Path | None) -> None:
    """Each entry: stage, key, size, age (since built) and last use, least recently used first."""
    import time

    store = _open_cache(cache_dir or ctx.obj)
    entries = sorted(store.entries(), key=lambda e: e.last_used)
    now = time.time()
    click.echo(f"{'STAGE':<24} {'KEY':<24} {'SIZE':>9} {'AGE':>5} {'LAST USE':>8}")
    for e in entries:
        size = f"{e.size / 2**20:.1f}M"
        click.echo(f"{e.stage:<24} {e.key:<24} {size:>9} {_age(now - e.created):>5} {_age(now - e.last_used):>8}")
    total = sum(e.size for e in entries) / 2**20
    click.echo(f"{len(entries)} entr{'y' if len(entries) == 1 else 'ies'}, {total:.1f} MiB in {store.root}")
    files, size = store.package_files()
    if files:
        click.echo(f"Debian packages and indexes: {files} files, {size / 2**20:.1f} MiB in {store.debs}")


@cache.command("prune")
@cache_dir_option
@click.option("--older-than", "older_than", default=None, help="Remove entries unused for this long (e.g. 30d, 12h).")
@click.option("--max-size", "max_size", default=None, help="Then remove least recently used entries down to this.")
@click.option(
    "--all",
    "everything",
    is_flag=True,
    help="Remove every entry, the downloaded files, and leftovers of interrupted builds.",
)
@click.pass_context
@_guarded
def cache_prune(
    ctx: click.Context, cache_dir: Path | None, older_than: str | None, max_size: str | None, everything: bool
) -> None:
    """Remove entries by age or size; entries a running build is using are always kept."""
    if older_than is None and max_size is None and not everything:
        raise click.UsageError("say what to prune: --older-than, --max-size or --all")
    if os.geteuid() != 0:
        # A user's builds leave files owned by the user's subordinate ids (the trees' owners), which only root
        # of the user's namespace may remove: prune there, as the build ran, where the host allows it.
        from xenlive.userns import find_problems, reenter, this_host

        if not find_problems(this_host()):
            sys.exit(reenter(sys.argv[1:]))
    store = _open_cache(cache_dir or ctx.obj)
    result = store.prune(
        older_than=parse_duration(older_than) if older_than else None,
        max_size=parse_size(max_size) if max_size else None,
        everything=everything,
    )
    for e in result.removed:
        click.echo(f"removed {e.stage} {e.key} ({e.size / 2**20:.1f} MiB)")
    for e in result.busy:
        click.echo(f"kept {e.stage} {e.key}: a running build is using it")
    freed = sum(e.size for e in result.removed) / 2**20
    click.echo(f"removed {len(result.removed)} entr{'y' if len(result.removed) == 1 else 'ies'}, {freed:.1f} MiB")


@cache.command("verify")
@cache_dir_option
@click.pass_context
@_guarded
def cache_verify(ctx: click.Context, cache_dir: Path | None) -> None:
    """Hash every file of every entry against its manifest; exit 1 if any entry is damaged.

    A damaged entry is rebuilt by the next build that needs it; `cache prune --all` removes all."""
    store = _open_cache(cache_dir or ctx.obj)
    damaged = store.verify()
    for e, problem in damaged:
        click.echo(f"damaged: {e.stage} {e.key}: {problem}")
    click.echo(f"{len(store.entries())} entries checked, {len(damaged)} damaged")
    sys.exit(1 if damaged else 0)


if __name__ == "__main__":
    main()
