import sys

from lslo.cli.main import main

sys.exit(main())
