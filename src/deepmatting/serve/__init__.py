"""A small local web app for matting: upload or draw, predict, look at the result, download it.

Two layers: :mod:`deepmatting.serve.app` is the app without HTTP (:class:`MattingApp`: request decoding,
examples, predictions, one answer per request), :mod:`deepmatting.serve.server` the thin standard-library
HTTP server around it (limits, timeouts, connection cap, Host/Origin policy). The page is
``deepmatting/web/index.html`` with plain JavaScript; the API is described in :mod:`deepmatting.serve.app`
and in the README.
"""

from .app import MAX_PIXELS, MattingApp, Response, UploadError, scribbles_to_trimap
from .server import MAX_CONNECTIONS, TIMEOUT, MattingServer, make_server, request_refusal, serve

__all__ = ["MAX_CONNECTIONS", "MAX_PIXELS", "TIMEOUT", "MattingApp", "MattingServer", "Response",
           "UploadError", "make_server", "request_refusal", "scribbles_to_trimap", "serve"]
