"""Guest image builders: the one registry of them. Each is a module here that declares a Builder
(xenlive.builders.base): adding one is its module and its line below."""

from __future__ import annotations

from xenlive.builders import dib, freebsd, mmdebstrap, netbsd, url
from xenlive.builders.base import Builder

BUILDERS: dict[str, Builder] = {
    builder.name: builder
    for builder in (
        mmdebstrap.BUILDER,
        dib.BUILDER,
        netbsd.BUILDER,
        freebsd.BUILDER,
        url.BUILDER,
    )
}
