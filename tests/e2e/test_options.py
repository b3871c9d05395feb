"""Options as data (issue 12, "What to build" 6): each command's options
live in one table that drives parsing, --help and the defaults shown, so
help and parser cannot disagree and a command takes only its own options."""
import re

import pytest

from helpers import run

COMMANDS = ["hash", "index", "lookup", "stats", "banks", "delete", "export", "import",
            "verify", "compact", "serve"]


def listed_options(cmd):
    """The options a command's --help lists in its table."""
    p = run(cmd, "--help")
    assert p.returncode == 0, p.stderr
    return re.findall(r"^  (?:-\w, )?--([a-z][a-z-]*)(?: (\S+))?", p.stdout, re.M)


@pytest.mark.parametrize("cmd", COMMANDS)
def test_every_listed_option_is_parsed(cmd, tmp_path):
    opts = listed_options(cmd)
    assert ("help", "") in opts
    for name, value in opts:
        if name == "help":
            continue
        # Without its value, an option that takes one says so; a flag is
        # accepted (the stray operand then fails the command, so that no
        # server starts).
        p = run(cmd, f"--{name}", *([] if value else ["no-such-operand"]), cwd=tmp_path)
        assert "unknown option" not in p.stderr, (cmd, name, p.stderr)
        if value:
            assert f"option '--{name}' needs a value" in p.stderr, (cmd, name, p.stderr)


@pytest.mark.parametrize("cmd,option", [("stats", "--kind=allow"), ("verify", "--threshold=3"),
                                        ("import", "--bank=x"), ("compact", "--json"),
                                        ("delete", "--format=csv"), ("hash", "--db=x")])
def test_a_command_refuses_options_it_does_not_take(cmd, option, tmp_path):
    # Before the tables, the admin commands shared one parser and took every
    # option any of them knew, ignoring the ones they had no use for.
    p = run(cmd, option, "x", cwd=tmp_path)
    assert p.returncode == 2
    assert f"unknown option '{option}'" in p.stderr


def test_defaults_shown_are_the_ones_used():
    p = run("index", "--help")
    assert "(default 50; 1 for hash lists)" in p.stdout
    assert "content id\ndefaults to the line number" not in p.stdout
    assert "  -q, --quiet" in p.stdout
    p = run("serve", "--help")
    assert re.search(r"--timeout S\s+close a connection idle.*\(default 30\)", p.stdout, re.S)
