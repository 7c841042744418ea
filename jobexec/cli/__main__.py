"""`python -m jobexec.cli`, the same as the `jobexec` command."""

import sys

from jobexec.cli.main import main

sys.exit(main())
