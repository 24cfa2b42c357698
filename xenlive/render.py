"""Templates: grub.cfg, xl guest configs and `.j2` overlay files, rendered by jinja2 with StrictUndefined."""

from __future__ import annotations

import os
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import jinja2

from xenlive.errors import BuildError


def _environment(search: Path) -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(search)),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        autoescape=False,
    )


def render_template(path: Path, context: Mapping[str, Any]) -> str:
    """Render one template file; an undefined name or a syntax error names the file and line."""
    try:
        return _environment(path.parent).get_template(path.name).render(**context)
    except jinja2.TemplateSyntaxError as exc:
        raise BuildError(f"{path}:{exc.lineno}: template syntax error: {exc.message}") from None
    except jinja2.UndefinedError as exc:
        raise BuildError(f"{path}: template uses an undefined value: {exc.message}") from None


def render_tree(src: Path, dst: Path, context: Mapping[str, Any]) -> list[str]:
    """Copy the tree src over dst; files ending in .j2 are rendered and lose the suffix.

    Symlinks are kept; modes are normalised (0755 for directories and executables, 0644 for the
    rest) so that a checkout's umask never leaks into the image. Returns the relative paths written.
    """
    written = []
    for dirpath, dirnames, filenames in os.walk(src):
        dirnames.sort()
        base = Path(dirpath)
        rel_dir = base.relative_to(src)
        (dst / rel_dir).mkdir(parents=True, exist_ok=True)
        (dst / rel_dir).chmod(0o755)
        for name in sorted(filenames) + [d for d in dirnames if (base / d).is_symlink()]:
            source = base / name
            target_name = name[:-3] if name.endswith(".j2") and not source.is_symlink() else name
            target = dst / rel_dir / target_name
            if target.is_symlink() or target.is_file():
                target.unlink()
            if source.is_symlink():
                target.symlink_to(os.readlink(source))
            else:
                if name.endswith(".j2"):
                    target.write_text(render_template(source, context))
                else:
                    shutil.copyfile(source, target)
                target.chmod(0o755 if source.stat().st_mode & 0o111 else 0o644)
            written.append((rel_dir / target_name).as_posix())
    return written
