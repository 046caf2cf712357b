"""
Adapters that apply recovery strategies to other libraries' clients.

Each adapter lives in its own module and imports its library there, so
``import recovery`` never needs them: `recovery.integrations.httpx` needs
the ``httpx`` extra (``pip install 'recovery[httpx]'``).
"""

__all__: list[str] = []
