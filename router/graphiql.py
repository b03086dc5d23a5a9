"""GraphiQL served with no internet access (Apollo Router's ``static_page`` layer, for us).

GraphiQL 4.1.2's standalone UMD bundle on React 18 UMD builds, installed from npm during
set-up (``npm ci --prefix router/static``) and served by the router under ``/graphiql-assets/``:
only the files in :data:`ASSETS`, nothing else from ``node_modules``, and no CDN reference.
When they are missing the router logs how to install them and ``GET /graphql`` shows a short
page saying so; the API itself keeps working.
"""

from __future__ import annotations

import html
import logging
from pathlib import Path

import orjson
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, Response
from starlette.routing import Route

from pek.router import devauth
from pek.router.edge.auth import EdgeAuth
from pek.router.edge.errors import error_response
from pek.router.edge.executor import GraphQLExecutor
from pek.router.edge.forwarding import forwarded_headers
from pek.settings import Settings

log = logging.getLogger(__name__)

STATIC_DIR = Path(__file__).resolve().parent / "static"
DEFAULT_ASSETS_DIR = STATIC_DIR / "node_modules"
TEMPLATE_PATH = STATIC_DIR / "graphiql.html"
ASSETS_PATH = "/graphiql-assets"
INSTALL_COMMAND = "npm ci --prefix router/static"

#: The files the page loads: URL name -> path inside node_modules (the whitelist).
ASSETS: dict[str, str] = {
    "react.production.min.js": "react/umd/react.production.min.js",
    "react-dom.production.min.js": "react-dom/umd/react-dom.production.min.js",
    "graphiql.min.js": "graphiql/graphiql.min.js",
    "graphiql.min.css": "graphiql/graphiql.min.css",
}

DEFAULT_QUERY = """\
# Anonymous callers see the group directory; people's names and profiles
# are shown to signed-in users.
{
  me {
    name
  }
  groups(first: 5) {
    edges {
      node {
        name
        realm {
          name
        }
        memberships {
          status
          user {
            name
            nickname
          }
        }
      }
    }
  }
}
"""

WHO_AM_I_QUERY = "query PekDevWhoAmI { me { name } }"


class GraphiQLPage:
    """The GraphiQL HTML page and its whitelisted static assets."""

    def __init__(
        self,
        gateway: GraphQLExecutor,
        settings: Settings,
        assets_dir: Path | None = None,
        auth: EdgeAuth | None = None,
    ) -> None:
        self.gateway = gateway
        self.settings = settings
        self.assets_dir = assets_dir or DEFAULT_ASSETS_DIR
        #: Mints the dev user's hub token for the "signed in as" lookup.
        self.auth = auth

    def missing_assets(self) -> list[str]:
        """Whitelisted asset files that are not installed."""
        return [rel for rel in ASSETS.values() if not (self.assets_dir / rel).is_file()]

    def install_hint(self) -> str:
        return (
            f"run `{INSTALL_COMMAND}` in the repository "
            f"(that is, `npm ci --prefix {self.assets_dir.parent}`)"
        )

    def warn_if_assets_missing(self) -> None:
        """Log, once at start-up, what to run when GraphiQL's assets are not installed."""
        if not self.settings.graphiql:
            return
        missing = self.missing_assets()
        if missing:
            log.warning(
                "GraphiQL assets are not installed (missing %s): GET /graphql will show a notice "
                "instead of GraphiQL; %s. The GraphQL API works regardless.",
                ", ".join(missing),
                self.install_hint(),
            )

    async def render(self, request: Request) -> Response:
        """The GraphiQL page (or the "assets missing" notice); 404 when GraphiQL is off."""
        if not self.settings.graphiql:
            return error_response(404, "GraphiQL is disabled on this router")
        if self.missing_assets():
            return HTMLResponse(self._missing_page(), status_code=503)
        status = await self._status_html(request)
        config = {"endpoint": str(request.url.path), "defaultQuery": DEFAULT_QUERY}
        # "</" inside a <script> element would let data end the element early.
        config_json = orjson.dumps(config).decode().replace("</", "<\\/")
        page = (
            TEMPLATE_PATH.read_text(encoding="utf-8")
            .replace("{{assets}}", ASSETS_PATH)
            .replace("{{config}}", config_json)
            .replace("{{status}}", status)
        )
        return HTMLResponse(page, headers={"Cache-Control": "no-store"})

    async def _status_html(self, request: Request) -> str:
        if not self.settings.dev:
            return ""
        user = devauth.dev_user(request, self.settings)
        switch = f'<a href="{devauth.SIGN_IN_PATH}">'
        if user is None:
            return f'<span id="pek-user">Not signed in</span> {switch}Sign in as a demo user</a>'
        label = user
        try:
            token = await self.auth.dev_token(user) if self.auth is not None else None
            result = await self.gateway.execute(
                WHO_AM_I_QUERY, headers=forwarded_headers(request.headers, self.settings, token)
            )
            me = (result.get("data") or {}).get("me")
            if isinstance(me, dict) and isinstance(me.get("name"), str) and me["name"]:
                label = me["name"]
        except Exception:
            # The page must open even when the supergraph cannot answer; the id will do.
            log.exception("GraphiQL: looking up the signed-in user failed")
        return (
            f'<span id="pek-user">Signed in as <strong>{html.escape(label)}</strong></span> '
            f"{switch}Switch user</a>"
        )

    def _missing_page(self) -> str:
        return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>GraphiQL is not installed</title></head>
<body style="font-family: system-ui, sans-serif; max-width: 40rem; margin: 2rem auto">
<h1>GraphiQL is not installed</h1>
<p>The GraphiQL files are installed from npm during set-up and are missing here. To install
them, {html.escape(self.install_hint())}, then reload this page.</p>
<p>The GraphQL API works meanwhile: <code>POST /graphql</code> with a JSON body.</p>
</body></html>
"""

    async def asset(self, request: Request) -> Response:
        """One whitelisted asset file; 404 for anything else."""
        name = request.path_params["name"]
        relative = ASSETS.get(name)
        if relative is None or not self.settings.graphiql:
            return error_response(404, f"No such GraphiQL asset: {name!r}")
        path = self.assets_dir / relative
        if not path.is_file():
            return error_response(
                404, f"GraphiQL asset {name!r} is not installed: {self.install_hint()}"
            )
        media_type = "text/css" if name.endswith(".css") else "text/javascript"
        return FileResponse(
            path, media_type=media_type, headers={"Cache-Control": "public, max-age=3600"}
        )

    def routes(self) -> list[Route]:
        return [Route(ASSETS_PATH + "/{name}", self.asset, methods=["GET"])]
