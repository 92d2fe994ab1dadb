from facelora.cli import app

app()
