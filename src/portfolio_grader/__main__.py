"""`python -m portfolio_grader`: the same command as `portfolio-grader`."""

import sys

from .cli import main

sys.exit(main())
