"""Templates cannot fill the build host's memory or run without end (issue 23): every template's output and
render time are bounded while it renders, and no value or method it reaches makes text or lists without bound.
Each refusal is one located error naming the template."""

from __future__ import annotations

import contextlib
import os
import resource
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from xenlive.errors import InputFileError
from xenlive.render import render_template

SET_S = "{% set s = 'x' * 2**20 %}"  # the largest text `*` makes


@contextlib.contextmanager
def memory_cap(extra: int = 768 << 20) -> Iterator[None]:
    """At most `extra` more bytes of address space while a template renders: a bomb the sandbox lets through
    ends in a MemoryError here, not in the build host's swap."""
    pages = int(Path("/proc/self/statm").read_text().split()[0])
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    cap = pages * os.sysconf("SC_PAGE_SIZE") + extra
    resource.setrlimit(resource.RLIMIT_AS, (cap if hard == resource.RLIM_INFINITY else min(cap, hard), hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))


def refusal(tmp_path: Path, text: str, context: dict[str, object] | None = None, **limits: float) -> str:
    template = tmp_path / "bomb.j2"
    template.write_text(text)
    start = time.monotonic()
    with memory_cap(), pytest.raises(InputFileError) as caught:
        render_template(template, context or {}, **limits)  # type: ignore[arg-type]
    assert time.monotonic() - start < 5
    message = str(caught.value)
    assert message.startswith(f"{template}"), message
    assert "\n" not in message and "MemoryError" not in message, message
    return message


BOMBS = {
    "format width": "{{ '{:>1000000000}'.format('x') }}",
    "format width from an argument": "{{ '{:>{}}'.format('x', 10**9) }}",
    "format precision": "{{ '{:.1000000000f}'.format(1.5) }}",
    "format_map": "{{ '{x:>1000000000}'.format_map({'x': 1}) }}",
    "center": "{{ 'x'.center(10**9) }}",
    "ljust": "{{ 'x'.ljust(10**9) }}",
    "rjust": "{{ 'x'.rjust(10**9) }}",
    "zfill": "{{ '1'.zfill(10**9) }}",
    "expandtabs": "{{ '\\t'.expandtabs(10**9) }}",
    "replace": SET_S + "{{ s.replace('x', 'y' * 1000) }}",
    "replace an empty text": SET_S + "{{ s.replace('', s) }}",
    "join": SET_S + "{{ s.join(['a'] * 2000) }}",
    "printf width": "{{ '%1000000000s' % 'x' }}",
    "printf width from an argument": "{{ '%*s' % (10**9, 'x') }}",
    "the format filter": "{{ '%1000000000s' | format('x') }}",
    "the center filter": "{{ 'x' | center(10**9) }}",
    "the indent filter": SET_S + "{{ ('\\n' * 2**20) | indent(s) }}",
    "the join filter": SET_S + "{{ range(100000) | join(s) }}",
    "the slice filter": "{{ range(10) | slice(10**9) | list | length }}",
    "the batch filter": SET_S + "{{ [1] | batch(10**6, s) | list | length }}",
    "the sum filter": "{{ ([[1] * 2**20] * 64) | sum(start=[]) | length }}",
    "a filter applied again and again": "{{ ('\\\\' * 2**20) | tojson | tojson | tojson | tojson | tojson | tojson "
    "| tojson | tojson | tojson | tojson | length }}",
    "lipsum": "{{ lipsum(10**7) | length }}",
    "doubling a text in a loop": "{% set ns = namespace(s='x') %}{% for i in range(40) %}"
    "{% set ns.s = ns.s ~ ns.s %}{% endfor %}{{ ns.s | length }}",
    "doubling a text with +": "{% set ns = namespace(s='x') %}{% for i in range(40) %}"
    "{% set ns.s = ns.s + ns.s %}{% endfor %}{{ ns.s | length }}",
    "doubling a list": "{% set ns = namespace(l=[1]) %}{% for i in range(40) %}"
    "{% set ns.l = ns.l + ns.l %}{% endfor %}{{ ns.l | length }}",
    "a list of references": SET_S + "{% set a = [s, s, s, s] %}{% set b = [a, a, a, a] %}{% set c = [b, b, b, b] %}"
    "{% set d = [c, c, c, c] %}{% set e = [d, d, d, d] %}{{ e | string | length }}",
    "a repeated list of texts": SET_S + "{{ ([s] * 2**20) | string | length }}",
    "a long concatenation": SET_S + "{{ s ~ s ~ s ~ s ~ s ~ s ~ s ~ s ~ s ~ s ~ s ~ s ~ s ~ s ~ s ~ s ~ s ~ s ~ s }}",
    "a captured block": SET_S + "{% set big %}{% for i in range(100000) %}{{ s }}{% endfor %}{% endset %}"
    "{{ big | length }}",
    "a macro": SET_S + "{% macro m() %}{% for i in range(100000) %}{{ s }}{% endfor %}{% endmacro %}{{ m() | length }}",
}


@pytest.mark.parametrize("text", BOMBS.values(), ids=BOMBS.keys())
def test_no_expression_makes_a_value_that_fills_the_build_hosts_memory(tmp_path: Path, text: str) -> None:
    message = refusal(tmp_path, text)
    assert "(SecurityError)" in message, message


def test_the_recipes_network_is_a_small_view_without_methods_that_allocate(tmp_path: Path) -> None:
    from xenlive.recipe import Recipe

    recipe = Recipe.model_validate({"iso": {"name": "t"}})
    template = tmp_path / "ok.j2"
    template.write_text(
        "{{ recipe.network.network }} {{ recipe.network.network.prefixlen }} "
        "{{ recipe.network.network.broadcast_address - 1 }} {{ recipe.network.dom0_address() }} "
        "{{ recipe.network.network.num_addresses }} {{ recipe.network.network.netmask }}\n"
    )
    assert render_template(template, {"recipe": recipe}) == "10.0.3.0/24 24 10.0.3.254 10.0.3.1 256 255.255.255.0\n"
    for expression in (
        "recipe.network.network.supernet(new_prefix=0).hosts() | list",
        "recipe.network.network.hosts() | list",
        "recipe.network.network.subnets(new_prefix=32) | list",
        "recipe.network.network | list",
    ):
        message = refusal(tmp_path, f"{{{{ {expression} }}}}", {"recipe": recipe})
        assert "undefined" in message or "not iterable" in message or "(SecurityError)" in message, expression


def test_a_template_that_runs_too_long_is_stopped_while_it_runs(tmp_path: Path) -> None:
    from xenlive.render import MAX_TEMPLATE_SECONDS

    assert MAX_TEMPLATE_SECONDS == 10
    forever = "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}done"
    message = refusal(tmp_path, "line one\n" + forever, seconds=0.5)
    assert message.startswith(f"{tmp_path / 'bomb.j2'}:2: template failed: it ran longer than 0.5 s")
    with_calls = (
        "{% for i in range(100000) %}{% for j in range(100000) %}{{ 'x'.upper() if 0 }}{% endfor %}{% endfor %}"
    )
    assert "ran longer than 0.5 s" in refusal(tmp_path, with_calls, seconds=0.5)


def test_a_templates_output_is_bounded_while_it_renders(tmp_path: Path) -> None:
    from xenlive.render import MAX_TEMPLATE_OUTPUT

    assert MAX_TEMPLATE_OUTPUT == 16 << 20
    message = refusal(tmp_path, SET_S + "{% for i in range(100000) %}{{ s }}{% endfor %}")
    assert message.startswith(f"{tmp_path / 'bomb.j2'}: template output is larger than 16 MiB"), message
    ok = tmp_path / "ok.j2"
    ok.write_text(SET_S + "{% for i in range(15) %}{{ s }}{% endfor %}")
    assert len(render_template(ok, {})) == 15 << 20


def test_the_limits_leave_the_shipped_templates_and_ordinary_jinja2_alone(tmp_path: Path) -> None:
    template = tmp_path / "ok.j2"
    template.write_text(
        "{{ '{:>8}|{:<4}|{:.2f}'.format('a', 'b', 1.5) }} {{ '%5s' % 'x' }} {{ 'x'.center(5) }} "
        "{{ [1, 2] + [3] }} {{ 'a' ~ 'b' }} {{ range(3) | join(',') }} {{ 'a\nb' | indent(2) }} "
        "{{ [[1], [2]] | sum(start=[]) }} {{ range(5) | slice(2) | list }} {% set ns = namespace(n=0) %}"
        "{% for i in range(1000) %}{% set ns.n = ns.n + i %}{% endfor %}{{ ns.n }}"
    )
    assert render_template(template, {}) == "       a|b   |1.50     x   x   [1, 2, 3] ab 0,1,2 a\n  b [1, 2] " + (
        "[[0, 1, 2], [3, 4]] 499500"
    )
