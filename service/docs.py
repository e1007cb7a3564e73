"""``GET /docs``: Swagger UI on ``/openapi.json``, every file of it served by the service itself.

Swagger UI's script and style sheet are the ones the ``swagger-ui-py`` distribution installs
(Swagger UI 5, which reads OpenAPI 3.1); they are found through that distribution's metadata,
so its Python code is never imported. The page itself, the script that starts Swagger UI and a
few style rules are this package's data (``service/static``). The page contacts no other
site: its Content-Security-Policy allows scripts, styles, images and requests from this
service only, and no inline script (the start-up code is a served file). The page and its
files never need the token; with a token configured the page says so and opens Swagger UI's
Authorize dialog, whose token then goes with every request sent from the page.

Each file is read once, when the app is built; the large ones are sent gzip-compressed to
clients that take it (compressed once, on first request), with an ``ETag`` so that a reload
costs a 304.
"""

from __future__ import annotations

import gzip
import hashlib
import threading
from dataclasses import dataclass, field
from importlib import metadata, resources
from pathlib import Path

import falcon

#: The distribution whose files hold Swagger UI.
SWAGGER_UI_DISTRIBUTION = "swagger-ui-py"
SWAGGER_UI_FOLDER = "swagger_ui/static"
#: What the page may load, and from where: this service only, and no inline script.
CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        # Swagger UI's style sheet draws its icons as data: URLs; a picture answer is shown from a blob:.
        "img-src 'self' data: blob:",
        "connect-src 'self'",
        "font-src 'self'",
        "base-uri 'none'",
        "form-action 'none'",
        "frame-ancestors 'none'",
    ]
)
#: Below this size a file is sent as it is: compressing it would save next to nothing.
COMPRESS_ABOVE = 2048
HTML = "text/html; charset=utf-8"
# name under /docs/: (where it comes from, its content type)
ASSETS: dict[str, tuple[str, str]] = {
    "swagger-ui-bundle.js": ("swagger-ui", "text/javascript; charset=utf-8"),
    "swagger-ui.css": ("swagger-ui", "text/css; charset=utf-8"),
    "favicon-32x32.png": ("swagger-ui", "image/png"),
    "docs.js": ("service", "text/javascript; charset=utf-8"),
    "docs.css": ("service", "text/css; charset=utf-8"),
}


def swagger_ui_file(name: str) -> bytes:
    """Read one file of Swagger UI from the installed ``swagger-ui-py`` distribution."""
    distribution = metadata.distribution(SWAGGER_UI_DISTRIBUTION)
    return Path(str(distribution.locate_file(f"{SWAGGER_UI_FOLDER}/{name}"))).read_bytes()


def package_file(name: str) -> bytes:
    """Read one file of this package's data (``service/static``)."""
    return (resources.files("service") / "static" / name).read_bytes()


@dataclass
class Asset:
    """One file of the page: its bytes, their gzip form (made when first asked for) and its tag."""

    content: bytes
    content_type: str
    etag: str = ""
    compressed: bytes | None = None
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def __post_init__(self) -> None:
        self.etag = hashlib.sha256(self.content).hexdigest()[:32]

    def gzipped(self) -> bytes:
        """The content, gzip-compressed once and kept."""
        with self.lock:
            if self.compressed is None:
                self.compressed = gzip.compress(self.content, compresslevel=9, mtime=0)
            return self.compressed


def load_assets() -> dict[str, Asset]:
    """Read every file the page loads."""
    return {
        name: Asset(swagger_ui_file(name) if source == "swagger-ui" else package_file(name), content_type)
        for name, (source, content_type) in ASSETS.items()
    }


def build_page(token_required: bool) -> bytes:
    """The HTML of ``/docs``: it says whether the service needs a token."""
    page = package_file("docs.html").decode("utf-8")
    return page.replace("{token}", "required" if token_required else "none").encode("utf-8")


def takes_gzip(req: falcon.Request) -> bool:
    """Tell whether the client accepts a gzip-compressed answer (``Accept-Encoding``, q > 0)."""
    for coding in (req.get_header("Accept-Encoding") or "").split(","):
        name, *parameters = (part.strip() for part in coding.split(";"))
        if name.lower() not in ("gzip", "*"):
            continue
        quality = 1.0
        for parameter in parameters:
            key, _, value = parameter.partition("=")
            if key.strip().lower() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        return quality > 0
    return False


def send(req: falcon.Request, resp: falcon.Response, asset: Asset) -> None:
    """Answer with one file of the page: the docs headers, 304 when the client has it, gzip when taken."""
    resp.set_header("Content-Security-Policy", CONTENT_SECURITY_POLICY)
    resp.set_header("X-Content-Type-Options", "nosniff")
    resp.set_header("Referrer-Policy", "no-referrer")
    resp.cache_control = ["no-cache"]  # revalidated with the ETag: an upgrade shows at once
    resp.vary = ("Accept-Encoding",)
    resp.etag = asset.etag
    if req.if_none_match and any(tag == asset.etag or tag == "*" for tag in req.if_none_match):
        resp.status = 304
        return
    resp.content_type = asset.content_type
    if len(asset.content) > COMPRESS_ABOVE and takes_gzip(req):
        resp.set_header("Content-Encoding", "gzip")
        resp.data = asset.gzipped()
    else:
        resp.data = asset.content


class DocsResource:
    """``GET /docs`` and ``GET /docs/{name}``: the page of the API and the files it loads."""

    def __init__(self, token_required: bool) -> None:
        self.page = Asset(build_page(token_required), HTML)
        self.assets = load_assets()

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        """Answer with the page."""
        send(req, resp, self.page)

    def on_get_asset(self, req: falcon.Request, resp: falcon.Response, name: str) -> None:
        """Answer with one file the page loads; 404 for any other name."""
        asset = self.assets.get(name)
        if asset is None:
            raise falcon.HTTPNotFound(
                description=f"The docs page has no file {name[:60]!r}; its files are {', '.join(sorted(self.assets))}."
            )
        send(req, resp, asset)
