"""Free text from a recipe cannot change the meaning of the files it lands in.

grub.cfg and every shipped xl config are rendered as the build renders them (iso.grub_config,
config.guest_config) and parsed back as GRUB and xl would read them: for every value a recipe may hold,
grub.cfg has exactly its two menu entries with exactly the expected multiboot2 and module2 lines, and an
xl config exactly the keys its template writes. Values that would break out of their quotes or lines
are refused by the recipe's types instead, as a located error.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from tests.standins import loaded_recipe
from xenlive.recipe import Recipe
from xenlive.stages.config import guest_config
from xenlive.stages.iso import grub_config

IMAGES = Path(__file__).resolve().parents[2] / "guest-images"
TEMPLATES = sorted(IMAGES.glob("*.cfg.j2"))

# The nastiest values the types let through: every character a title or a command line may hold.
EDGY_TITLE = "Demo's ISO {1} (a;b) & <c> | !d ~e `f` *g? [h] #i %j ^k @l =m +n -o /p .q ,r :s"
EDGY_CMDLINE = "a=b,c:d/e+f@g%h~i^j -k_l.m  loglvl=all  xen.x=1-3"

# Values that tried to add menu entries, GRUB commands, xl keys or kernel options.
HOSTILE: list[tuple[str, str]] = [
    ("iso.boot_menu.title", 'x" {\n}\nmenuentry "evil" {\n    multiboot2 /evil'),
    ("iso.boot_menu.title", "a $root b"),
    ("iso.boot_menu.title", "a\\"),
    ("iso.boot_menu.title", "bell\a"),
    ("hypervisor.cmdline", 'x"\nmodule2 /evil'),
    ("hypervisor.cmdline", "a; insmod evil"),
    ("hypervisor.cmdline", "a $prefix"),
    ("hypervisor.cmdline", "dom0=pvh\ttab"),
    ("dom0.cmdline", "init=/bin/sh\nmodule2 /evil"),
    ("dom0.cmdline", "a 'quoted words' b"),
    ("dom0.cmdline", "a # the rest is a comment"),
    ("guests.0.cmdline", 'quiet"\nbootloader = "/bin/sh'),
    ("guests.0.cmdline", "quiet\" ; bootloader = '/bin/sh"),
    ("guests.0.cmdline", "a\\"),
]


def recipe_data(**values: str) -> dict[str, Any]:
    data: dict[str, Any] = {
        "iso": {"name": "t", "boot_menu": {"title": EDGY_TITLE}},
        "hypervisor": {"cmdline": EDGY_CMDLINE},
        "dom0": {"cmdline": EDGY_CMDLINE, "memory": 512},
        "guests": [{"name": "one", "image": "x", "cmdline": EDGY_CMDLINE}, {"name": "two", "image": "x"}],
    }
    for path, value in values.items():
        parts = [int(p) if p.isdigit() else p for p in path.split(".")]
        node = data
        for part in parts[:-1]:
            node = node[part]
        node[parts[-1]] = value
    return data


# ---- GRUB: its script's words, quotes and separators --------------------------------------------------


def grub_words(text: str) -> list[list[str]]:
    """grub.cfg as GRUB's script reads it: commands (lists of words); `{` and `}` are words of their own.
    Quotes: '...' literal, "..." with \\ before $ " \\ newline; $NAME in a word is kept as "$NAME"."""
    commands: list[list[str]] = []
    words: list[str] = []
    word: str | None = None
    i = 0
    while i < len(text):
        c = text[i]
        if c in " \t":
            if word is not None:
                words.append(word)
                word = None
        elif c in "\n;":
            if word is not None:
                words.append(word)
                word = None
            if words:
                commands.append(words)
            words = []
        elif c == "#" and word is None:
            i = text.find("\n", i) - 1 if "\n" in text[i:] else len(text)
        elif c in "{}" and word is None:
            words.append(c)
        elif c == "'":
            end = text.index("'", i + 1)
            word = (word or "") + text[i + 1 : end]
            i = end
        elif c == '"':
            i += 1
            part = ""
            while text[i] != '"':
                if text[i] == "\\" and text[i + 1] in '$"\\\n':
                    i += 1
                part += text[i]
                i += 1
            word = (word or "") + part
        elif c == "\\":
            i += 1
            word = (word or "") + text[i]
        else:
            word = (word or "") + c
        i += 1
    if word is not None:
        words.append(word)
    if words:
        commands.append(words)
    return commands


def menu_entries(text: str) -> list[tuple[str, list[list[str]]]]:
    """(title, commands in its body) of each menuentry; the commands outside are checked to be the header's."""
    commands = grub_words(text)
    entries: list[tuple[str, list[list[str]]]] = []
    outside: list[str] = []
    body: list[list[str]] | None = None
    for words in commands:
        if words[0] == "menuentry":
            assert words[-1] == "{" and len(words) == 3, words
            body = []
            entries.append((words[1], body))
        elif words == ["}"]:
            body = None
        elif body is not None:
            body.append(words)
        else:
            outside.append(words[0])
    assert outside == ["set", "set", "serial", "terminal_input", "terminal_output", "insmod", "insmod"]
    return entries


def assert_grub_cfg_means_what_the_recipe_says(recipe: Recipe) -> None:
    text = grub_config(loaded_recipe(recipe.model_dump(), {"x": IMAGES / "debian.cfg.j2"}))
    assert "$" not in text  # no GRUB variable is ever expanded
    memory = f"dom0_mem={recipe.dom0.memory}M,max:{recipe.dom0.memory}M"
    xen = ["multiboot2", "/boot/xen.gz", "console=com1,vga", "com1=115200,8n1", memory]
    live = ["module2", "/live/vmlinuz", "boot=xenlive", f"xenlive.medium={recipe.iso.volume_label}", "console=hvc0"]
    initrd = ["module2", "--nounzip", "/live/initrd.img"]
    title = recipe.iso.boot_menu.title
    assert menu_entries(text) == [
        (title, [xen + recipe.hypervisor.cmdline.split(), live + recipe.dom0.cmdline.split(), initrd]),
        (
            f"{title}: troubleshooting (verbose Xen and dom0 logging)",
            [
                [*xen, "loglvl=all", "guest_loglvl=all", "sync_console", "noreboot"],
                [*live, "ignore_loglevel"],
                initrd,
            ],
        ),
    ]


# ---- xl: key = value lines, values strings, numbers or lists ---------------------------------------------

XL_TOKEN = re.compile(
    r"""(?P<space>[ \t]+)|(?P<comment>\#[^\n]*)|(?P<newline>[\n;])"""
    r"""|(?P<string>"(?:[^"\\\n]|\\.)*"|'(?:[^'\\\n]|\\.)*')"""
    r"""|(?P<number>[0-9]+)|(?P<id>[A-Za-z_][A-Za-z0-9_]*)|(?P<op>[=\[\],])"""
)


def xl_settings(text: str) -> dict[str, Any]:
    """An xl config as xl(1)'s parser reads it: NAME = "string" | number | [ "list", ... ] settings."""
    tokens: list[tuple[str, str]] = []
    position = 0
    while position < len(text):
        match = XL_TOKEN.match(text, position)
        assert match, f"xl cannot read {text[position : position + 40]!r}"
        position = match.end()
        kind = match.lastgroup or ""
        if kind == "string":
            tokens.append((kind, re.sub(r"\\(.)", r"\1", match.group()[1:-1])))
        elif kind not in ("space", "comment"):
            tokens.append((kind, match.group()))
    settings: dict[str, Any] = {}
    i = 0
    while i < len(tokens):
        if tokens[i][0] == "newline":
            i += 1
            continue
        (kind, name), (_, equals) = tokens[i], tokens[i + 1]
        assert kind == "id" and equals == "=", tokens[i : i + 3]
        assert name not in settings, f"{name} is set twice"
        i += 2
        if tokens[i][1] == "[":
            items = []
            i += 1
            while tokens[i][1] != "]":
                if tokens[i][0] == "string":
                    items.append(tokens[i][1])
                i += 1
            settings[name] = items
        else:
            assert tokens[i][0] in ("string", "number"), tokens[i]
            settings[name] = tokens[i][1]
        i += 1
        assert i == len(tokens) or tokens[i][0] == "newline", f"{name}: more than one value: {tokens[i]}"
    return settings


COMMON_XL_KEYS = {"name", "type", "memory", "vcpus", "disk", "vif", "on_crash"}
XL_KEYS = {
    ("debian.cfg.j2", "pv"): COMMON_XL_KEYS | {"kernel", "ramdisk", "cmdline", "tsc_mode"},
    ("freebsd.cfg.j2", "pvh"): COMMON_XL_KEYS | {"kernel", "cmdline"},
    ("freebsd.cfg.j2", "hvm"): COMMON_XL_KEYS | {"boot", "serial"},
    ("netbsd.cfg.j2", "pv"): COMMON_XL_KEYS | {"kernel", "root", "extra"},
}
XL_KEYS[("debian.cfg.j2", "pvh")] = XL_KEYS[("debian.cfg.j2", "pv")]


def test_every_shipped_xl_template_has_its_expected_keys_listed() -> None:
    assert {template for template, _ in XL_KEYS} == {t.name for t in TEMPLATES}


def assert_xl_configs_mean_what_the_recipe_says(recipe: Recipe) -> None:
    for (template, guest_type), keys in XL_KEYS.items():
        data = recipe.model_dump()
        data["guests"][0]["type"] = guest_type
        loaded = loaded_recipe(data, {"x": IMAGES / template})
        guest = loaded.recipe.guests[0]
        settings = xl_settings(guest_config(loaded, guest))
        assert set(settings) == keys, template
        assert (settings["name"], settings["memory"]) == (guest.name, str(guest.memory))
        kernel_line = settings.get("cmdline", settings.get("extra"))
        if kernel_line is not None:
            assert kernel_line.split()[-len(guest.cmdline.split()) :] == guest.cmdline.split()
        assert len(settings["disk"]) == 1 and len(settings["vif"]) == 1


def test_edgy_but_valid_text_is_accepted_and_changes_nothing_but_itself() -> None:
    recipe = Recipe.model_validate(recipe_data())
    assert recipe.iso.boot_menu.title == EDGY_TITLE and recipe.guests[0].cmdline == EDGY_CMDLINE
    assert_grub_cfg_means_what_the_recipe_says(recipe)
    assert_xl_configs_mean_what_the_recipe_says(recipe)


@pytest.mark.parametrize(("key", "value"), HOSTILE, ids=[f"{k}={v!r}" for k, v in HOSTILE])
def test_text_that_would_change_grub_cfg_or_an_xl_config_is_refused(key: str, value: str) -> None:
    try:
        recipe = Recipe.model_validate(recipe_data(**{key: value}))
    except ValidationError as exc:
        assert [".".join(str(p) for p in error["loc"]) for error in exc.errors()] == [key]
        return
    # Had the recipe's types let it through, the generated files would have to mean the same still.
    assert_grub_cfg_means_what_the_recipe_says(recipe)
    assert_xl_configs_mean_what_the_recipe_says(recipe)
    pytest.fail(f"{key}: {value!r} is accepted")


def test_the_parsers_see_an_injection_when_there_is_one() -> None:
    """The parsers above are what catch a broken quote: check that they do."""
    header = "set a\nset b\nserial\nterminal_input\nterminal_output\ninsmod\ninsmod\n"
    injected = 'menuentry "a" {\n multiboot2 /x\n}\nmenuentry "b" {\n}\n'
    assert [title for title, _ in menu_entries(header + injected)] == ["a", "b"]
    assert xl_settings('cmdline = "quiet"\nbootloader = "/bin/sh"\n') == {"cmdline": "quiet", "bootloader": "/bin/sh"}
