"""
The discovery package imports only the standard library until a backend is used.
"""

from __future__ import annotations

import subprocess
import sys


def test_importing_discovery_and_its_command_loads_no_third_party_module() -> None:
    code = (
        "import sys, recovery.discovery, recovery.cli.services\n"
        "print(sorted(m for m in ('redis', 'rich') if m in sys.modules))\n"
    )

    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )

    assert result.stdout.strip() == "[]"
