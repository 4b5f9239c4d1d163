"""``GET /docs`` (Swagger UI) served from this package's own files, so it works offline.

FastAPI's default page loads Swagger UI's script and style from a CDN and stays blank
without internet access. The assets come from the ``swagger-ui-bundle-v2`` wheel
(Swagger UI 5, which reads the OpenAPI 3.1 schema FastAPI writes) and are served under
``/docs/assets/``.
"""
from __future__ import annotations

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse
from starlette.staticfiles import StaticFiles
from swagger_ui_bundle import swagger_ui_path

#: Where the Swagger UI files are served.
ASSETS = "/docs/assets"


def add_offline_docs(app: FastAPI) -> None:
    """Add ``GET /docs`` and its assets to ``app`` (built with ``docs_url=None``)."""
    app.mount(ASSETS, StaticFiles(directory=str(swagger_ui_path)), name="swagger-ui-assets")

    @app.get("/docs", include_in_schema=False)
    async def docs() -> HTMLResponse:
        return get_swagger_ui_html(openapi_url=app.openapi_url or "/openapi.json", title=f"{app.title} API",
                                   swagger_js_url=f"{ASSETS}/swagger-ui-bundle.js",
                                   swagger_css_url=f"{ASSETS}/swagger-ui.css",
                                   swagger_favicon_url=f"{ASSETS}/favicon-32x32.png")
