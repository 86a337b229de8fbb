"""The command line: ``python -m lslo`` (``main``), the library's demo (``demo``), and settings models as
command-line flags (``flags``, shared with ``python -m training`` and ``python -m server``)."""
