"""The studio: serve."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from cli.common import DEVICE_OPTION


def serve_command(
    checkpoint: Optional[Path] = typer.Option(None, help="Run directory, checkpoint.pt or a bundled model's name "
                                              "(default: the bundled model, with its regressor)."),
    regressor: Optional[Path] = typer.Option(None, help="Regressor: estimates uploaded photos' attributes."),
    vectors: Optional[Path] = typer.Option(None, help="attribute-vectors output: enables latent edits."),
    data: Optional[Path] = typer.Option(None, help="Dataset whose test-split faces the page offers "
                                        "(default: the one the model was trained on, if present)."),
    host: str = typer.Option("127.0.0.1", help="Address to bind; the default serves this machine only."),
    port: int = typer.Option(8000, help="Port (0: any free port)."),
    device: str = DEVICE_OPTION,
) -> None:
    """An editing page in the browser: upload or pick a face, move attribute sliders, draw samples."""
    from attrgan.editing.studio import default_model, load_studio
    from attrgan.editing.webapp import create_app, is_loopback, make_server
    from attrgan.runtime.device import resolve_device
    from attrgan.runtime.limits import require

    require("--port", port, 0, 65535)
    if checkpoint is None:
        checkpoint, regressor = default_model(regressor)
    studio = load_studio(checkpoint, regressor, vectors, data, str(resolve_device(device)))
    server = make_server(create_app(studio), host, port)
    shown = f"[{host}]" if ":" in host else host
    reach = "this machine only" if is_loopback(host) else "REACHABLE FROM OTHER MACHINES on your network"
    typer.echo(f"attrgan studio: http://{shown}:{server.server_port}/  ({reach}; Ctrl-C stops it)")
    faces = studio.describe()["test_faces"]
    typer.echo(f"model {studio.model.kind} {studio.model.image_size}px, {len(studio.model.attribute_names)} "
               "attributes; "
               f"edit modes: {', '.join(studio.modes) or 'none'}; {faces} test-split faces"
               + ("" if regressor else "; without --regressor, uploads start from the training-mean attributes"))
    if studio.dataset is None and data is None:
        typer.echo(f"note: the model's dataset ({studio.model.training_data}) is not at hand from here, so the page "
                   "offers no test-split faces; pass --data DATASET to offer them")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        typer.echo("stopped")
    finally:
        server.server_close()


COMMANDS = {"serve": serve_command}
