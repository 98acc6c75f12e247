"""The service's web side: feedback pages, matches, feed health, digests, profiles, /metrics, /healthz.

Importing this package is cheap (no web framework): the pipeline uses :mod:`watcher.web.tokens`
to put feedback links in digests; :mod:`watcher.web.app` builds the ASGI app and
:mod:`watcher.web.server` runs it.
"""
