"""`facelora gui`: the workflow in a browser, over the same functions the CLI calls.

Only this package imports gradio, so the rest of facelora works without it. Layout:
  workspace.py  the folders this GUI serves; opening and creating projects
  jobs.py       long jobs as `python -m facelora ...` processes (locks in facelora.locks); events.jsonl
  fields.py     TrainConfig's fields as widgets
  uploads.py    checks on uploaded photos
  pages/        one module per tab; app.py puts them together and launches the server
"""
