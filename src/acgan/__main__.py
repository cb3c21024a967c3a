"""`python -m acgan` runs the command line."""

import sys

from acgan.cli import main

sys.exit(main())
