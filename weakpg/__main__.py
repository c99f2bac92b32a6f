"""``python -m weakpg`` runs the command line."""

from weakpg._src.cli import app

app(prog_name="weakpg")
