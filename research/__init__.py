"""The paper's experiments in miniature: a runner over config files, the archive of finished runs, and the report.

Research scaffolding, not part of the installed product: run it from the repository root
(``python -m research.replicate``). It may import ``training`` and ``lslo``; they never import it.
"""
