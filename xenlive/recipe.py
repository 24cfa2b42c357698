"""Recipes: the typed, frozen model of what the user asked for, and load_recipe() that builds it.

Loading runs in steps, each reporting every problem it finds at once as file:line:column:
read the YAML files (keeping positions) -> follow `extends` and merge -> validate against the models ->
find the files named (overlays, guest images) -> cross-field checks. A YAML syntax error stops only the
file it is in; a check that needs a section runs whenever that section is valid, whatever else is wrong.
Field names follow xl.cfg(5) where one exists (memory, vcpus, type, cmdline).
"""

from __future__ import annotations

import difflib
import hashlib
import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from xenlive.errors import Problem, RecipeError
from xenlive.guestimage import LoadedGuestImage, read_guest_image
from xenlive.yamlpos import KeyPath, Located, Model, load_located, problem_from_error

NAME_PATTERN = r"^[a-z0-9][a-z0-9-]{0,30}$"
NAME_FORM = "1 to 31 of a-z, 0-9 and '-', starting with a letter or digit"

# Debian suite -> the Xen version its xen-system-amd64 ships.
XEN_BY_SUITE = {"bookworm": "4.17"}

# Memory Xen keeps for itself and its page tables, not available to dom0 or guests (MiB).
XEN_OVERHEAD_MIB = 64

MIB: dict[str, Any] = {"unit": "MiB"}

M = TypeVar("M", bound=BaseModel)


class BootMenu(Model):
    """The GRUB menu of the ISO. Its entries come from the templates under `grub/`."""

    title: str = Field("Xen live demo", description="Title of the default menu entry.")
    timeout: Annotated[int, Field(ge=0, le=600)] = Field(
        5,
        description="Seconds the menu waits before it boots the default entry; 0 boots it at once.",
        json_schema_extra={"unit": "seconds"},
    )
    default: Literal["demo", "troubleshoot"] = Field(
        "demo",
        description="Entry booted when the timeout runs out: `demo` boots quietly; `troubleshoot` boots with "
        "verbose Xen and dom0 logging on the serial console.",
    )


class Iso(Model):
    """The ISO image that `build` writes as OUTDIR/NAME.iso, with OUTDIR/NAME.manifest.json beside it."""

    name: Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")] = Field(
        description="File name of the ISO and its manifest, without extension.",
        json_schema_extra={"form": "letters, digits, '.', '_' and '-', starting with a letter or digit"},
    )
    volume_label: Annotated[str, Field(pattern=r"^[A-Z0-9_]{1,32}$")] = Field(
        "XENLIVE",
        description="ISO 9660 volume label, the name the medium shows when it is mounted.",
        json_schema_extra={"form": "1 to 32 of A-Z, 0-9 and _"},
    )
    boot_menu: BootMenu = Field(default_factory=BootMenu, description="The GRUB boot menu.")
    source_date_epoch: Annotated[int, Field(ge=0)] | None = Field(
        None,
        description="The time every file in the ISO and its layers is dated (seconds since 1970, as "
        "SOURCE_DATE_EPOCH): with the same archive state, the same recipe gives the same ISO, bit for bit. "
        "Unset: the SOURCE_DATE_EPOCH environment variable, else the commit time of the recipe in its git "
        "checkout, else 0. Changing it rebuilds every stage.",
        json_schema_extra={"default_text": "$SOURCE_DATE_EPOCH, else the recipe's git commit time, else 0"},
    )


class Hypervisor(Model):
    """Xen itself, from Debian's xen-hypervisor package of the dom0 suite."""

    xen_version: Literal["4.17"] = Field(
        "4.17",
        description='Xen version; must be the one the dom0 suite ships (bookworm: "4.17"). Quote it in YAML: '
        "an unquoted 4.17 is a number.",
    )
    cmdline: str = Field(
        "loglvl=warning guest_loglvl=warning bootscrub=off",
        description="Extra Xen command line. xenlive adds the console and `dom0_mem` options itself. "
        "`bootscrub=off` skips Xen's background scrubbing of free memory at boot, which under QEMU TCG "
        "competes with dom0 and the guests for the CPUs (measured: dom0 up at 74 s instead of 114 s, a Debian "
        "guest ready after 64 s of its own boot instead of 145 s); drop it on hardware whose RAM may hold "
        "secrets from an earlier boot.",
    )


class Mirror(Model):
    """One Debian archive source, as in a deb822 sources entry."""

    url: Annotated[str, Field(pattern=r"^(https?|file)://\S+$")] = Field(
        description="Archive URL.", json_schema_extra={"form": "an http://, https:// or file:// URL without spaces"}
    )
    suites: Annotated[list[str], Field(min_length=1)] = Field(
        description="Suites to use from this archive, e.g. `[bookworm, bookworm-updates]`."
    )
    components: Annotated[list[str], Field(min_length=1)] = Field(["main"], description="Archive components.")

    def source_lines(self) -> list[str]:
        """One-line apt sources, one per suite, as mmdebstrap takes them on its command line."""
        return [f"deb {self.url} {suite} {' '.join(self.components)}" for suite in self.suites]


class Ssh(Model):
    """SSH into dom0. sshd starts on the first connection (socket activation) and makes its host key then,
    so no key is ever baked into the ISO."""

    authorized_keys: list[Annotated[str, Field(pattern=r"^(ssh-|ecdsa-|sk-)\S+ \S+")]] = Field(
        [],
        description="Public keys allowed to log in as root, one OpenSSH public key line each.",
        json_schema_extra={"form": "an OpenSSH public key line, e.g. `ssh-ed25519 AAAA... me@host`"},
    )
    password_login: bool = Field(
        False, description="Allow password logins (needs `root_password_hash`). Keys only when false."
    )
    root_password_hash: Annotated[str, Field(pattern=r"^\$[0-9a-z]+\$\S+$")] | None = Field(
        None,
        description="root's password as a crypt(3) hash, e.g. from `mkpasswd -m yescrypt`.",
        json_schema_extra={"default_text": "none (no root password)", "form": "a crypt(3) hash such as $y$..."},
    )


class Dom0(Model):
    """The live Debian system Xen boots as dom0. It starts the guests."""

    suite: str = Field("bookworm", description="Debian suite of dom0 and of Debian guests. Supported: bookworm.")
    mirrors: list[Mirror] | None = Field(
        None,
        description="Archive sources. Leave it out to use deb.debian.org for SUITE and SUITE-updates and "
        "the security archive for SUITE-security.",
        json_schema_extra={"default_text": "deb.debian.org (SUITE, SUITE-updates) and the security archive"},
    )
    packages: list[str] = Field([], description="Extra Debian packages installed in dom0.")
    overlays: list[str] = Field(
        [],
        description="Directory trees copied into dom0 after the built-in `overlays/xenlive`, in order: a name "
        "looked up under `overlays/`, or a path (containing '/') relative to the recipe. Files ending in "
        "`.j2` are rendered with jinja2 and lose the suffix.",
    )
    hostname: Annotated[str, Field(pattern=NAME_PATTERN)] = Field(
        "xenlive", description="dom0's host name.", json_schema_extra={"form": NAME_FORM}
    )
    memory: Annotated[int, Field(ge=256)] = Field(
        512, description="dom0 memory, given to Xen as `dom0_mem=SIZE,max:SIZE`.", json_schema_extra=MIB
    )
    cmdline: str = Field(
        "",
        description="Extra dom0 kernel command line. Avoid `quiet`: under QEMU TCG it made dom0 reach its "
        "toolstack in 284 s instead of 114 s (measured; the boot log on the console keeps it moving).",
    )
    autologin: bool = Field(True, description="Log root in on the console (hvc0) without a password.")
    ssh: Ssh = Field(default_factory=Ssh, description="SSH into dom0 (`build.py boot` forwards a port to it).")
    web_console: bool = Field(
        True, description="Serve the web console (domains, consoles, start/stop) on port 8080 of every dom0 address."
    )

    def apt_sources(self) -> list[str]:
        """The one-line apt sources of every mirror, in order: the first bootstraps a tree."""
        return [line for mirror in self.resolved_mirrors() for line in mirror.source_lines()]

    def resolved_mirrors(self) -> list[Mirror]:
        if self.mirrors is not None:
            return self.mirrors
        return [
            Mirror(url="http://deb.debian.org/debian", suites=[self.suite, f"{self.suite}-updates"]),
            Mirror(url="http://deb.debian.org/debian-security", suites=[f"{self.suite}-security"]),
        ]


class Machine(Model):
    """The (virtual) machine the ISO is meant for. `boot` and `smoke` use it as their QEMU defaults, and the
    memory of dom0, Xen and the autostart guests must fit in it."""

    memory: Annotated[int, Field(ge=512)] = Field(1024, description="RAM.", json_schema_extra=MIB)
    vcpus: Annotated[int, Field(ge=1, le=64)] = Field(2, description="Number of CPUs.")


def _ipv4_network(value: str) -> str:
    try:
        return str(ipaddress.IPv4Network(value))
    except ValueError as exc:
        raise ValueError(f"not an IPv4 network: {exc}") from None


class Network(Model):
    """The guests' network: a bridge in dom0, DHCP and DNS for the guests (dnsmasq), and NAT out through
    dom0's own uplink. Each guest gets one vif on the bridge with a MAC derived from its name."""

    enabled: bool = Field(True, description="Give every guest a vif on the bridge. Off: guests have no network.")
    bridge: Annotated[str, Field(pattern=r"^[a-z][a-z0-9_-]{0,14}$")] = Field(
        "xenbr0", description="Name of the bridge in dom0.", json_schema_extra={"form": "a Linux interface name"}
    )
    subnet: Annotated[str, AfterValidator(_ipv4_network)] = Field(
        "10.0.3.0/24",
        description="IPv4 subnet of the bridge. dom0 takes the first address, guest N (from 0) the 10+N-th.",
        json_schema_extra={"form": "an IPv4 network such as 10.0.3.0/24, at most /26"},
    )
    domain: Annotated[str, Field(pattern=r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*$")] = Field(
        "xen.lan", description="DNS domain of the guests; dnsmasq answers for NAME and NAME.DOMAIN."
    )
    nat: bool = Field(True, description="Masquerade the guests' traffic out through dom0's uplink.")

    @property
    def network(self) -> ipaddress.IPv4Network:
        return ipaddress.IPv4Network(self.subnet)

    def dom0_address(self) -> ipaddress.IPv4Address:
        return self.network.network_address + 1

    def guest_address(self, index: int) -> ipaddress.IPv4Address:
        return self.network.network_address + 10 + index


def guest_mac(name: str) -> str:
    """A stable MAC for a guest's vif: Xen's OUI 00:16:3e and three bytes of sha256(name)."""
    digest = hashlib.sha256(name.encode()).digest()
    return "00:16:3e:" + ":".join(f"{b:02x}" for b in (digest[0] & 0x7F, digest[1], digest[2]))


class Guest(Model):
    """One domain that dom0 creates at boot, in the order of the list. Keys follow xl.cfg(5)."""

    name: Annotated[str, Field(pattern=NAME_PATTERN)] = Field(
        description="Domain name, also the guest's host name. Unique, and not dom0's hostname.",
        json_schema_extra={"form": NAME_FORM},
    )
    image: Annotated[str, Field(pattern=r"^[A-Za-z0-9._/-]+$")] = Field(
        description="Guest image recipe: a name looked up as `guest-images/NAME.yaml`, or a path (containing "
        "'/' or ending in .yaml) relative to the recipe.",
        json_schema_extra={"form": "a name or relative path of letters, digits, '.', '_', '/' and '-'"},
    )
    type: Literal["pv", "pvh", "hvm"] = Field(
        "pv", description="Virtualisation mode, as xl.cfg `type`. The guest image must list it in its `types`."
    )
    memory: Annotated[int, Field(ge=32)] = Field(128, description="Memory, as xl.cfg `memory`.", json_schema_extra=MIB)
    vcpus: Annotated[int, Field(ge=1, le=64)] = Field(1, description="Number of virtual CPUs, as xl.cfg `vcpus`.")
    autostart: bool = Field(
        True, description="Create the domain when dom0 boots. Only autostart guests count against machine.memory."
    )
    cmdline: str = Field("", description="Extra guest kernel command line, as xl.cfg `cmdline`.")


class Recipe(Model):
    """A whole recipe, after `extends` is resolved."""

    iso: Iso = Field(description="The ISO image.")
    hypervisor: Hypervisor = Field(default_factory=Hypervisor, description="Xen.")
    dom0: Dom0 = Field(default_factory=Dom0, description="The live dom0.")
    machine: Machine = Field(default_factory=Machine, description="The machine it boots on.")
    network: Network = Field(default_factory=Network, description="The guests' network.")
    guests: list[Guest] = Field([], description="Domains dom0 creates, in order.")


class LoadedRecipe(BaseModel):
    """A recipe plus where it came from: the files it was read from and the files it refers to."""

    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True)

    path: Path  # as given
    files: list[Path]  # the recipe and every file it extends, child first, as given / relative to the child
    recipe: Recipe
    overlay_dirs: list[Path]  # resolved recipe overlays (not the built-in one), absolute
    guest_image_files: dict[str, Path]  # guest name -> guest image recipe file, absolute
    guest_images: dict[str, LoadedGuestImage]  # guest name -> its loaded guest image


def load_recipe(path: Path) -> LoadedRecipe:
    """Read, merge, validate and cross-check a recipe. Raises RecipeError with every problem found."""
    path = Path(path)
    chain = _read_chain(path)
    located = chain.located
    recipe: Recipe | None = None
    problems = list(chain.problems)
    try:
        recipe = Recipe.model_validate(located.data)
    except ValidationError as exc:
        # With a broken `extends` chain, keys the parent would have given are missing: do not report those.
        problems += [
            problem_from_error(err, located, Recipe)
            for err in exc.errors()
            if chain.complete or err["type"] != "missing"
        ]
    overlays, overlay_problems = _find_overlays(located)
    image_files, images, image_problems = _find_guest_images(located)
    problems += overlay_problems + image_problems + _cross_checks(located, chain.complete)
    if problems or recipe is None:
        raise RecipeError(problems)
    return LoadedRecipe(
        path=path,
        files=chain.files,
        recipe=recipe,
        overlay_dirs=overlays,
        guest_image_files=image_files,
        guest_images=images,
    )


# ---- extends -----------------------------------------------------------------------------------------


@dataclass
class _Chain:
    located: Located  # all files merged, child on top
    files: list[Path]  # child first
    problems: list[Problem]
    complete: bool  # every file of the chain was read


def _read_chain(path: Path) -> _Chain:
    """Read a recipe and the recipes it extends. Raises RecipeError only if the recipe itself is unusable."""
    layers: list[Located] = []
    files: list[Path] = []
    problems: list[Problem] = []
    complete = True
    current = path
    while True:
        try:
            located = load_located(current)
        except RecipeError as exc:
            if not layers:
                raise
            problems += exc.problems
            complete = False
            break
        layers.append(located)
        files.append(current)
        problems += located.problems
        if "extends" not in located.data:
            break
        parent = _parent_path(current, located.data.pop("extends"), files, located)
        if isinstance(parent, Problem):
            problems.append(parent)
            complete = False
            break
        current = parent
    merged = layers[-1]
    for child in reversed(layers[:-1]):
        merged = _merge(merged, child)
    return _Chain(merged, files, problems, complete)


def _parent_path(child: Path, name: Any, chain: list[Path], located: Located) -> Path | Problem:
    """The file `extends: NAME` in `child` names, or the problem with it."""
    at: KeyPath = ("extends",)
    if not isinstance(name, str) or not name:
        return located.problem(at, "must be the path of a recipe file", "e.g. `extends: base.yaml`")
    parent = Path(os.path.normpath(child.parent / name))
    if parent.resolve() in [p.resolve() for p in chain]:
        cycle = " -> ".join(str(p) for p in [*chain, parent])
        return located.problem(at, f"cycle: {cycle}", "a recipe cannot extend itself, even indirectly")
    if parent.is_dir():
        return located.problem(at, f"{parent} is a directory, not a recipe file", "name a .yaml file")
    if not parent.exists():
        return located.problem(
            at, f"parent recipe {parent} not found", "the path is relative to this recipe's directory"
        )
    return parent


def _merge(base: Located, child: Located) -> Located:
    """Deep-merge mappings (child keys win); a list or scalar from the child replaces the parent's."""
    merged = Located(None, dict(base.values), dict(base.keys), dict(base.texts), [])

    def merge(a: Any, b: Any, at: KeyPath) -> Any:
        if isinstance(a, dict) and isinstance(b, dict):
            out = dict(a)
            for key, value in b.items():
                out[key] = merge(a[key], value, (*at, key)) if key in a else value
            return out
        merged.forget_below(at)  # replaced wholesale: the parent's positions under it are stale
        merged.texts.pop(at, None)
        return b

    merged.data = merge(base.data, child.data, ())
    merged.values.update(child.values)
    merged.keys.update(child.keys)
    merged.texts.update(child.texts)
    return merged


# ---- what is valid, for the checks -------------------------------------------------------------------
# The checks below read the merged data key by key, each key only if it is valid by itself, so that they
# run even when other keys have errors (those errors are reported by the validation of the whole recipe).


def _section(data: dict[str, Any], name: str) -> Any:
    return data.get(name, {})


def _guests_of(data: dict[str, Any]) -> list[Any]:
    raw = data.get("guests", [])
    return raw if isinstance(raw, list) else []


def _valid_value(model: type[BaseModel], section: Any, name: str) -> Any:
    """The value of key `name` of a section (its default if absent), or None if the key is invalid."""
    if not isinstance(section, dict):
        return None
    info = model.model_fields[name]
    if name not in section:
        return None if info.is_required() else info.get_default(call_default_factory=True)
    field_type: Any = Annotated[info.annotation, info]  # the key's type with its constraints
    adapter: TypeAdapter[Any] = TypeAdapter(field_type, config=ConfigDict(strict=True))
    try:
        return adapter.validate_python(section[name])
    except ValidationError:
        return None


def _valid_or_none(model: type[M], section: Any) -> M | None:
    try:
        return model.model_validate(section)
    except ValidationError:
        return None


# ---- files a recipe names ----------------------------------------------------------------------------


def project_dirs(recipe_path: Path) -> list[Path]:
    """Where names in a recipe (`overlays`, `image`) are looked up: the recipe's directory, then its parent.

    Paths stay relative when the recipe's path is, so that messages show them as the user would type them.
    """
    here = recipe_path.parent
    up = Path(os.path.normpath(here / os.pardir))
    return [here] if up == here else [here, up]


def search_dirs(recipe_path: Path, subdir: str) -> list[Path]:
    """The directories a name is looked up in, first match wins: e.g. recipes/guest-images, guest-images."""
    return [base / subdir for base in project_dirs(recipe_path)]


def find_named(recipe_path: Path, subdir: str, name: str, suffix: str = "") -> Path | None:
    """Resolve a name like `debian` to e.g. guest-images/debian.yaml.

    A name containing '/' (or ending in `suffix`) is a path relative to the recipe's directory instead.
    """
    if "/" in name or (suffix and name.endswith(suffix)):
        candidate = Path(os.path.normpath(recipe_path.parent / name))
        return candidate if candidate.exists() else None
    for directory in search_dirs(recipe_path, subdir):
        candidate = directory / f"{name}{suffix}"
        if candidate.exists():
            return candidate
    return None


def _find_file(located: Located, at: KeyPath, subdir: str, name: str, suffix: str) -> tuple[Path | None, str, str]:
    """Look up a name or path from the recipe at `at`: the file, or None and what to tell the user."""
    source = located.position(at).file
    found = find_named(source, subdir, name, suffix)
    if found is not None:
        return found, "", ""
    if "/" in name or (suffix and name.endswith(suffix)):
        where = os.path.normpath(source.parent / name)
        return None, f"{where} not found", "a path is relative to the recipe's directory"
    looked = " or ".join(str(d) for d in search_dirs(source, subdir))
    return None, f"'{name}' not found in {looked}", _not_found_hint(source, subdir, name, suffix)


def _not_found_hint(recipe_path: Path, subdir: str, name: str, suffix: str) -> str:
    known: set[str] = set()
    for directory in search_dirs(recipe_path, subdir):
        if directory.is_dir():
            known |= {p.name.removesuffix(suffix) for p in directory.iterdir() if p.name.endswith(suffix)}
    close = difflib.get_close_matches(name, sorted(known), n=1)
    if close:
        return f"did you mean '{close[0]}'?"
    if known:
        return f"available: {', '.join(sorted(known))}"
    return f"put {name}{suffix} in {subdir}/ beside the recipe or one directory up"


def _find_overlays(located: Located) -> tuple[list[Path], list[Problem]]:
    problems: list[Problem] = []
    overlays: list[Path] = []
    for i, name in enumerate(_valid_value(Dom0, _section(located.data, "dom0"), "overlays") or []):
        at: KeyPath = ("dom0", "overlays", i)
        found, message, hint = _find_file(located, at, "overlays", name, "")
        if found is None:
            problems.append(located.problem(at, f"overlay {message}", hint))
        elif not found.is_dir():
            problems.append(located.problem(at, f"overlay {found} is not a directory", "name a directory tree"))
        else:
            overlays.append(found.resolve())
    return overlays, problems


def _find_guest_images(located: Located) -> tuple[dict[str, Path], dict[str, LoadedGuestImage], list[Problem]]:
    problems: list[Problem] = []
    files: dict[str, Path] = {}
    images: dict[str, LoadedGuestImage] = {}
    read: dict[Path, LoadedGuestImage | None] = {}
    by_name: dict[str, tuple[Path, Path]] = {}  # image name -> its file (resolved, as found)
    for i, raw in enumerate(_guests_of(located.data)):
        name, image_name = _valid_value(Guest, raw, "name"), _valid_value(Guest, raw, "image")
        if image_name is None:
            continue
        found, message, hint = _find_file(located, ("guests", i, "image"), "guest-images", image_name, ".yaml")
        if found is None:
            problems.append(located.problem(("guests", i, "image"), f"guest image {message}", hint))
            continue
        key = found.resolve()
        # The image's name (its file name) names its build stage and its file on the ISO: one file per name.
        namesake = by_name.setdefault(key.stem, (key, found))
        if namesake[0] != key:
            problems.append(
                located.problem(
                    ("guests", i, "image"),
                    f"guest image {found} has the same name as {namesake[1]}, which another guest uses",
                    "rename one of the two files: an image is built and stored on the ISO under its file name",
                )
            )
            continue
        if key not in read:
            read[key], image_problems = read_guest_image(found)
            problems += image_problems
        image = read[key]
        if image is None:
            continue
        if name is not None:
            files[name] = key
            images[name] = image
        guest_type = _valid_value(Guest, raw, "type")
        if guest_type is not None and guest_type not in image.image.types:
            problems.append(
                located.problem(
                    ("guests", i, "type"),
                    f"guest image '{image_name}' cannot boot as {guest_type}",
                    f"it supports: {', '.join(image.image.types)}",
                )
            )
    return files, images, problems


# ---- cross-field checks ------------------------------------------------------------------------------


def _cross_checks(located: Located, complete: bool) -> list[Problem]:
    """Checks across keys. Those that combine values from several files need the whole `extends` chain."""
    data = located.data
    problems: list[Problem] = []
    suite = _valid_value(Dom0, _section(data, "dom0"), "suite")
    xen_version = _valid_value(Hypervisor, _section(data, "hypervisor"), "xen_version")
    if suite is not None and suite not in XEN_BY_SUITE:
        close = difflib.get_close_matches(suite, list(XEN_BY_SUITE), n=1)
        hint = f"did you mean '{close[0]}'?" if close else f"supported: {', '.join(XEN_BY_SUITE)}"
        problems.append(located.problem(("dom0", "suite"), f"unsupported suite '{suite}'", hint))
    elif suite is not None and xen_version is not None and XEN_BY_SUITE[suite] != xen_version:
        xen = XEN_BY_SUITE[suite]
        problems.append(
            located.problem(
                ("hypervisor", "xen_version"), f"Debian {suite} ships Xen {xen}", f'set hypervisor.xen_version: "{xen}"'
            )
        )

    hostname = _valid_value(Dom0, _section(data, "dom0"), "hostname") if complete else None
    seen: dict[str, int] = {}
    for i, raw in enumerate(_guests_of(data)):
        name = _valid_value(Guest, raw, "name")
        at: KeyPath = ("guests", i, "name")
        if name is None:
            continue
        if name in seen:
            problems.append(
                located.problem(
                    at,
                    f"duplicate guest name '{name}' (also guests[{seen[name]}])",
                    "every guest needs a name of its own",
                )
            )
        else:
            seen[name] = i
        if name == hostname:
            problems.append(
                located.problem(at, f"guest name '{name}' is dom0's hostname", "rename the guest or set dom0.hostname")
            )

    dom0 = _valid_or_none(Dom0, _section(data, "dom0"))
    machine = _valid_or_none(Machine, _section(data, "machine"))
    guests = [_valid_or_none(Guest, raw) for raw in _guests_of(data)]
    if complete and dom0 is not None and machine is not None and None not in guests:
        problems += _check_memory(dom0, machine, [g for g in guests if g is not None], located)
    if dom0 is not None and dom0.ssh.password_login and dom0.ssh.root_password_hash is None:
        problems.append(
            located.problem(
                ("dom0", "ssh", "password_login"),
                "password logins need a root password",
                "set dom0.ssh.root_password_hash (e.g. from `mkpasswd -m yescrypt`) or use authorized_keys",
            )
        )
    network = _valid_or_none(Network, _section(data, "network"))
    if network is not None:
        problems += _check_network(network, len(guests), located)
    return problems


def _check_network(network: Network, guests: int, located: Located) -> list[Problem]:
    """dom0, then guests from the 10th address on: the subnet must hold them all, and DHCP's spare range."""
    if network.network.prefixlen > 26:
        return [
            located.problem(
                ("network", "subnet"),
                f"{network.subnet} is too small: xenlive needs at least a /26",
                "use a /24 such as 10.0.3.0/24",
            )
        ]
    if 10 + guests >= network.network.num_addresses - 1:
        return [
            located.problem(
                ("network", "subnet"),
                f"{network.subnet} has no address for each of the {guests} guests",
                "use a larger subnet",
            )
        ]
    return []


def _check_memory(dom0: Dom0, machine: Machine, guests: list[Guest], located: Located) -> list[Problem]:
    autostart = [g for g in guests if g.autostart]
    needed = XEN_OVERHEAD_MIB + dom0.memory + sum(g.memory for g in autostart)
    if needed <= machine.memory:
        return []
    parts = [f"Xen {XEN_OVERHEAD_MIB}", f"dom0 {dom0.memory}"] + [f"{g.name} {g.memory}" for g in autostart]
    if not autostart:
        return [
            located.problem(
                ("dom0", "memory"),
                f"Xen and dom0 need {needed} MiB ({' + '.join(parts)}) but machine.memory is {machine.memory} MiB",
                f"raise machine.memory to at least {needed} or lower dom0.memory",
            )
        ]
    return [
        located.problem(
            ("guests",),
            at_key=True,
            message=f"autostart guests need {needed} MiB ({' + '.join(parts)}) but "
            f"machine.memory is {machine.memory} MiB",
            hint=f"raise machine.memory to at least {needed}, lower guest or dom0 memory, "
            "or set autostart: false on some guests",
        )
    ]
