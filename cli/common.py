"""What the stage modules share: the error wrapper (one line on stderr, exit 1), options
several commands take, and the parsing of --condition-on and --unlabelled."""
from __future__ import annotations

import functools
from typing import Callable, Optional

import typer

DEFAULT_EVAL_EVERY = 250  # quality-check interval when --regressor is given and the config sets none


USER_ERRORS = (FileNotFoundError, FileExistsError, ValueError, KeyError, RuntimeError, OSError)


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
    """Turn expected failures (bad input, missing files) into one line on stderr and exit 1."""

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        try:
            return command(*args, **kwargs)
        except USER_ERRORS as exc:
            message = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
            typer.echo(f"error: {str(message) or type(exc).__name__}", err=True)
            raise typer.Exit(code=1) from None
        except KeyboardInterrupt as exc:  # training raises a subclass that names its checkpoint and exit code
            typer.echo(str(exc) or "interrupted: nothing was written", err=True)
            raise typer.Exit(code=getattr(exc, "exit_code", 130)) from None

    return wrapper


def condition_names(value: Optional[str]) -> Optional[list]:
    """--condition-on / --attributes: None (all attributes), [] for "none" (unconditional), or the names."""
    if value is None or not value.strip():
        return None
    if value.strip().lower() == "none":
        return []
    return [name.strip() for name in value.split(",")]


def unlabelled_choice(value: str) -> str:
    if value not in ("use", "skip"):
        raise ValueError(f"--unlabelled must be use or skip, got {value!r}")
    return value
