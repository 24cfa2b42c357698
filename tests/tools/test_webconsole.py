"""The dom0 web console against a fake `xl`: what a visitor sees, and what it refuses to do."""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import select
import socket
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

import pytest

from tests.webconsole_fakes import (
    WEBCONSOLE,
    FakeHost,
    RunningConsole,
    load_webconsole,
    make_fake_host,
    serve_webconsole,
)

pytestmark = pytest.mark.tools

web = load_webconsole()

XL_LIST = """\
Name                                        ID   Mem VCPUs\tState\tTime(s)
Domain-0                                     0   512     2     r-----      35.2
debian                                       1   128     1     -b----       5.1
a-guest-with-a-name-longer-than-forty-characters     7   256     2     --p---       0.3
crashy                                       9    64     1     ---sc-       1.0
"""

XL_UPTIME = """\
Name                                ID Uptime
Domain-0                             0  0:06:40
debian                               1  1:02:05
a-guest-with-a-name-longer-than-forty-characters    7 1 day,  1:01:01
crashy                               9 3 days,  0:00:09
"""


@pytest.fixture
def host(tmp_path: Path) -> FakeHost:
    return make_fake_host(tmp_path / "dom0")


@pytest.fixture
def console(host: FakeHost) -> Iterator[RunningConsole]:
    with serve_webconsole(host) as running:
        yield running


def request(
    console: RunningConsole, method: str, path: str, body: bytes | None = None, headers: dict[str, str] | None = None
) -> tuple[int, str]:
    netloc = urlsplit(console.url).netloc
    conn = http.client.HTTPConnection(netloc, timeout=10)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        answer = conn.getresponse()
        return answer.status, answer.read().decode()
    finally:
        conn.close()


def post_action(console: RunningConsole, extra_headers: dict[str, str] | None = None, **form: str) -> tuple[int, Any]:
    headers = {"Content-Type": "application/x-www-form-urlencoded", "Origin": console.url}
    headers.update(extra_headers or {})
    status, text = request(console, "POST", "/api/action", urlencode(form).encode(), headers)
    return status, json.loads(text)


def domains_json(console: RunningConsole) -> dict[str, dict[str, Any]]:
    status, text = request(console, "GET", "/api/domains")
    assert status == 200
    return {d["name"]: d for d in json.loads(text)["domains"]}


# --- parsing xl's answers ------------------------------------------------------------------------


def test_xl_list_gives_name_state_memory_and_vcpus_of_every_domain() -> None:
    domains = {d.name: d for d in web.parse_xl_list(XL_LIST)}

    assert list(domains) == ["Domain-0", "debian", "a-guest-with-a-name-longer-than-forty-characters", "crashy"]
    assert (domains["debian"].domid, domains["debian"].memory, domains["debian"].vcpus) == (1, 128, 1)
    assert domains["Domain-0"].state == "running"
    assert domains["debian"].state == "running"  # blocked = idle, still running
    assert domains["a-guest-with-a-name-longer-than-forty-characters"].state == "paused"
    assert domains["crashy"].state == "crashed"


def test_xl_uptime_gives_seconds_also_past_a_day() -> None:
    assert web.parse_xl_uptime(XL_UPTIME) == {
        "Domain-0": 400,
        "debian": 3725,
        "a-guest-with-a-name-longer-than-forty-characters": 86400 + 3661,
        "crashy": 3 * 86400 + 9,
    }


def test_leases_skip_expired_ones_and_keep_infinite_ones() -> None:
    text = "2000 AA:BB:CC:00:00:01 10.0.0.5 old *\n0 aa:bb:cc:00:00:02 10.0.0.6 forever *\ngarbage line\n"
    assert web.parse_leases(text, now=3000) == [("aa:bb:cc:00:00:02", "10.0.0.6", "forever")]


# --- what a visitor sees -------------------------------------------------------------------------


def test_json_lists_every_domain_and_configured_guest_with_state_memory_vcpus_uptime_and_ip(
    console: RunningConsole,
) -> None:
    domains = domains_json(console)

    assert list(domains) == ["Domain-0", "web1", "web2", "spare"]
    web1, web2, spare, dom0 = domains["web1"], domains["web2"], domains["spare"], domains["Domain-0"]
    assert (web1["state"], web1["memory"], web1["vcpus"], web1["ip"]) == ("running", 128, 1, "10.0.0.11")
    assert abs(web1["uptime"] - 3725) <= 5 and web1["uptime_text"].startswith("1:02:")
    assert web2["ip"] == "10.0.0.12"  # its lease has no host name: matched by the MAC in web2.cfg
    assert web2["uptime"] >= 90061 and web2["uptime_text"].startswith("1d 1:01:")
    assert (spare["state"], spare["ip"], spare["actions"]) == ("stopped", "-", ["start"])  # its lease expired
    assert web1["actions"] == ["shutdown", "reboot", "destroy"]
    assert dom0["actions"] == [] and dom0["ip"] == "-"


def test_page_shows_every_domain_with_its_state_and_buttons(console: RunningConsole) -> None:
    status, page = request(console, "GET", "/")

    assert status == 200
    for name in ("Domain-0", "web1", "web2", "spare"):
        assert f'<tr data-name="{name}"' in page
    assert page.count('class="state state-running"') == 3
    assert 'data-action="shutdown" data-name="web1"' in page
    assert 'data-action="start" data-name="spare"' in page
    assert 'data-name="Domain-0">shutdown' not in page
    assert request(console, "GET", "/static/webconsole.js")[0] == 200


def test_a_guest_left_out_of_the_iso_is_shown_as_such_with_the_reason_and_no_actions(
    host: FakeHost, console: RunningConsole
) -> None:
    host.guests_tsv.write_text(
        "# name\timage\ttype\tautostart\tskip\n"
        "web1\tdebian\tpv\tyes\t-\nweb2\tdebian\tpvh\tyes\t-\nspare\tdebian\tpv\tno\t-\n"
        "bsd\tfreebsd\tpvh\tyes\tits files could not be downloaded <here>\n"
    )
    bsd = domains_json(console)["bsd"]
    assert (bsd["state"], bsd["left_out"], bsd["actions"]) == (
        "not on this ISO",
        "its files could not be downloaded <here>",
        [],
    )
    assert domains_json(console)["spare"]["actions"] == ["start"]  # on the ISO, stopped: it can be started
    status, page = request(console, "GET", "/")
    assert status == 200
    row = page[page.index('<tr data-name="bsd"') :]
    row = row[: row.index("</tr>")]
    assert '<span class="state state-not-on-this-ISO">not on this ISO</span>' in row
    assert "its files could not be downloaded &lt;here&gt;" in row
    assert "<button" not in row and "console-link" not in row
    assert post_action(console, action="start", name="bsd", token=console.token)[0] == 409
    assert host.actions() == []


def test_console_output_is_shown_escaped_and_without_terminal_escapes(host: FakeHost, console: RunningConsole) -> None:
    log = host.console_logs / "guest-web1.log"
    log.write_bytes(b"booting\r\n\x1b[0;32mOK\x1b[0m <script>alert('x')</script> & done\r\n")

    status, page = request(console, "GET", "/console/web1")
    assert status == 200
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt; &amp; done" in page
    assert "<script>alert" not in page and "\x1b" not in page

    status, text = request(console, "GET", "/api/console/web1")
    assert status == 200
    assert json.loads(text)["console"] == "booting\nOK <script>alert('x')</script> & done"


def test_console_output_loses_c1_and_bidirectional_controls(host: FakeHost, console: RunningConsole) -> None:
    log = host.console_logs / "guest-web1.log"
    # C1's CSI and OSC (U+009B, U+009D ... U+009C), NEL (U+0085), a right-to-left override and an isolate.
    log.write_bytes("a\x9b2Jb \u202eevil\u2066 c\x85d \x9d0;title\x9ce \u200fok\n".encode())

    status, text = request(console, "GET", "/api/console/web1")
    assert status == 200
    assert json.loads(text)["console"] == "ab evil cd e ok"
    status, page = request(console, "GET", "/console/web1")
    assert status == 200
    assert not any(0x80 <= ord(c) <= 0x9F or c in "\u202e\u2066\u200f" for c in page)


def test_the_toolstack_not_answering_is_shown_not_a_crash(host: FakeHost) -> None:
    host.xl.unlink()
    with serve_webconsole(host) as console:
        status, text = request(console, "GET", "/api/domains")
        assert status == 200
        data = json.loads(text)
        assert "fake-xl" in data["error"]
        assert all(d["actions"] == [] for d in data["domains"])  # nothing to act on while the state is unknown
        assert {d["name"]: d["state"] for d in data["domains"]} == {
            "web1": "unknown",
            "web2": "unknown",
            "spare": "unknown",
        }
        assert request(console, "GET", "/")[0] == 200


def test_many_clients_at_once_cost_one_xl_list(host: FakeHost) -> None:
    with serve_webconsole(host, cache_seconds=30) as console, ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda _: request(console, "GET", "/api/domains")[0], range(16)))
    assert answers == [200] * 16
    assert [argv for argv in host.commands() if argv == ["list"]] == [["list"]]


# --- actions and the token -----------------------------------------------------------------------


def test_an_action_without_the_right_token_is_refused_and_nothing_runs(host: FakeHost, console: RunningConsole) -> None:
    assert post_action(console, action="shutdown", name="web1") == (
        403,
        {"ok": False, "error": "refused: missing or wrong token"},
    )
    assert post_action(console, action="shutdown", name="web1", token="")[0] == 403
    wrong = console.token[:-1] + ("y" if console.token.endswith("x") else "x")
    assert post_action(console, action="shutdown", name="web1", token=wrong)[0] == 403
    assert host.actions() == []
    assert domains_json(console)["web1"]["state"] == "running"


def test_with_the_token_shutdown_runs_xl_and_is_logged_on_the_console(host: FakeHost, console: RunningConsole) -> None:
    status, answer = post_action(console, action="shutdown", name="web1", token=console.token)

    assert (status, answer["ok"]) == (200, True)
    assert host.actions() == [["shutdown", "web1"]]
    web1 = domains_json(console)["web1"]  # the cache was dropped after the action
    assert (web1["state"], web1["ip"], web1["memory"]) == ("stopped", "-", None)  # its lease no longer counts
    assert host.console.read_text() == "xenlive-web: shutdown web1 by 127.0.0.1: ok\n"


def test_start_runs_xenlive_boot_and_reboot_destroy_run_xl(host: FakeHost, console: RunningConsole) -> None:
    for action, name in (("start", "spare"), ("reboot", "web2"), ("destroy", "web2")):
        assert post_action(console, action=action, name=name, token=console.token)[0] == 200

    assert host.actions() == [["xenlive-boot", "start", "spare"], ["reboot", "web2"], ["destroy", "web2"]]
    assert domains_json(console)["spare"]["state"] == "running"


def test_an_action_that_does_not_fit_the_state_is_refused(host: FakeHost, console: RunningConsole) -> None:
    assert post_action(console, action="start", name="web1", token=console.token)[0] == 409
    assert post_action(console, action="shutdown", name="spare", token=console.token)[0] == 409
    assert post_action(console, action="format", name="web1", token=console.token)[0] == 400
    assert host.actions() == []


def test_dom0_cannot_be_acted_on(host: FakeHost, console: RunningConsole) -> None:
    assert post_action(console, action="destroy", name="Domain-0", token=console.token)[0] == 403
    assert host.actions() == []


def test_unknown_and_malicious_names_never_reach_a_command(host: FakeHost, console: RunningConsole) -> None:
    assert post_action(console, action="shutdown", name="ghost", token=console.token)[0] == 404
    for name in ("web1; reboot web2", "$(touch pwned)", "`id`", "../../etc/passwd", "web1\nweb2", "-f", "", "x" * 65):
        assert post_action(console, action="shutdown", name=name, token=console.token)[0] == 400, name
    assert request(console, "GET", "/console/..%2F..%2Fetc%2Fpasswd")[0] == 400
    assert request(console, "GET", "/api/console/ghost")[0] == 404
    assert host.actions() == []
    assert not (Path.cwd() / "pwned").exists()


# --- requests from elsewhere ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "headers",
    [
        {"Origin": "http://evil.example"},
        {"Origin": "null"},
        {"Origin": "http://127.0.0.1:1"},  # same host, other port: another origin
        {"Origin": "", "Referer": "http://evil.example/page"},
        {"Sec-Fetch-Site": "cross-site"},
    ],
)
def test_cross_origin_posts_are_refused_even_with_the_token(
    host: FakeHost, console: RunningConsole, headers: dict[str, str]
) -> None:
    if headers.get("Origin") == "":
        headers = {"Referer": headers["Referer"]}
        status, _ = request(
            console,
            "POST",
            "/api/action",
            urlencode({"action": "shutdown", "name": "web1", "token": console.token}).encode(),
            {"Content-Type": "application/x-www-form-urlencoded", **headers},
        )
    else:
        status, _ = post_action(console, headers, action="shutdown", name="web1", token=console.token)
    assert status == 403
    assert host.actions() == []


def test_an_origin_with_another_scheme_is_another_site(host: FakeHost, console: RunningConsole) -> None:
    https = console.url.replace("http://", "https://")
    for headers in ({"Origin": https}, {"Referer": https + "/"}):
        body = urlencode({"action": "shutdown", "name": "web1", "token": console.token}).encode()
        status, text = request(
            console, "POST", "/api/action", body, {"Content-Type": "application/x-www-form-urlencoded", **headers}
        )
        assert (status, json.loads(text)["ok"]) == (403, False), headers
    assert host.actions() == []


# --- DNS rebinding: only requests for dom0's own names and addresses are answered --------------------


def requests_for(console: RunningConsole, host_header: str) -> list[tuple[int, str]]:
    """Every kind of request, with this Host header: the page, the JSON, a console, an action."""
    answers = [request(console, "GET", path, headers={"Host": host_header}) for path in READ_PATHS]
    body = urlencode({"action": "shutdown", "name": "web1", "token": console.token}).encode()
    origin = f"http://{host_header}"
    headers = {"Host": host_header, "Origin": origin, "Content-Type": "application/x-www-form-urlencoded"}
    answers.append(request(console, "POST", "/api/action", body, headers))
    return answers


READ_PATHS = ("/", "/api/domains", "/api/console/web1", "/console/web1", "/static/webconsole.js")


@pytest.mark.parametrize(
    "host_header",
    [
        "evil.example:8080",
        "evil.example",
        "localhost.evil.example",
        "127.0.0.1.nip.io:8080",
        "xen.lan",
        "10.1.2.3:8080",
        "[::2]:8080",
        "",
        "127.0.0.1:8080:8080",
        "[::1",
    ],
)
def test_a_request_for_another_host_gets_no_data_and_acts_on_nothing(
    host: FakeHost, console: RunningConsole, host_header: str
) -> None:
    for status, text in requests_for(console, host_header):
        assert status == 421, (host_header, text)
        assert "web1" not in text and "Domain-0" not in text and "function" not in text
    assert host.actions() == []


def test_a_request_without_a_host_header_or_with_two_gets_no_data(console: RunningConsole) -> None:
    for hosts in (b"", b"Host: evil.example\r\nHost: 127.0.0.1\r\n", b"Host: 127.0.0.1\r\nHost: evil.example\r\n"):
        answer = raw_exchange(console, b"GET /api/domains HTTP/1.1\r\n" + hosts + b"Connection: close\r\n\r\n")
        assert answer.startswith(b"HTTP/1.1 421 ") and b"web1" not in answer


@pytest.mark.parametrize(
    "host_header",
    [
        "127.0.0.1:8080",  # how `build.py boot` forwards the console from the build host
        "127.0.0.1",
        "localhost:8080",
        "LocalHost",
        "[::1]:8080",
        "[0:0:0:0:0:0:0:1]",
        socket.gethostname() + ":8080",
        socket.gethostname().upper() + ".xen.lan:80",
        socket.gethostname() + ".xen.lan.",
    ],
)
def test_requests_for_dom0s_own_names_and_addresses_are_answered(
    host: FakeHost, console: RunningConsole, host_header: str
) -> None:
    answers = requests_for(console, host_header)
    assert [status for status, _text in answers] == [200] * len(answers)
    assert host.actions() == [["shutdown", "web1"]]


def test_the_address_a_request_came_in_on_is_dom0s_own(host: FakeHost) -> None:
    with serve_webconsole(host, listen="0.0.0.0") as console:
        port = urlsplit(console.url).port
        assert request(console, "GET", "/api/domains", headers={"Host": f"127.0.0.2:{port}"})[0] == 421
        other = RunningConsole(f"http://127.0.0.2:{port}", console.token, console.server)
        assert request(other, "GET", "/api/domains")[0] == 200  # Host: 127.0.0.2:PORT, and it came in there


def test_a_get_never_acts(host: FakeHost, console: RunningConsole) -> None:
    query = urlencode({"action": "shutdown", "name": "web1", "token": console.token})
    assert request(console, "GET", f"/?{query}")[0] == 200
    assert request(console, "GET", f"/api/action?{query}")[0] == 405
    assert request(console, "GET", f"/api/domains?{query}")[0] == 200
    assert host.actions() == []


# --- odd requests --------------------------------------------------------------------------------


def raw_exchange(console: RunningConsole, data: bytes, timeout: float = 5) -> bytes:
    netloc = urlsplit(console.url).netloc
    host, port = netloc.split(":")
    with socket.create_connection((host, int(port)), timeout=timeout) as sock:
        sock.sendall(data)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    return answer


def test_a_huge_body_is_refused_without_being_read(host: FakeHost, console: RunningConsole) -> None:
    started = time.monotonic()
    answer = raw_exchange(
        console,
        b"POST /api/action HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/x-www-form-urlencoded\r\n"
        b"Content-Length: 1000000000\r\n\r\naction=shutdown&",
    )
    assert answer.startswith(b"HTTP/1.1 413 ")
    assert time.monotonic() - started < 3
    assert host.actions() == []


@pytest.mark.parametrize(
    ("body", "content_type", "expected"),
    [
        (b"action=shutdown&&name", "application/x-www-form-urlencoded", 400),
        (b"action=shutdown&name=web1&name=web2&token=T", "application/x-www-form-urlencoded", 400),
        (b"action=shutdown&name=%ff%fe&token=T", "application/x-www-form-urlencoded", 400),
        (b"\xff\xfe\x00", "application/x-www-form-urlencoded", 400),
        (b'{"action": "shutdown", "name": "web1"}', "application/json", 415),
        (b"", "application/x-www-form-urlencoded", 403),  # well-formed, but without a token
    ],
)
def test_malformed_forms_are_refused(
    host: FakeHost, console: RunningConsole, body: bytes, content_type: str, expected: int
) -> None:
    body = body.replace(b"token=T", f"token={console.token}".encode())
    headers = {"Content-Type": content_type, "Origin": console.url}
    assert request(console, "POST", "/api/action", body, headers)[0] == expected
    assert host.actions() == []


def test_a_short_body_or_missing_length_is_refused(console: RunningConsole) -> None:
    head = b"POST /api/action HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/x-www-form-urlencoded\r\n"
    assert raw_exchange(console, head + b"\r\n").startswith(b"HTTP/1.1 411 ")
    assert raw_exchange(console, head + b"Content-Length: abc\r\n\r\n").startswith(b"HTTP/1.1 400 ")
    assert raw_exchange(console, head + b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n").startswith(b"HTTP/1.1 411 ")


def test_a_body_sent_with_a_get_is_not_read_as_the_next_request(host: FakeHost, console: RunningConsole) -> None:
    form = f"action=shutdown&name=web1&token={console.token}".encode()
    smuggled = (
        b"POST /api/action HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/x-www-form-urlencoded\r\n"
        b"Content-Length: " + str(len(form)).encode() + b"\r\nConnection: close\r\n\r\n" + form
    )
    for method in (b"GET", b"HEAD"):
        answer = raw_exchange(
            console,
            method + b" /api/domains HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            b"Content-Length: " + str(len(smuggled)).encode() + b"\r\n\r\n" + smuggled,
        )
        assert answer.startswith(b"HTTP/1.1 400 ")
        assert answer.count(b"HTTP/1.1 ") == 1
    assert host.actions() == []
    assert request(console, "GET", "/api/domains", headers={"Content-Length": "0"})[0] == 200


def test_two_content_lengths_are_refused(host: FakeHost, console: RunningConsole) -> None:
    form = f"action=shutdown&name=web1&token={console.token}".encode()
    head = b"POST /api/action HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/x-www-form-urlencoded\r\n"
    for lengths in ((len(form), 0), (len(form), len(form))):
        fields = b"".join(b"Content-Length: %d\r\n" % n for n in lengths)
        answer = raw_exchange(console, head + fields + b"Connection: close\r\n\r\n" + form)
        assert answer.startswith(b"HTTP/1.1 400 "), answer
    assert host.actions() == []


def test_bad_methods_paths_and_request_lines_get_answers_and_the_server_lives_on(console: RunningConsole) -> None:
    assert request(console, "PUT", "/api/action", b"x")[0] == 405
    assert request(console, "DELETE", "/")[0] == 405
    assert request(console, "POST", "/", b"", {"Content-Type": "application/x-www-form-urlencoded"})[0] == 404
    for path in (
        "/static/../webconsole.py",
        "/static/%2e%2e/webconsole.py",
        "/static/index.html",
        "/../../etc/passwd",
        "/nope",
    ):
        assert request(console, "GET", path)[0] == 404, path
    assert raw_exchange(console, b"GARBAGE\r\n\r\n").startswith(b"HTTP/1.1 400 ")
    assert raw_exchange(console, b"GET / HTTP/9.9\r\n\r\n").startswith(b"HTTP/1.1 505 ")
    assert raw_exchange(console, b"GET /" + b"x" * 70000 + b" HTTP/1.1\r\n\r\n").startswith(b"HTTP/1.1 414 ")
    assert request(console, "GET", "/api/domains")[0] == 200


def test_a_silent_client_is_dropped_and_does_not_block_others(
    console: RunningConsole, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(web.Handler, "timeout", 0.5)
    netloc = urlsplit(console.url).netloc
    host, port = netloc.split(":")
    with socket.create_connection((host, int(port)), timeout=5) as slow:
        slow.sendall(b"POST /api/action HTTP/1.1\r\nHost: 127.0.0.1\r\n")  # and then nothing
        assert request(console, "GET", "/api/domains")[0] == 200
        started = time.monotonic()
        assert slow.recv(100) == b""  # closed by the server, with no answer to a request never finished
        assert time.monotonic() - started < 3


def test_a_content_length_of_unicode_digits_is_a_clean_400(
    console: RunningConsole, capfd: pytest.CaptureFixture[str]
) -> None:
    head = b"POST /api/action HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/x-www-form-urlencoded\r\n"
    for digits in (b"\xb2", b"1\xb9", b"\xb3\xb3"):  # superscripts: str.isdigit() is true, int() refuses them
        assert raw_exchange(console, head + b"Content-Length: " + digits + b"\r\n\r\n").startswith(b"HTTP/1.1 400 ")
    assert "Traceback" not in capfd.readouterr().err


def test_a_client_that_trickles_its_request_is_dropped_when_its_time_is_up(
    console: RunningConsole, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(web.Handler, "request_seconds", 1.0, raising=False)
    netloc = urlsplit(console.url).netloc
    host, port = netloc.split(":")
    started = time.monotonic()
    with socket.create_connection((host, int(port)), timeout=5) as slow:
        slow.sendall(b"GET /api/domains HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        closed_after = None
        while closed_after is None and time.monotonic() - started < 6:
            try:
                slow.sendall(b"X-Slow: 1\r\n")  # one header line every 0.2 s: never silent for long
            except OSError:
                closed_after = time.monotonic() - started
                break
            if select.select([slow], [], [], 0.2)[0]:
                with contextlib.suppress(ConnectionResetError):
                    assert slow.recv(100) == b""  # closed, with no answer to a request never finished
                closed_after = time.monotonic() - started
    assert closed_after is not None and closed_after < 3
    assert request(console, "GET", "/api/domains")[0] == 200


def test_handler_threads_are_bounded_and_more_clients_wait_their_turn(
    host: FakeHost, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(web.WebConsole, "max_clients", 2, raising=False)
    with serve_webconsole(host) as console:
        netloc = urlsplit(console.url).netloc
        address = (netloc.split(":")[0], int(netloc.split(":")[1]))
        silent = [socket.create_connection(address, timeout=5) for _ in range(2)]
        for sock in silent:
            sock.sendall(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n")  # and then nothing: each holds a thread
        time.sleep(0.3)
        with ThreadPoolExecutor(1) as pool:
            third = pool.submit(request, console, "GET", "/api/domains")
            time.sleep(0.5)
            assert not third.done()  # queued, not given a third thread
            silent[0].close()
            assert third.result(timeout=5)[0] == 200
        silent[1].close()


def test_a_kept_alive_connection_gives_up_its_thread_when_another_client_waits(
    host: FakeHost, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(web.WebConsole, "max_clients", 1, raising=False)
    with serve_webconsole(host) as console:
        netloc = urlsplit(console.url).netloc
        busy = http.client.HTTPConnection(netloc, timeout=5)  # a page polling over one kept-alive connection
        busy.request("GET", "/api/domains")
        first = busy.getresponse()
        first.read()
        assert first.getheader("Connection") != "close"
        with ThreadPoolExecutor(1) as pool:
            other = pool.submit(request, console, "GET", "/api/domains")
            time.sleep(0.3)
            busy.request("GET", "/api/domains")
            second = busy.getresponse()
            second.read()
            assert second.getheader("Connection") == "close"  # the waiting client is next
            assert other.result(timeout=5)[0] == 200
        busy.close()


def test_a_burst_of_connections_is_queued_while_the_console_is_busy(host: FakeHost) -> None:
    paths = web.Paths(**host.options(), static=WEBCONSOLE.parent / "web")
    server = web.WebConsole(("127.0.0.1", 0), web.Host(paths), "t" * 32)  # listening, not yet accepting
    burst: list[socket.socket] = []
    try:
        for _ in range(40):
            sock = socket.socket()
            sock.settimeout(0.5)
            sock.connect(server.server_address)  # a backlog of 5 holds 6; the 7th waits for a SYN retry (1 s)
            burst.append(sock)
    finally:
        for sock in burst:
            sock.close()
        server.server_close()


# --- the token and the service -------------------------------------------------------------------


def test_the_token_file_is_private_and_kept_for_the_boot(tmp_path: Path) -> None:
    path = tmp_path / "run/xenlive/web-token"
    token = web.load_or_make_token(path)

    assert len(token) >= 32
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.read_text() == token + "\n"
    assert web.load_or_make_token(path) == token  # a restarted service keeps the announced token
    path.chmod(0o644)
    assert web.load_or_make_token(path) != token  # one that others could read is replaced


def test_the_service_announces_its_port_and_token_on_the_console(host: FakeHost, tmp_path: Path) -> None:
    options = host.options()
    argv = [sys.executable, str(WEBCONSOLE), "--listen", "127.0.0.1", "--port", "0"]
    for key in ("xl", "xenlive_boot", "guests_tsv", "xl_configs", "leases", "token_file", "console", "settings"):
        argv += [f"--{key.replace('_', '-')}", str(options[key])]
    argv += ["--console-logs", str(host.console_logs)]
    service = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        assert service.stdout is not None
        line = service.stdout.readline().strip()
        token = host.token_file.read_text().strip()
        assert line.startswith("xenlive-status: web up port=") and line.endswith(f" token={token}")
        assert host.console.read_text() == line + "\n"
        port = int(line.split("port=")[1].split()[0])
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        conn.request("GET", "/api/domains")
        assert conn.getresponse().status == 200
        conn.close()
    finally:
        service.terminate()
        service.wait(10)


def test_a_script_without_origin_headers_can_act_with_the_token(host: FakeHost, console: RunningConsole) -> None:
    body = urlencode({"action": "reboot", "name": "web1", "token": console.token}).encode()
    status, _ = request(console, "POST", "/api/action", body, {"Content-Type": "application/x-www-form-urlencoded"})
    assert status == 200
    assert host.actions() == [["reboot", "web1"]]
