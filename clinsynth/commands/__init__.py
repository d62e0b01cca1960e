"""Further CLI commands. Every public module here defines ``register(app: typer.Typer)``,
and ``clinsynth.cli`` calls it; keep imports inside the commands so start-up stays fast."""
