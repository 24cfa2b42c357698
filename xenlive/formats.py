"""The forms free text in a recipe may take.

Text from a recipe lands in files and command lines: grub.cfg, xl configs, apt sources and mmdebstrap's
arguments, authorized_keys, packages.tsv, the manifest. Each kind of text has a precise form here, so that
whatever a recipe holds, what it lands in means what the recipe says: no quote, line break or separator
can end the value early and add a menu entry, an xl key, a kernel option or an apt source. Each form is
a pattern (for pydantic, in its Rust regex dialect), a length bound, and the words the reference and the
error messages use for it.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field

# A Debian package name, by Debian policy (5.6.1): lower-case letters, digits, + - and ., at least two
# characters, starting with a letter or digit. So a package cannot be an option (`--allow-unauthenticated`)
# or add one to mmdebstrap's comma-separated --include.
PACKAGE_FORM = "a Debian package name: at least two of a-z, 0-9, '+', '-' and '.', starting with a letter or digit"
Package = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9+.-]+$", max_length=128)]

# A kernel or Xen command line, as GRUB and xl pass it on: words of plain characters separated by spaces.
# No quote, backslash, `$` (GRUB expands variables in its lines), `;` (GRUB's command separator), `#`, glob
# characters or control characters (a line break would start a new GRUB command or xl key).
CMDLINE_CHARACTERS = "A-Za-z0-9 _.,:=/+@%~^-"
CMDLINE_FORM = (
    "words of letters, digits and `_ . , : = / + @ % ~ ^ -`, separated by spaces: no quotes, `\\`, `$`, `;`, `#` or "
    "control characters"
)
Cmdline = Annotated[str, Field(pattern=rf"^[{CMDLINE_CHARACTERS}]*$", max_length=512)]

# A title in a GRUB menu entry, inside double quotes: any text but control characters and the three
# characters GRUB reads specially there (" ends it, \ escapes, $ expands a variable).
TITLE_FORM = 'one line without control characters, `"`, `\\` or `$`'
Title = Annotated[str, Field(pattern=r'^[^\p{Cc}"\\$]+$', max_length=80)]

# One line of text for people (descriptions): no control characters.
LINE_FORM = "one line of text without control characters"
Line = Annotated[str, Field(pattern=r"^[^\p{Cc}]*$", max_length=200)]

# A path or name of a file a recipe names: no control characters (it is shown in messages and the manifest).
PATH_FORM = "a name or path without control characters"
PathText = Annotated[str, Field(pattern=r"^[^\p{Cc}]+$", max_length=1024)]

# Archive suites and components, as one-line apt sources hold them: they cannot start an option or a
# `[key=value]` list, or hold a space or line break that would add words or sources.
ARCHIVE_WORD_FORM = "letters, digits, '.', '_', '+', '/' and '-', starting with a letter or digit"
ArchiveWord = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._+/-]*$", max_length=64)]

# An archive URL: the characters a URL needs, none that would end it in a sources line.
URL_FORM = "an http://, https:// or file:// URL of letters, digits and `. _ ~ : / @ % + = , [ ] -`"
MirrorUrl = Annotated[str, Field(pattern=r"^(https?|file)://[A-Za-z0-9._~:/@%+=,\[\]-]+$", max_length=512)]

# One OpenSSH public key, as a line of authorized_keys without options: TYPE BASE64 [COMMENT].
AUTHORIZED_KEY_FORM = (
    "one OpenSSH public key, `TYPE BASE64 [COMMENT]` on one line without options, e.g. `ssh-ed25519 AAAA... me@host`"
)
AuthorizedKey = Annotated[
    str,
    Field(
        pattern=r"^(ssh-[a-z0-9-]+|ecdsa-sha2-nistp(256|384|521)|sk-[a-z0-9@.-]+) [A-Za-z0-9+/]+={0,3}( [^\p{Cc}]*)?$",
        max_length=16384,
    ),
]

# A crypt(3) hash: $ID$ and the characters of its salts, parameters and hashes.
PASSWORD_HASH_FORM = "a crypt(3) hash such as $y$..."
PasswordHash = Annotated[str, Field(pattern=r"^\$[0-9a-z]+\$[A-Za-z0-9./$=,+-]+$", max_length=512)]

# A release of a BSD (it goes into packages.tsv and the manifest).
RELEASE_FORM = "letters, digits, '.', '_' and '-', starting with a letter or digit, e.g. 14.2-RELEASE"
Release = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$", max_length=32)]


# The most memory any one machine, dom0, guest or guest image of a recipe may state: 1 TiB.
MAX_MEMORY_MIB = 2**20


def form(text: str, **extra: Any) -> dict[str, Any]:
    """The json_schema_extra of a field with this form (what the reference and messages say it must be)."""
    return {"form": text, **extra}
