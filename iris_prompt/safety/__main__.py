"""`python -m iris_prompt.safety`: what `make safety-case` runs."""

import sys

from iris_prompt.safety.case import main

sys.exit(main())
