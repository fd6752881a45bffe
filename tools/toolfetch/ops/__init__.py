"""What the commands do, one module per command group: fetch, bootstrap, export/import, copy/pull,
push/publish, inspect/tags, login.
"""
