"""
Allow `python -m recovery.cli`.
"""

import sys

from . import main

sys.exit(main())
