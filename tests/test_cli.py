"""The program as a whole: every subcommand is listed, documented with an example, and has a current man page;
errors are one line without --verbose; a closed pipe ends quietly."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest

from rdistill.cli import COMMANDS, app
from rdistill.manpages import pages
from tests.conftest import DATA, ROOT, SAMPLE

NAMES = [name for name, _ in COMMANDS]


def test_every_listed_command_is_registered() -> None:
    import typer

    group = typer.main.get_command(app)
    ctx = typer.Context(group, info_name="rdistill")
    assert group.list_commands(ctx) == NAMES  # type: ignore[attr-defined]
    # Each one builds (its module imports and its options parse into click), and under its own name.
    assert [group.get_command(ctx, name).name for name in NAMES] == NAMES  # type: ignore[attr-defined]
    assert group.get_command(ctx, "no-such-command") is None  # type: ignore[attr-defined]


def test_running_one_command_imports_only_its_module() -> None:
    # Start-up is most of a small job's time: `rdistill eval` must not import torch, transformers or the other
    # commands' modules (each a fraction of a second).
    code = ("import sys; from rdistill.cli import main; sys.argv = ['rdistill', 'eval', '--help']\n"
            "try:\n    main()\nexcept SystemExit:\n    pass\n"
            "print(sorted(m for m in sys.modules if m.startswith(('rdistill.commands.', 'torch', 'transformers'))))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    loaded = ast.literal_eval(proc.stdout.strip().splitlines()[-1])
    assert loaded == ["rdistill.commands._common", "rdistill.commands.eval"], loaded


def test_root_help_lists_every_subcommand(cli) -> None:
    result = cli("--help")
    assert result.exit_code == 0
    for name in NAMES:
        assert name in result.stdout


@pytest.mark.parametrize("name", NAMES)
def test_each_subcommand_help_has_an_example(cli, name: str) -> None:
    result = cli(name, "--help")
    assert result.exit_code == 0, result
    assert "Example" in result.stdout and f"rdistill {name}" in result.stdout
    # An example's continued lines keep their breaks: a lone backslash at the end of a docstring line joins the
    # lines into one with a run of spaces before the next option (what `report --help` once printed).
    example = result.stdout.split("Example")[1].split("Options:")[0]
    joined = [line for line in example.splitlines() if re.search(r"\S {4,}--", line)]
    assert not joined, joined


def test_man_pages_are_present_and_current() -> None:
    expected = pages()
    assert set(expected) == {"rdistill.1", *(f"rdistill-{name}.1" for name in NAMES), "rdistill-data-export.1",
                             "rdistill-data-split.1", "rdistill-data-queries.1"}
    stale = [name for name, text in expected.items()
             if not (ROOT / "man" / name).exists() or (ROOT / "man" / name).read_text() != text]
    assert not stale, f"regenerate with `python -m rdistill.manpages man`: {stale}"


def test_bad_input_is_one_line_and_exit_2(cli, tmp_path: Path) -> None:
    bad = tmp_path / "bad.trec"
    bad.write_text("q1 Q0 d1 1 1.5 t\nq1 Q0 d2 2 oops t\n")
    result = cli("eval", "--qrels", SAMPLE / "qrels.txt", bad)
    assert result.exit_code == 2
    assert result.stderr.strip() == f"rdistill: error: {bad}:2: expected a numeric score, got 'oops'"
    assert result.stdout == ""


def test_verbose_shows_the_traceback() -> None:
    proc = subprocess.run([sys.executable, "-m", "rdistill", "eval", "--qrels", str(SAMPLE / "qrels.txt"),
                           "/nonexistent/run.trec", "--verbose"], capture_output=True, text=True)
    assert proc.returncode == 2
    assert "Traceback" in proc.stderr and "rdistill: error:" in proc.stderr


def test_closed_pipe_is_quiet(tmp_path: Path) -> None:
    # 75 queries x 1000 documents is far more than a pipe buffer, so the writer meets the closed pipe.
    cmd = (f"{sys.executable} -m rdistill retrieve --corpus {DATA / 'cranfield'} --queries {DATA / 'cranfield'} "
           f"--split test --k 1000 | head -n 1")
    proc = subprocess.run(["bash", "-c", cmd], capture_output=True, text=True)
    assert proc.stdout.count("\n") == 1
    assert proc.stderr == ""
