"""The ``rdistill`` program: one typer app, one module per subcommand under rdistill/commands/.

Errors the user can fix print one line on stderr and exit 2; ``--verbose`` (anywhere on the line) shows the
traceback instead. A closed pipe (``rdistill ... | head``) ends the program quietly.
"""

from __future__ import annotations

import contextlib
import importlib
import io
import math
import os
import signal
import sys
import traceback
import typing
from typing import Any

import typer
from typer._click import exceptions as click
from typer.core import TyperGroup

from rdistill import __version__
from rdistill.errors import OS_FAULTS, RdistillError

# (name, module): each module defines ``command``, a typed function whose docstring is its --help, or ``app``, a
# typer group of subcommands (``rdistill data export``).
COMMANDS: list[tuple[str, str]] = [
    ("retrieve", "rdistill.commands.retrieve"),
    ("score-teacher", "rdistill.commands.score_teacher"),
    ("fuse", "rdistill.commands.fuse"),
    ("entropy", "rdistill.commands.entropy"),
    ("sample", "rdistill.commands.sample"),
    ("locality", "rdistill.commands.locality"),
    ("train", "rdistill.commands.train"),
    ("eval", "rdistill.commands.eval"),
    ("report", "rdistill.commands.report"),
    ("convert", "rdistill.commands.convert"),
    ("data", "rdistill.commands.data"),
]

_state: dict[str, bool] = {"verbose": False}


def verbose() -> bool:
    return _state["verbose"] or os.environ.get("RDISTILL_VERBOSE", "") not in ("", "0")


def fail(message: str, code: int = 2) -> typer.Exit:
    typer.echo(f"rdistill: error: {message}", err=True)
    return typer.Exit(code)


def _finite_floats(command: Any) -> Any:
    """Make every float option refuse nan and inf: click parses both, and a range check lets nan through (every
    comparison with nan is false), so ``--lr nan`` would otherwise train a broken model."""
    for param in getattr(command, "params", []):
        annotation = getattr(getattr(param, "type_descriptor", None), "annotation", None)
        if not (annotation is float or float in typing.get_args(annotation)) or getattr(param, "_finite", False):
            continue
        original = param.process_value

        def process_value(ctx: Any, value: Any, _original: Any = original, _param: Any = param) -> Any:
            result = _original(ctx, value)
            if isinstance(result, float) and not math.isfinite(result):
                raise click.BadParameter(f"{value!r} is not a finite number", ctx=ctx, param=_param)
            return result

        param.process_value = process_value
        param._finite = True
    return command


class RdistillGroup(TyperGroup):
    """Adds the project-wide error policy and a ``--verbose`` accepted anywhere on the command line."""

    def list_commands(self, ctx: Any) -> list[str]:
        return [name for name, _ in COMMANDS]

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        # Built on demand (see _build): running one command imports only its module.
        return _build(cmd_name)

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        if "--verbose" in args:
            cut = args.index("--") if "--" in args else len(args)
            if "--verbose" in args[:cut]:
                _state["verbose"] = True
                args = [a for i, a in enumerate(args) if not (a == "--verbose" and i < cut)]
        return super().parse_args(ctx, args)

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except RdistillError as exc:
            if verbose():
                traceback.print_exc()
            raise fail(str(exc), exc.exit_code) from None
        except FileNotFoundError as exc:
            if verbose():
                traceback.print_exc()
            raise fail(f"{exc.filename}: no such file or folder") from None
        except PermissionError as exc:
            if verbose():
                traceback.print_exc()
            raise fail(f"{exc.filename}: permission denied") from None
        except BrokenPipeError:
            # The reader went away (| head): stop quietly, and keep Python from complaining at exit.
            _silence_stdout()
            raise typer.Exit(0) from None
        except OSError as exc:
            if exc.errno not in OS_FAULTS:
                raise
            if verbose():
                traceback.print_exc()
            where = f"{exc.filename}: " if exc.filename else ""
            raise fail(f"{where}{OS_FAULTS[exc.errno]}") from None
        except click.UsageError as exc:
            # Bad arguments: click's own message, on the one line every other error uses.
            if verbose():
                traceback.print_exc()
            where = f"{exc.ctx.command_path}: " if exc.ctx is not None else ""
            raise fail(f"{where}{exc.format_message()}", exc.exit_code) from None
        except KeyboardInterrupt:
            raise fail("interrupted", 130) from None
        finally:
            from rdistill.io import release_held

            release_held()


def _silence_stdout() -> None:
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):
        pass


app = typer.Typer(
    name="rdistill",
    cls=RdistillGroup,
    help="Ranking distillation from the command line.\n\n"
    "Stages read and write TREC runs or JSONL on stdin/stdout, so they pipe together, and any stage can be "
    "swapped for an external tool. Add --verbose anywhere for tracebacks.\n\n"
    "\b\nExample (BM25 -> teacher -> training groups -> student -> evaluation):\n"
    "  rdistill retrieve --corpus data/scifact --queries data/scifact --split train --k 100 > bm25.trec\n"
    "  rdistill score-teacher --model all-MiniLM-L6-v2 --queries data/scifact --corpus data/scifact "
    "< bm25.trec > teacher.trec\n"
    "  rdistill sample --strategy window --window 1:100 --qrels data/scifact --split train < teacher.trec "
    "> groups.jsonl\n"
    "  rdistill train --student cross --model all-MiniLM-L6-v2 --queries data/scifact --corpus data/scifact "
    "--out student < groups.jsonl\n"
    "  rdistill eval --qrels data/scifact --split test run.trec",
    no_args_is_help=True,
    add_completion=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"rdistill {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version."),
) -> None:
    """Ranking distillation from the command line."""


def _build(name: str) -> Any:
    """The click command for one subcommand, built from its module on first use.

    Only the command being run is imported and turned into click options: building all of them cost 0.15-0.5 s of
    every invocation's start-up (importing eleven modules, then typer inspecting every signature), a large part of
    a small job's wall time (``retrieve`` of 1 109 queries at k = 100 runs in 0.4 s). A wrapper Typer builds it exactly
    as ``add_typer``/``command`` on the root app did, so help texts and man pages are unchanged.
    """
    if name in _built:
        return _built[name]
    module_name = dict(COMMANDS).get(name)
    if module_name is None:
        return None
    # Every command listed must import: a missing module is an error here, never a command silently left out.
    module = importlib.import_module(module_name)
    wrapper = typer.Typer(rich_markup_mode=None, add_completion=False)
    wrapper.callback()(_nothing)
    if hasattr(module, "app"):
        wrapper.add_typer(module.app, name=name)
    else:
        wrapper.command(name)(module.command)
    command = _finite_floats(typer.main.get_command(wrapper).commands[name])  # type: ignore[attr-defined]
    _built[name] = command
    return command


def _nothing() -> None:
    """A callback only so that the wrapper is a group."""


_built: dict[str, Any] = {}


def main() -> None:
    # Default SIGPIPE: `rdistill ... | head` ends without a BrokenPipeError traceback.
    if hasattr(signal, "SIGPIPE"):
        signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    _standard_streams()
    try:
        app(prog_name="rdistill")
    except KeyboardInterrupt:  # Ctrl-C while a command is still being built (imports): one line, as in invoke
        print("rdistill: error: interrupted", file=sys.stderr)
        sys.exit(130)
    except RdistillError as exc:  # raised outside a command (e.g. --help with stdout closed)
        if verbose():
            traceback.print_exc()
        print(f"rdistill: error: {exc}", file=sys.stderr)
        sys.exit(exc.exit_code)


def _standard_streams() -> None:
    """Standard streams as the commands expect them. A descriptor the program was started without (``<&-``,
    ``>&-``) is taken by /dev/null, so that no file opened later becomes "stdout"; Python leaves ``sys.stdin`` or
    ``sys.stdout`` None then, and reading stdin or writing data to stdout says so in one line (rdistill.io).
    Data on stdout is UTF-8 whatever the locale, as ``-o`` writes it."""
    for fd in (0, 1, 2):
        try:
            os.fstat(fd)
        except OSError:
            with contextlib.suppress(OSError):
                os.open(os.devnull, os.O_RDWR)  # the lowest free descriptor: this one
    if sys.stdout is None:
        sys.stdout = _ClosedStdout()  # type: ignore[assignment]
    else:
        reconfigure = getattr(sys.stdout, "reconfigure", None)
        if reconfigure is not None and (sys.stdout.encoding or "").lower().replace("-", "") != "utf8":
            reconfigure(encoding="utf-8")


class _ClosedStdout(io.TextIOBase):
    """What sys.stdout is when the program started with it closed: writing data there is a usage error."""

    encoding = "utf-8"  # type: ignore[assignment]

    @property
    def buffer(self) -> Any:
        from rdistill.errors import UsageError

        raise UsageError("standard output is closed; give -o FILE, or open stdout (> FILE)")

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        from rdistill.errors import UsageError

        raise UsageError("standard output is closed; give -o FILE, or open stdout (> FILE)")

    def flush(self) -> None:
        pass


if __name__ == "__main__":
    main()
