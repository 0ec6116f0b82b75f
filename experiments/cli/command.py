"""What the subcommand modules share: registering a subcommand with its description,
examples and defaults, the options several commands take, writing a JSON result.

Every subcommand module has ``register(subparsers)``, which calls :func:`add_command`;
:mod:`.main` calls each ``register`` in turn.
"""

from __future__ import annotations

import argparse
import re
import textwrap
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NoReturn

from codesign import files

#: A subcommand's handler: parsed arguments -> exit code.
Handler = Callable[[argparse.Namespace], int]
#: What ``add_subparsers`` returns.
Subparsers = argparse._SubParsersAction
#: A numbered line of a help paragraph ("1. ...").
_LIST_ITEM = re.compile(r"\d+\. ")


class Parser(argparse.ArgumentParser):
    """An argument parser whose errors are one line: ``codesign COMMAND: error: MESSAGE
    (see codesign COMMAND --help)`` on stderr, exit code 2 (no usage block)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")

    def parse_args(self, args: Any = None, namespace: Any = None) -> argparse.Namespace:  # type: ignore[override]
        """Parse as argparse does; an unrecognized argument is reported by the
        subcommand that was given (``codesign compress: error: ...``), not by
        `codesign` itself."""
        parsed, extra = self.parse_known_args(args, namespace)
        if extra:
            commands = [a for a in self._actions if isinstance(a, argparse._SubParsersAction)]
            command = getattr(parsed, "command", None)
            parser = commands[0].choices.get(command, self) if commands else self
            parser.error(f"unrecognized arguments: {' '.join(extra)}")
        return parsed


class HelpFormatter(argparse.HelpFormatter):
    """Help text a terminal shows well: a description or epilog paragraph of plain
    lines is filled to the terminal's width; a paragraph with an indented or numbered
    line (examples, lists) keeps its lines as written. Every option's help ends with
    its default unless the default is unset (``None``) or off (``False``), where the
    help says what happens."""

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        paragraphs = []
        for paragraph in text.split("\n\n"):
            lines = paragraph.splitlines()
            if any(line[:1].isspace() or _LIST_ITEM.match(line) for line in lines):
                paragraphs.append("\n".join(indent + line for line in lines))
            else:
                paragraphs.append(
                    textwrap.fill(
                        " ".join(lines), width, initial_indent=indent, subsequent_indent=indent
                    )
                )
        return "\n\n".join(paragraphs)

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        default = action.default
        if (
            "%(default)" in text
            or default is None
            or default is False
            or default is argparse.SUPPRESS
            or not action.option_strings
        ):
            return text
        return f"{text} (default: %(default)s)"


def add_command(
    subparsers: Subparsers,
    name: str,
    summary: str,
    description: str,
    examples: Sequence[str],
    handler: Handler,
    epilog: str = "",
) -> argparse.ArgumentParser:
    """Add subcommand ``name``: ``summary`` is its line in `codesign --help`,
    ``description`` the text on top of its own help, ``examples`` full command lines
    (each one also in the README's tour) under "examples:", then ``epilog``."""
    lines = ["example:" if len(examples) == 1 else "examples:"]
    lines += [f"  {example}" for example in examples]
    if epilog:
        lines += ["", epilog.rstrip("\n")]
    parser = subparsers.add_parser(
        name,
        help=summary,
        description=description,
        epilog="\n".join(lines),
        formatter_class=HelpFormatter,
    )
    parser.set_defaults(func=handler, examples=tuple(examples))
    return parser


def add_spec_option(parser: argparse.ArgumentParser, what: str) -> None:
    """``--spec KEY=VALUE`` (repeatable): ``what`` says whose fields they are."""
    parser.add_argument(
        "--spec",
        action="append",
        metavar="KEY=VALUE",
        help=f"{what} (repeatable; unset fields keep their defaults)",
    )


def add_json_option(parser: argparse.ArgumentParser, what: str) -> None:
    """``--json OUT``: also write ``what`` as JSON."""
    parser.add_argument("--json", metavar="OUT", help=f"also write {what} as JSON to OUT")


def add_workers_option(parser: argparse.ArgumentParser) -> None:
    """``--workers N``: threads of the numba encoders."""
    parser.add_argument(
        "--workers",
        type=int,
        metavar="N",
        help="threads of the encoders' parallel segments, tiles and blocks (default: all)",
    )


def set_workers(workers: int | None) -> None:
    """Threads the numba encoders use for independent segments, tiles and blocks (None:
    leave numba's default, every thread of the machine, and do not load numba)."""
    if workers is None:
        return
    import numba

    limit = numba.config.NUMBA_NUM_THREADS
    if not 1 <= workers <= limit:
        raise ValueError(f"--workers must be in 1..{limit} (this machine's threads), got {workers}")
    numba.set_num_threads(workers)


def write_json(path: str | Path, doc: dict[str, Any]) -> None:
    """Write ``doc`` as indented JSON to ``path`` atomically (parents created) and say so."""
    print(f"wrote {files.write_json(path, doc)}")
