"""fitserve: fit a fresh scikit-learn LinearRegression per HTTP request, and predict.

Importing the package is cheap: the heavy modules load when first used.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from service.version import __version__

__all__ = ["__version__", "create_app", "serve_in_background"]

if TYPE_CHECKING:
    import falcon

    from service.server import BackgroundServer
    from service.settings import Settings


def create_app(settings: Settings | None = None) -> falcon.App[falcon.Request, falcon.Response]:
    """Build the WSGI application (see ``service.app.create_app``)."""
    from service.app import create_app as build

    return build(settings)


def serve_in_background(port: int = 0, **settings: Any) -> BackgroundServer:
    """Serve from a thread of this process (a notebook's kernel); see ``service.server``."""
    from service.server import serve_in_background as start

    return start(port=port, **settings)
