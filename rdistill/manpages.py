"""Man pages generated from --help, so the help text stays the one documentation to maintain.

``python -m rdistill.manpages man/`` rewrites man/rdistill.1 and man/rdistill-COMMAND.1; a test fails when a page
is missing or differs from what the current help text gives.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import typer

from rdistill import __version__
from rdistill.cli import app

WIDTH = 100
# As the program sets them (cli.app's context_settings), so a page shows the options a user can type.
HELP = ["-h", "--help"]


def _escape(line: str) -> str:
    line = line.replace("\\", "\\e")
    return "\\&" + line if line.startswith((".", "'")) else line


def help_text(command: Any, info_name: str, parent: Any = None) -> str:
    ctx = typer.Context(command, info_name=info_name, parent=parent, terminal_width=WIDTH, max_content_width=WIDTH,
                        help_option_names=HELP)
    return command.get_help(ctx)


def render(name: str, summary: str, text: str) -> str:
    title = name.upper()
    lines = [f'.TH {title} 1 "" "rdistill {__version__}" "rdistill manual"', ".SH NAME",
             f"{_escape(name)} \\- {_escape(summary)}", ".SH DESCRIPTION", ".nf"]
    lines += [_escape(line) for line in text.splitlines()]
    lines += [".fi", ".SH SEE ALSO", "rdistill(1)" if name != "rdistill" else "rdistill-eval(1), rdistill-retrieve(1)"]
    return "\n".join(lines) + "\n"


def pages() -> dict[str, str]:
    group = typer.main.get_command(app)
    root_ctx = typer.Context(group, info_name="rdistill", terminal_width=WIDTH, max_content_width=WIDTH,
                             help_option_names=HELP)
    out = {"rdistill.1": render("rdistill", "ranking distillation from the command line",
                                group.get_help(root_ctx))}
    # list_commands / get_command, not group.commands: the program builds each subcommand on first use.
    for name in sorted(group.list_commands(root_ctx)):  # type: ignore[attr-defined]
        command = group.get_command(root_ctx, name)  # type: ignore[attr-defined]
        out[f"rdistill-{name}.1"] = render(f"rdistill-{name}", _summary(command, name),
                                           help_text(command, name, root_ctx))
        # A group (rdistill data) also gets a page per subcommand: rdistill-data-export.1.
        for sub_name, sub in sorted(getattr(command, "commands", {}).items()):
            sub_ctx = typer.Context(command, info_name=name, parent=root_ctx, terminal_width=WIDTH,
                                    max_content_width=WIDTH, help_option_names=HELP)
            out[f"rdistill-{name}-{sub_name}.1"] = render(f"rdistill-{name}-{sub_name}", _summary(sub, sub_name),
                                                          help_text(sub, sub_name, sub_ctx))
    return out


def _summary(command: Any, name: str) -> str:
    return ((command.help or "").strip().splitlines()[0] if command.help else name).rstrip(".")


def write(folder: Path) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for filename, content in pages().items():
        path = folder / filename
        path.write_text(content)
        written.append(path)
    return written


if __name__ == "__main__":
    for path in write(Path(sys.argv[1] if len(sys.argv) > 1 else "man")):
        print(path)
