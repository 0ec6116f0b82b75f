"""``python -m codesign``: the ``codesign`` command line."""

import sys

from codesign.experiments.cli.main import main

sys.exit(main())
