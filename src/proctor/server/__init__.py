"""The service: a JSON API over the store, behind bearer tokens.

``proctor.server.tokens`` needs only the store; ``proctor.server.app`` (``create_app``)
needs the ``server`` extra (FastAPI): ``pip install 'proctor[server]'``.
"""
