"""The library facade: :class:`toolfetch.api.client.Client` and the typed values it returns.

What a build script, a Buck2 helper action or CI glue calls instead of the command line
(docs/python-api.md). It sits between ``ops`` and ``cli``: the use cases (which tool path,
what a lock changed, what a cache check found) live here, so the command line only parses
flags, calls one method and prints. ``toolfetch/__init__.py`` re-exports its names lazily.
"""
