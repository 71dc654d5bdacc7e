"""The web layer of ``attrgan serve``: a Flask app with one page and a JSON/PNG API.

Every route is a thin wrapper over :class:`attrgan.editing.studio.Studio`; refusals come back as a
4xx (or 503) with ``{"error": "one line"}``, never a traceback. Uploads stay in memory."""
from __future__ import annotations

import errno
import io
import ipaddress
import json
import logging
import re
import socket
from importlib import resources

from flask import Flask, Request, Response, jsonify, request
from werkzeug.exceptions import HTTPException
from werkzeug.serving import WSGIRequestHandler
from werkzeug.serving import make_server as werkzeug_server

from attrgan.data.dataset import to_model_range
from attrgan.editing.edits import parse_attribute_settings
from attrgan.editing.studio import MAX_UPLOAD_BYTES, Studio, StudioError
from attrgan.evaluation.plots import grid_png
from attrgan.runtime.errors import UserError

log = logging.getLogger("attrgan.serve")


class InMemoryRequest(Request):
    """Multipart file parts are read into memory, never spooled to a temporary file."""

    def _get_file_stream(self, total_content_length, content_type, filename=None, content_length=None):
        return io.BytesIO()


def create_app(studio: Studio) -> Flask:
    """The Flask app serving ``studio``: ``/`` (the page) and ``/api/...``."""
    app = Flask(__name__, static_folder=None)
    app.request_class = InMemoryRequest
    app.config["MAX_CONTENT_LENGTH"] = MAX_UPLOAD_BYTES + 64 * 1024  # the photo and its form envelope
    page = resources.files("attrgan.editing").joinpath("web", "index.html").read_text(encoding="utf-8")

    @app.get("/")
    def index() -> Response:
        return Response(page, mimetype="text/html")

    @app.get("/api/model")
    def model_info():
        return jsonify(studio.describe())

    @app.get("/api/faces")
    def faces():
        return jsonify({"faces": studio.test_faces(int_arg("offset", 0), int_arg("count", 24)),
                        "total": studio.test_face_count})

    @app.post("/api/photos")
    def upload():
        if request.mimetype == "multipart/form-data":  # a form's file field
            file = request.files.get("photo")
            data = file.read() if file is not None else b""
        else:  # the bytes as the body, whatever the type says (curl --data-binary sends a form type)
            data = request.get_data()
        photo = studio.add_photo(data)
        return jsonify(photo_info(studio, photo)), 201

    @app.get("/api/photos/<photo_id>")
    def photo(photo_id: str):
        return jsonify(photo_info(studio, studio.photo(photo_id)))

    @app.get("/api/photos/<photo_id>/crop.png")
    def crop(photo_id: str):
        return png(grid_png(to_model_range(studio.photo(photo_id).crop[None]), 1))

    @app.get("/api/photos/<photo_id>/reconstruction.png")
    def reconstruction(photo_id: str):
        return png(grid_png(studio.reconstruction(photo_id), 1))

    @app.get("/api/edit.png")
    def edit():
        return png(grid_png(studio.edit(required("photo"), settings_arg(), request.args.get("mode", "condition")), 1))

    @app.get("/api/sample.png")
    def sample():
        n = int_arg("n", 16)
        images = studio.samples(settings_arg(), int_arg("seed", 0), n, request.args.get("photo") or None)
        return png(grid_png(images, nrow=max(1, round(n**0.5))))

    @app.get("/api/interpolate.png")
    def interpolation():
        steps = int_arg("steps", 8)
        return png(grid_png(studio.interpolation(required("a"), required("b"), steps), nrow=steps))

    @app.errorhandler(StudioError)
    def refused(error: StudioError):
        return jsonify({"error": str(error)}), error.status

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException):
        message = {413: f"the upload is over {MAX_UPLOAD_BYTES // 2**20} MB"}.get(error.code, error.description)
        return jsonify({"error": message}), error.code

    @app.errorhandler(Exception)
    def crashed(error: Exception):
        log.exception("request failed: %s %s", request.method, request.full_path)
        message = f"internal error ({type(error).__name__}: {error}); the server log has the details"
        return jsonify({"error": message}), 500

    return app


def make_server(app: Flask, host: str, port: int):
    """A threaded WSGI server for ``app`` (requests served concurrently; the Studio serializes
    network work). ``port=0`` picks a free port: read it from ``server.server_port``. An address
    it cannot serve on is one error naming --host or --port."""
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # no line per request: a slider drag sends dozens
    listening = listening_socket(host, port)  # bound here: werkzeug would print the OS's words and exit
    try:
        server = werkzeug_server(host, port, app, threaded=True, fd=listening.fileno(),
                                 request_handler=JSONErrorsHandler)
    finally:
        listening.close()  # the server holds its own duplicate
    server.server_name, server.server_port = host, server.port  # what binding would have set (port 0: the one picked)
    return server


class JSONErrorsHandler(WSGIRequestHandler):
    """The errors the HTTP layer answers before the app sees a request (414: a request line over
    64 KiB, 431, 400) as JSON, like the API's own errors, rather than an HTML page."""

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        short, long = self.responses.get(code, ("Error", ""))
        body = json.dumps({"error": f"{code} {message or short}: {explain or long}"}).encode()
        self.log_error("code %d, message %s", code, message or short)
        self.send_response(code, message or short)
        self.send_header("Connection", "close")
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD" and code not in (204, 205, 304):
            self.wfile.write(body)


def listening_socket(host: str, port: int) -> socket.socket:
    """A TCP socket bound to ``host``:``port`` and listening, or a UserError saying what to change."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    except socket.gaierror as exc:
        raise UserError(f"--host {host}: not a host name or address this machine knows ({exc.strerror})") from None
    listening = socket.socket(family, kind, proto)
    try:
        listening.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listening.bind(address)
        listening.listen(128)
    except OSError as exc:
        listening.close()
        hint = {errno.EADDRINUSE: f"another program serves port {port}; pass another --port (0: any free one)",
                errno.EADDRNOTAVAIL: "it is not an address of this machine; pass one of its own with --host "
                                     "(127.0.0.1 for this machine only, 0.0.0.0 for every network)",
                errno.EACCES: "ports below 1024 need administrator rights; pass --port 1024 or above"}
        raise UserError(f"--host {host} --port {port}: cannot serve there ({exc.strerror or exc}); "
                        f"{hint.get(exc.errno, 'pass another --host or --port')}") from None
    return listening


def is_loopback(host: str) -> bool:
    """True when ``host`` is reachable from this machine only."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def photo_info(studio: Studio, photo) -> dict:
    """What the page needs of a photo: its id, where its attributes came from, their values
    (standard deviations from the training mean) and how familiar its face is to the model."""
    return {"id": photo.id, "attributes_from": photo.attributes_from, "attributes": photo.standardized(studio.model),
            **studio.familiarity(photo)}


def png(data: bytes) -> Response:
    return Response(data, mimetype="image/png", headers={"Cache-Control": "no-store"})


def required(name: str) -> str:
    value = request.args.get(name, "")
    if not value:
        raise StudioError(f"the request needs ?{name}=")
    return value


WHOLE_NUMBER = re.compile(r"-?[0-9]{1,12}", re.ASCII)  # one rule for numbers in URLs: ASCII digits, as test-N ids


def int_arg(name: str, default: int) -> int:
    """``?name=`` as a whole number written in ASCII digits (not 1_6, ٣ or 4,300 digits), else ``default``."""
    text = request.args.get(name)
    if text is None or text == "":
        return default
    if not WHOLE_NUMBER.fullmatch(text):
        raise StudioError(f"{name}={text!r}: expected a whole number in digits 0-9")
    return int(text)


def settings_arg() -> dict[str, float]:
    """``?set=Name=value`` (repeatable, as the CLI's ``--set``) -> {name: value}."""
    try:
        return parse_attribute_settings(request.args.getlist("set"), option="set")
    except ValueError as exc:
        raise StudioError(str(exc)) from None
