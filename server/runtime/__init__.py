"""The service's runtime behind the HTTP layer: its state (``service``), the front end's text work
(``translator``, ``front_end``, ``decoding``), adapter changes (``adapter_manager``, ``bundle_sync``), stored
glossaries, languages, metrics and rate limits. The engine core it feeds runs in a process of its own
(``server.core``)."""
