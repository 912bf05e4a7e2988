"""Prometheus metrics of the service (``[metrics]`` options).

The service runs as several processes (uwsgi, mod_wsgi). Each process
counts into its own files in one directory (prometheus_client's
multiprocess mode, ``instruments``); a scrape, answered by any process,
adds up every process's files, folding those of dead processes into an
archive first (``archive``) so that a restarted worker neither resets
nor doubles the counts. Figures that describe the store rather than the
traffic (``store``, ``figures``) are computed at scrape time.

This package knows nothing of HTTP: ``freezer_api.api.metrics`` records
the requests and serves the text.
"""
