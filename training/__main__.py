import importlib.util
import sys

# The training commands' own dependencies are an extra of the package (the service's image leaves them out).
missing = [name for name in ("yaml", "tqdm", "matplotlib", "scipy") if importlib.util.find_spec(name) is None]
if missing:
    sys.exit(f"python -m training needs {', '.join(missing)}: pip install 'lslo-mt[training]'")

from training.cli import main  # noqa: E402 (after the check above)

sys.exit(main())
