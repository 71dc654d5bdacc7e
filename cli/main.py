"""`attrgan` — the command-line entry point. Each command parses its options, calls one
library function and prints a summary; all logic lives in `attrgan/` and `data_prep/`. The
commands live in one module per stage (prep, train, evaluate, edit, serve) and import the
library inside the command, so `attrgan --help` starts without torch."""
from __future__ import annotations

import sys

import typer

from cli import edit, evaluate, prep, serve, train
from cli.common import user_errors

app = typer.Typer(
    help="Conditional VAE/GAN on face attributes (Larsen et al., ICML 2016): "
    "LFW alignment, training, Table-1 evaluation and attribute editing.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
for stage in (prep, train, evaluate, edit, serve):
    for name, command in stage.COMMANDS.items():
        app.command(name)(user_errors(command))


def main() -> None:  # pragma: no cover - console entry point
    app()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(app())
