import sys

from lslo.cli import main

sys.exit(main())
