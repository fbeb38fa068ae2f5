import sys

from camabc_core.cli import main

sys.exit(main())
