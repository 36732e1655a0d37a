"""`python -m bot` is the `gwi` command."""

import sys

from bot.cli import main

sys.exit(main())
