"""`GET /docs`: Swagger UI for /openapi.json, with its JS and CSS served by this server.

The assets come from the `swagger-ui-bundle` package (Swagger UI 4.15.5 inside the wheel), so
the page works offline: no CDN, no call to Swagger's online validator.
"""

from __future__ import annotations

from pathlib import Path

from flask import Blueprint, Response, send_from_directory

from serving.errors import ApiError

ASSETS = (
    "swagger-ui.css",
    "swagger-ui-bundle.js",
    "swagger-ui-standalone-preset.js",
    "favicon-32x32.png",
    "favicon-16x16.png",
)

PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>Titanic survival prediction API</title>
  <link rel="stylesheet" href="/docs/assets/swagger-ui.css">
  <link rel="icon" type="image/png" href="/docs/assets/favicon-32x32.png" sizes="32x32">
</head>
<body>
  <div id="swagger-ui"></div>
  <script src="/docs/assets/swagger-ui-bundle.js"></script>
  <script src="/docs/assets/swagger-ui-standalone-preset.js"></script>
  <script>
    window.ui = SwaggerUIBundle({
      url: "/openapi.json",
      dom_id: "#swagger-ui",
      deepLinking: true,
      validatorUrl: null,
      presets: [SwaggerUIBundle.presets.apis, SwaggerUIStandalonePreset],
      layout: "BaseLayout"
    });
  </script>
</body>
</html>
"""


def assets_dir() -> Path:
    try:
        from swagger_ui_bundle import swagger_ui_path
    except ImportError:
        raise ApiError(
            "docs_unavailable", "the swagger-ui-bundle package is not installed", status=404
        ) from None
    return Path(str(swagger_ui_path))


def docs_blueprint() -> Blueprint:
    docs = Blueprint("docs", __name__)

    @docs.get("/docs")
    def page() -> Response:
        assets_dir()  # 404 now rather than a blank page
        return Response(PAGE, mimetype="text/html")

    @docs.get("/docs/assets/<name>")
    def asset(name: str) -> Response:
        if name not in ASSETS:
            raise ApiError("not_found", f"no documentation asset {name!r}", status=404)
        return send_from_directory(assets_dir(), name, max_age=3600)

    return docs
