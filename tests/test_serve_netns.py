"""The real ``pyipld serve`` against a hostile client, inside ``unshare -n`` (issue 10).

The client is tests/_hostile_serve.py (see its docstring for the attacks); this test
runs it in a fresh network namespace with loopback only, and checks what it saw.
On the code before the fix the absurd-CID peer stopped the server (rc 1,
ExceptionGroup), so ``alive_after_absurd_cids`` and everything after it failed,
and the CLI errors were tracebacks.
"""

from __future__ import annotations

import json
import sys

import pytest

from ._peers import netns_missing, run_in_netns

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def seen() -> dict[str, object]:
    reason = netns_missing()
    if reason:
        pytest.skip(reason)
    proc = run_in_netns([sys.executable, "-m", "tests._hostile_serve"], timeout=240)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    assert proc.returncode == 0 and lines, f"rc={proc.returncode}\n{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}"
    result: dict[str, object] = json.loads(lines[-1])
    return result


@pytest.mark.parametrize("case", ["busy", "bad_port", "unassignable"])
def test_serve_listen_errors_are_one_line(seen: dict[str, object], case: str) -> None:
    errors = seen["cli_errors"]
    assert isinstance(errors, dict)
    assert errors[case]["ok"], errors[case]


def test_absurd_cids_close_only_that_connection(seen: dict[str, object]) -> None:
    assert seen["absurd_cids"] == {"connection_closed": True}
    assert seen["alive_after_absurd_cids"] is True


def test_honest_client_fetches_while_200_hostile_connections_are_open(seen: dict[str, object]) -> None:
    hostile = seen["hostile"]
    assert isinstance(hostile, dict)
    connected = sum(v for k, v in hostile.items() if k != "refused_or_dropped")
    assert connected >= 100, hostile  # at least the --max-connections share of them got in
    honest = seen["honest"]
    assert isinstance(honest, dict)
    assert honest["ok"], honest
    assert seen["alive_under_attack"] is True
    assert seen["refused"] > 0  # the cap held: 200 > --max-connections 128


def test_idle_connections_at_the_cap_make_room_for_an_honest_client(seen: dict[str, object]) -> None:
    honest = seen["honest_when_full"]
    assert isinstance(honest, dict)
    assert honest["ok"], honest
    assert seen["replaced"] > 0  # idle ones were replaced rather than newcomers refused


def test_serve_ends_cleanly_after_the_attack(seen: dict[str, object]) -> None:
    assert seen["serve_rc"] == 0, seen["serve_stderr_tail"]
    assert seen["traceback"] is False, seen["serve_stderr_tail"]
