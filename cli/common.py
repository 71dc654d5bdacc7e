"""What the stage modules share: the error wrapper (user errors, bugs), options
several commands take, and the parsing of --condition-on and --unlabelled."""
from __future__ import annotations

import functools
import sys
import traceback
from typing import Callable, NoReturn, Optional

import click
import typer

from attrgan.runtime.errors import EXIT_BUG, EXIT_USER, REPORT_BUG, UserError, user_os_error

# options several commands share, declared once
DEVICE_OPTION = typer.Option("auto", help="auto (CUDA when present), cpu or cuda[:N].")


MTCNN_DEVICE_OPTION = typer.Option("auto", help="auto (CUDA when present), cpu or cuda[:N] for MTCNN.")


PROGRESS_OPTION = typer.Option(True, help="Show a progress bar.")


CROP_SIZE_OPTION = typer.Option(64, help="Side of the square crop, in pixels.")
IMAGE_BATCH_OPTION = typer.Option(64, help="Images per batch.")
LIMIT_OPTION = typer.Option(None, help="Stop after this many images (quick runs).")


DATASET_OUT_OPTION = typer.Option(..., help="Dataset directory to write (images.npy, index.csv, manifest.json).")


DATASET_FORCE_OPTION = typer.Option(False, help="Replace OUT if it exists (only once the new dataset is complete).")


def user_errors(command: Callable) -> Callable:
    """The CLI's error rule (attrgan.runtime.errors): a user's mistake or a named OS condition
    is one `error:` line and exit 1; running out of memory names the batch size to lower; an
    interrupt names what it kept; anything else is a bug, printed with its traceback, exit 70."""

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        try:
            return command(*args, **kwargs)
        except UserError as exc:
            fail(str(exc) or type(exc).__name__)
        except OSError as exc:
            if (line := user_os_error(exc)) is None:
                report_bug(exc)
            fail(line)
        except (MemoryError, *torch_out_of_memory()) as exc:
            fail(f"out of memory ({(str(exc).splitlines() or [type(exc).__name__])[0]}); lower the batch size "
                 "(--batch-size, or --set train.batch_size=N), or use --device cpu")
        except KeyboardInterrupt as exc:  # training raises a subclass that names its checkpoint and exit code
            typer.echo(str(exc) or "interrupted: nothing was written", err=True)
            raise typer.Exit(code=getattr(exc, "exit_code", 130)) from None
        except (click.exceptions.Exit, click.ClickException, click.Abort, SystemExit):  # click's own way out
            raise
        except Exception as exc:  # noqa: BLE001 - every other exception is a bug, reported as one
            report_bug(exc)

    return wrapper


def fail(line: str) -> NoReturn:
    typer.echo(f"error: {line}", err=True)
    raise typer.Exit(code=EXIT_USER)


def report_bug(exc: BaseException) -> NoReturn:
    """A one-line summary, the full traceback, how to report it; exit EXIT_BUG."""
    summary = f"internal error: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}".rstrip(": ")
    typer.echo("".join(traceback.format_exception(exc)).rstrip(), err=True)
    typer.echo(f"{summary}\n{REPORT_BUG}", err=True)
    raise typer.Exit(code=EXIT_BUG)


def torch_out_of_memory() -> tuple[type, ...]:
    """torch's out-of-memory error, when torch is already imported (the CLI starts without it)."""
    torch = sys.modules.get("torch")
    return (torch.OutOfMemoryError,) if torch is not None and hasattr(torch, "OutOfMemoryError") else ()


def condition_names(value: Optional[str]) -> Optional[list]:
    """--condition-on / --attributes: None (all attributes), [] for "none" (unconditional), or the names."""
    if value is None or not value.strip():
        return None
    if value.strip().lower() == "none":
        return []
    return [name.strip() for name in value.split(",")]


def unlabelled_choice(value: str) -> str:
    if value not in ("use", "skip"):
        raise UserError(f"--unlabelled must be use or skip, got {value!r}")
    return value
