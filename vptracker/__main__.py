import sys

from vptracker.cli import main

sys.exit(main())
