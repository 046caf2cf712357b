"""
Fetch a URL and tell `recovery run` whether, and when, to try again.

    recovery run --retry-on-exit 75 -- python examples/fetch.py URL

Exit statuses:

- 0: the server answered 200; the body is printed on stdout;
- 75 (EX_TEMPFAIL): the failure is temporary: the server answered 503 or
  429, or could not be reached. When the answer carried a `Retry-After`
  header and `recovery run` set `RECOVERY_RETRY_AFTER_FILE`, the header's
  value is written there as `Retry-After: VALUE`, so the next attempt waits
  as long as the server asked;
- 1: any other failure (another HTTP status, a malformed URL), which trying
  again will not cure.
"""

from __future__ import annotations

import os
import sys
import urllib.error
import urllib.request
from collections.abc import Sequence

__all__ = ["EX_TEMPFAIL", "main"]

EX_TEMPFAIL = 75

# Statuses that mean "not now" rather than "never".
_TEMPORARY = frozenset({429, 503})


def _pass_on_retry_after(value: str | None) -> None:
    path = os.environ.get("RECOVERY_RETRY_AFTER_FILE")
    if value is None or not path:
        return
    with open(path, "w", encoding="utf-8") as file:
        file.write(f"Retry-After: {value.strip()}\n")


def main(argv: Sequence[str] | None = None) -> int:
    """
    Fetch the URL given as the only argument; return the exit status.
    """
    args = sys.argv[1:] if argv is None else list(argv)
    if len(args) != 1:
        print("usage: fetch.py URL", file=sys.stderr)
        return 2

    url = args[0]
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            body: bytes = response.read()
    except urllib.error.HTTPError as exc:
        if exc.code not in _TEMPORARY:
            print(f"fetch: {url} answered {exc.code} {exc.reason}", file=sys.stderr)
            return 1
        hint = exc.headers.get("Retry-After")
        _pass_on_retry_after(hint)
        after = "" if hint is None else f"; it asks to retry after {hint}"
        print(f"fetch: {url} answered {exc.code} {exc.reason}{after}", file=sys.stderr)
        return EX_TEMPFAIL
    except (urllib.error.URLError, TimeoutError, ConnectionError) as exc:
        reason = getattr(exc, "reason", exc)
        print(f"fetch: {url} could not be reached: {reason}", file=sys.stderr)
        return EX_TEMPFAIL
    except ValueError as exc:
        print(f"fetch: {exc}", file=sys.stderr)
        return 1

    sys.stdout.buffer.write(body)
    sys.stdout.flush()

    return 0


if __name__ == "__main__":
    sys.exit(main())
