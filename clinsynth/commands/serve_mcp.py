"""``clinsynth serve-mcp``: the clinsynth tools over MCP (stdio, or streamable HTTP)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from clinsynth.cli_support import (
    EmbedderOpt,
    StoreOpt,
    UserError,
    console,
    guard,
    settings_from_env,
)

LOOPBACK = {"127.0.0.1", "localhost", "::1"}


def register(app: typer.Typer) -> None:
    """Add the ``serve-mcp`` command."""

    @app.command("serve-mcp")
    def serve_mcp(
        http: Annotated[
            bool, typer.Option("--http", help="serve streamable HTTP instead of stdio")
        ] = False,
        host: Annotated[str, typer.Option(help="HTTP bind address")] = "127.0.0.1",
        port: Annotated[int, typer.Option(help="HTTP port")] = 8765,
        data_dir: Annotated[
            Path, typer.Option("--data-dir", help="where generation runs are written")
        ] = Path(".clinsynth"),
        store: StoreOpt = None,
        embedder: EmbedderOpt = None,
    ) -> None:
        """Serve search, generate, critique, label-correction and fine-tuning tools over MCP
        (stdio by default; --http serves http://HOST:PORT/mcp, bound to 127.0.0.1)."""
        guard(_serve, http, host, port, data_dir, store, embedder)


def _serve(
    http: bool, host: str, port: int, data_dir: Path, store: Path | None, embedder: str | None
) -> None:
    from clinsynth.apps.mcp_server import build_server
    from clinsynth.tools.toolkit import ClinsynthToolkit

    if not 0 < port < 65536:
        raise UserError(f"--port must be between 1 and 65535, got {port}")
    settings = settings_from_env(store, embedder)
    server = build_server(ClinsynthToolkit(settings, data_dir=data_dir))
    if not http:
        server.run("stdio")
        return
    if host not in LOOPBACK:
        console.print(
            f"[bold yellow]warning:[/] serving on {host}: anyone who can reach it can run "
            "generations on your endpoint (no authentication)",
            highlight=False,
        )
    console.print(f"MCP over HTTP at http://{host}:{port}/mcp", highlight=False)
    server.run("streamable-http", host=host, port=port)
