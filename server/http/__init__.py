"""The HTTP layer: the FastAPI app (``app``), its routes, request and response schemas, authentication, error
handlers, the request-size limit and the web page (``static/``). It calls the runtime (``server.runtime``);
the runtime never imports it."""
