"""API documentation pages: Swagger UI at ``/docs``, ReDoc at ``/redoc``.

Partners' networks are closed, so the pages load nothing from a CDN: their scripts, styles and
icon come from an installed package (``fastapi-offline``, which ships Swagger UI 5 and ReDoc,
both able to read OpenAPI 3.1) and are served under ``/docs/static``. Swagger UI's online
validator badge, which would call an outside service, is switched off.
"""

from __future__ import annotations

from pathlib import Path

import fastapi_offline
from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

__all__ = ["ASSETS_DIRECTORY", "DOCS_PATH", "REDOC_PATH", "STATIC_PATH", "install_docs"]

DOCS_PATH = "/docs"
REDOC_PATH = "/redoc"
STATIC_PATH = "/docs/static"
ASSETS_DIRECTORY = Path(fastapi_offline.__file__).resolve().parent / "static"
SWAGGER_UI_PARAMETERS = {
    "validatorUrl": None,
    "defaultModelsExpandDepth": 0,
    "displayRequestDuration": True,
    "tryItOutEnabled": False,
}


def install_docs(app: FastAPI) -> None:
    """Add the documentation pages and their assets to ``app``."""
    if not (ASSETS_DIRECTORY / "swagger-ui-bundle.js").is_file():
        raise RuntimeError(f"Swagger UI assets are missing from {ASSETS_DIRECTORY}")
    app.mount(STATIC_PATH, StaticFiles(directory=ASSETS_DIRECTORY), name="docs-static")
    openapi_url = app.openapi_url or "/openapi.json"

    @app.get(DOCS_PATH, include_in_schema=False)
    async def swagger_ui(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "").rstrip("/")
        return get_swagger_ui_html(
            openapi_url=root + openapi_url,
            title=f"{app.title} — API reference",
            swagger_js_url=f"{root}{STATIC_PATH}/swagger-ui-bundle.js",
            swagger_css_url=f"{root}{STATIC_PATH}/swagger-ui.css",
            swagger_favicon_url=f"{root}{STATIC_PATH}/favicon.png",
            swagger_ui_parameters=SWAGGER_UI_PARAMETERS,
        )

    @app.get(REDOC_PATH, include_in_schema=False)
    async def redoc(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "").rstrip("/")
        return get_redoc_html(
            openapi_url=root + openapi_url,
            title=f"{app.title} — API reference",
            redoc_js_url=f"{root}{STATIC_PATH}/redoc.standalone.js",
            redoc_favicon_url=f"{root}{STATIC_PATH}/favicon.png",
            with_google_fonts=False,
        )
