"""The engine core in its own process: the model, the adapters and the decoding loop, fed token ids by the HTTP
front end(s) over ZeroMQ (``server.core.messages`` is the protocol, ``server.core.process`` the core's loop,
``server.core.client`` the front end's side)."""
