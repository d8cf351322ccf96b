"""Start-up of the command line (issue 14): a verb imports its own module only, and no verb that
stays local loads trio, httpx or the libp2p stack (they cost more than hashing a few hundred MB)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from pyipld.cli import COMMAND_MODULES, _verb_of, build_parser

_HEAVY = ("trio", "httpx", "pyipld.libp2p.driver", "pyipld.http.client", "pyipld.http.server")


@pytest.mark.parametrize("argv", [["car", "verify", "--help"], ["add", "--help"], ["commp", "--help"],
                                  ["cat", "--help"], ["get", "--help"], ["gateway", "--help"], ["--help"]])
def test_no_network_stack_at_start(argv: list[str]) -> None:
    code = ("import contextlib, io, sys\nfrom pyipld.cli import main\n"
            f"with contextlib.redirect_stdout(io.StringIO()):\n    main({argv!r})\n"
            f"print(sorted(m for m in {_HEAVY!r} if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert out.stdout.strip().splitlines()[-1] == "[]"


def test_verb_of() -> None:
    assert _verb_of(["car", "verify", "x"]) == "car"
    assert _verb_of(["--version"]) is None
    assert _verb_of(["serve", "--listen", "x"]) == "serve"
    assert _verb_of(["nope"]) is None
    assert _verb_of(["--", "add"]) is None


def test_one_verb_parser_parses_like_the_whole() -> None:
    from pyipld._cli.argv import parse
    from pyipld.cli import argv_style

    argv = ["car", "create", "--file", "o.car", "--version", "1", "a", "b"]
    one = parse(build_parser("car"), argv, argv_style).namespace
    whole = parse(build_parser(), argv, argv_style).namespace
    assert {k: v for k, v in vars(one).items() if k != "func"} == {k: v for k, v in vars(whole).items() if k != "func"}
    help_text = build_parser().format_help()
    for name in COMMAND_MODULES:
        assert (name if name != "net" else "serve") in help_text


def test_gateway_default_listen_is_the_servers() -> None:
    from pyipld._cli.gateway import DEFAULT_LISTEN
    from pyipld.http.server import DEFAULT_LISTEN as SERVER_DEFAULT

    assert DEFAULT_LISTEN == SERVER_DEFAULT


def test_fetching_a_file_from_peers_loads_no_car_module() -> None:
    # `get/cat --peer` stream a file: the CAR reader and writers load only for --car/serve
    code = ("import sys\nimport pyipld._cli.get, pyipld._cli.cat, pyipld._cli.net, pyipld.bitswap.client\n"
            "print(sorted(m for m in sys.modules if m.startswith('pyipld.car')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert out.stdout.strip().splitlines()[-1] == "[]"
