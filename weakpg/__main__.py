"""``python -m weakpg`` runs the command line."""

from weakpg._src.app.cli import app

app(prog_name="weakpg")
