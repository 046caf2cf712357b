"""
`recovery run`: run a command, and run it again while it fails.

Each attempt starts the command afresh (no shell), with its standard input,
output and error inherited, so its output streams through live. The retries
are driven by `recovery.policies.retry.Retry`: an attempt that ends with a
retryable exit status raises `CommandFailedError`, which carries the status
and, when the command left one, the server's `Retry-After` hint.

SIGINT and SIGTERM stop everything: they are passed on to the running
command, no further attempt starts, a wait between attempts ends at once,
and `recovery run` exits with 128 + the signal's number.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import importlib
import logging
import math
import os
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from types import FrameType
from typing import Protocol

from ..errors import CircuitOpenError, ConfigurationError, RecoveryError
from ..events import Event
from ..policies.backoff import Backoff, Jitter, constant, exponential, linear
from ..policies.breaker_events import BreakerClosed
from ..policies.hints import hint_seconds
from ..policies.retry import Retry
from ..policies.retry_events import GaveUp, Recovered, RetryScheduled

__all__ = [
    "ATTEMPT_ENV",
    "EX_TEMPFAIL",
    "RETRY_AFTER_ENV",
    "CommandFailedError",
    "add_parser",
    "exit_status",
    "parse_exit_codes",
]

logger = logging.getLogger(__name__)

RETRY_AFTER_ENV = "RECOVERY_RETRY_AFTER_FILE"
"""The environment variable naming the file a command may leave a hint in."""

ATTEMPT_ENV = "RECOVERY_ATTEMPT"
"""The environment variable holding the attempt's number, from 1."""

EX_TEMPFAIL = 75
"""The exit status when a circuit breaker is open (sysexits' EX_TEMPFAIL)."""

# The statuses timeout(1) and POSIX shells use.
_TIMED_OUT = 124
_CANNOT_EXECUTE = 126
_NOT_FOUND = 127

_MAX_STATUS = 255
_FORWARDED_SIGNALS = (signal.SIGINT, signal.SIGTERM)
# A hint file larger than this is not a hint; read no further.
_HINT_FILE_LIMIT = 4096

_EPILOG = f"""\
exit status:
  the last attempt's exit status; 124 if --timeout or --deadline ended it; 128+N if
  signal N killed it; 130 or 143 if recovery itself got SIGINT or SIGTERM
  (passed on to the command, and no further attempt starts); 75 if the
  --breaker circuit is open; 126 or 127 if the command cannot be started;
  2 for bad options.

server hints:
  Each attempt gets a fresh, empty file named by ${RETRY_AFTER_ENV}.
  A command that knows when to try again writes a line to it:
      Retry-After: SECONDS      or      Retry-After: HTTP-DATE
  (a bare value on its own line also works). The next wait is then that
  long instead of the backoff's delay, at most --max-hint seconds, and
  never past --deadline. ${ATTEMPT_ENV} holds the attempt number (1, 2, ...).

example:
  recovery run --attempts 5 --initial 0.2 --max-delay 2 \\
      --retry-on-exit 75 -- python examples/fetch.py http://127.0.0.1:8080/
"""


class CommandFailedError(RecoveryError):
    """
    An attempt of the command ended with an exit status worth retrying.

    `status` is the exit status as a shell reports it; `retry_after` is the
    hint the command left (seconds or an HTTP-date, as text), or None.
    """

    def __init__(
        self, status: int, *, description: str, retry_after: str | None = None
    ) -> None:
        super().__init__(f"the command failed ({description})")
        self.status = status
        self.description = description
        self.retry_after = retry_after


class _Interrupted(BaseException):
    """
    A signal told `recovery run` to stop.

    A `BaseException`, like `KeyboardInterrupt`, so that neither the retry
    policy nor a breaker can mistake it for a failure of the command.
    """

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


# -- parsing options --------------------------------------------------------


def parse_exit_codes(text: str) -> frozenset[int]:
    """
    Return the exit statuses a list such as ``"1,75,100-110"`` names.

    Statuses run from 1 to 255; a range ``A-B`` includes both ends.
    Raises `argparse.ArgumentTypeError` naming the bad item.
    """
    codes: set[int] = set()
    for item in text.split(","):
        low_text, dash, high_text = item.strip().partition("-")
        try:
            low = int(low_text)
            high = int(high_text) if dash else low
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"{item.strip()!r} is not an exit status or a range A-B of them; "
                f"give numbers from 1 to {_MAX_STATUS}, e.g. 1,75,100-110"
            ) from None
        if not 1 <= low <= high <= _MAX_STATUS:
            raise argparse.ArgumentTypeError(
                f"{item.strip()!r} is out of range: exit statuses run from 1 to "
                f"{_MAX_STATUS}, and a range A-B needs A <= B"
            )
        codes.update(range(low, high + 1))

    return frozenset(codes)


def _number(minimum: float, *, strict: bool = False) -> Callable[[str], float]:
    bound = f"> {minimum:g}" if strict else f">= {minimum:g}"

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            value = math.nan
        too_small = value <= minimum if strict else value < minimum
        if math.isnan(value) or math.isinf(value) or too_small:
            raise argparse.ArgumentTypeError(
                f"must be a finite number of seconds {bound}, got {text!r}"
            )
        return value

    parse.__name__ = "seconds"
    return parse


def _attempts(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be an integer >= 1, got {text!r}")

    return value


def _breaker_name(text: str) -> str:
    # An unset shell variable gives an empty name; running unguarded then
    # would quietly drop the protection the caller asked for.
    if not text.strip() or not text.isprintable():
        raise argparse.ArgumentTypeError(
            f"must be a non-empty name of printable characters, got {text!r}"
        )

    return text


def _multiplier(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not 1 <= value < math.inf:
        raise argparse.ArgumentTypeError(f"must be a finite number >= 1, got {text!r}")

    return value


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """
    Register the `run` sub-command.
    """
    parser = subparsers.add_parser(
        "run",
        help="run a command, retrying it while it fails",
        description="Run COMMAND; while it fails, wait and run it again. "
        "Its output streams through unchanged; recovery reports each failed "
        "attempt and the wait before the next on stderr.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        usage="%(prog)s [options] -- COMMAND [ARGS...]",
    )
    _add_retry_options(parser)
    _add_backoff_options(parser)
    _add_breaker_options(parser)
    parser.add_argument(
        "command",
        nargs=argparse.REMAINDER,
        metavar="-- COMMAND [ARGS...]",
        help="the command to run, after --; it is run directly, not by a shell",
    )
    parser.set_defaults(handler=lambda args: _handle(args, parser))


def _add_retry_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("when to retry")
    group.add_argument(
        "--attempts",
        type=_attempts,
        default=3,
        metavar="N",
        help="run the command at most N times in all, N >= 1 (default: 3)",
    )
    group.add_argument(
        "--deadline",
        type=_number(0, strict=True),
        metavar="S",
        help="end the whole run S seconds after the first attempt started: "
        "no attempt starts and no wait begins that would end later, and an "
        "attempt still running then is ended as --timeout does, with exit "
        "status 124 (default: no deadline)",
    )
    group.add_argument(
        "--retry-on-exit",
        type=parse_exit_codes,
        metavar="CODES",
        help="retry only these exit statuses: a comma list of statuses and "
        "ranges from 1 to 255, e.g. 1,75,100-110; any other status is final "
        "at once (default: retry every non-zero status)",
    )
    group.add_argument(
        "--timeout",
        type=_number(0, strict=True),
        metavar="S",
        help="end an attempt that runs longer than S seconds, as timeout(1) "
        "does: SIGTERM, then SIGKILL after --kill-after; such an attempt "
        "counts as exit status 124 (default: no limit)",
    )
    group.add_argument(
        "--kill-after",
        type=_number(0),
        default=5.0,
        metavar="S",
        help="after --timeout sent SIGTERM, wait S seconds before SIGKILL (default: 5)",
    )


def _add_backoff_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("how long to wait between attempts")
    group.add_argument(
        "--backoff",
        choices=("constant", "linear", "exponential"),
        default="exponential",
        help="constant: --initial every time; linear: --initial, then "
        "--increment more each time; exponential: --initial, multiplied by "
        "--multiplier each time (default: exponential)",
    )
    group.add_argument(
        "--initial",
        type=_number(0),
        default=0.5,
        metavar="S",
        help="the first wait, in seconds (default: 0.5)",
    )
    group.add_argument(
        "--increment",
        type=_number(0),
        metavar="S",
        help="linear backoff: seconds added to each wait (default: --initial)",
    )
    group.add_argument(
        "--multiplier",
        type=_multiplier,
        default=2.0,
        metavar="X",
        help="exponential backoff: the factor between waits, >= 1 (default: 2)",
    )
    group.add_argument(
        "--max-delay",
        type=_number(0),
        default=30.0,
        metavar="S",
        help="the longest wait, in seconds; not used by constant backoff (default: 30)",
    )
    group.add_argument(
        "--jitter",
        choices=[kind.value for kind in Jitter],
        help="how each wait is randomised so that many clients do not retry "
        "in step (default: none for constant backoff, which waits exactly "
        "--initial; full, uniform between 0 and the wait, for the others)",
    )
    group.add_argument(
        "--max-hint",
        type=_number(0),
        metavar="S",
        help="the longest wait a Retry-After hint from the command may ask "
        "for; longer hints are cut to it (default: --max-delay)",
    )


def _add_breaker_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("circuit breaker, remembered between runs")
    group.add_argument(
        "--breaker",
        type=_breaker_name,
        metavar="NAME",
        help="guard the run with the circuit breaker NAME: while it is open "
        "the command is not run at all and the exit status is 75; a run "
        "whose attempts all failed counts as one failure, a successful run "
        "as a success",
    )
    group.add_argument(
        "--state",
        metavar="PATH",
        help="the SQLite file that keeps breaker state between runs "
        "(default: $XDG_STATE_HOME/recovery/state.db, or "
        "~/.local/state/recovery/state.db)",
    )
    group.add_argument(
        "--redis",
        metavar="URL",
        help="keep breaker state in Redis instead, shared between hosts",
    )


# -- running ----------------------------------------------------------------


def exit_status(returncode: int) -> int:
    """
    Return the exit status a shell reports for a `Popen.returncode`.

    A negative return code means the child was killed by that signal, which
    a shell reports as 128 + the signal's number.
    """
    return 128 - returncode if returncode < 0 else returncode


def _describe_exit(returncode: int) -> str:
    if returncode >= 0:
        return f"exit status {returncode}"

    try:
        name = signal.Signals(-returncode).name
    except ValueError:
        name = f"signal {-returncode}"
    return f"killed by {name}, exit status {exit_status(returncode)}"


@dataclasses.dataclass(frozen=True, slots=True)
class _Outcome:
    status: int
    description: str
    retry_after: str | None = None
    started: bool = True


class _Stopper:
    """
    Catches SIGINT and SIGTERM while the command runs and passes them on.

    After a signal, `stop` is set, the running command (if any) got the same
    signal, and `check()` raises `_Interrupted`.
    """

    def __init__(self) -> None:
        self.stop = threading.Event()
        self.signum: int | None = None
        self._child: subprocess.Popen[bytes] | None = None
        self._child_told = False
        self._previous: dict[int, object] = {}

    def __enter__(self) -> _Stopper:
        if threading.current_thread() is not threading.main_thread():
            # Only the main thread may install handlers; run called from
            # another thread leaves signals to whoever owns the process.
            return self
        for signum in _FORWARDED_SIGNALS:
            # A signal the caller chose to ignore (nohup, a background job)
            # stays ignored, for us as for the command.
            if signal.getsignal(signum) is not signal.SIG_IGN:
                self._previous[signum] = signal.signal(signum, self._on_signal)
        return self

    def __exit__(self, *exc_info: object) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)  # type: ignore[arg-type]

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        if self.signum is None:
            self.signum = signum
        child = self._child
        if child is not None:
            self._child_told = True
            child.send_signal(signum)
        # Event.set takes the event's lock, which the main thread (where this
        # handler runs) may hold at this very moment inside Event.wait: set
        # it from another thread so the handler can never deadlock.
        threading.Thread(target=self.stop.set, daemon=True).start()

    def check(self) -> None:
        """
        Raise `_Interrupted` if a stopping signal has arrived.
        """
        if self.signum is not None:
            raise _Interrupted(self.signum)

    def watch(self, child: subprocess.Popen[bytes] | None) -> None:
        """
        Make *child* the process that signals are passed on to.
        """
        self._child_told = False
        self._child = child
        # A signal that arrived while the child was being started found no
        # child to pass it on to; pass it on now.
        if child is not None and self.signum is not None and not self._child_told:
            self._child_told = True
            child.send_signal(self.signum)


class _StoppableClock:
    """
    The real clock, whose sleep ends early, and raises, once a signal stops us.
    """

    def __init__(self, stopper: _Stopper) -> None:
        self._stopper = stopper

    def now(self) -> float:
        return time.monotonic()

    def time(self) -> float:
        return time.time()

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            self._stopper.stop.wait(seconds)
        self._stopper.check()

    async def asleep(self, seconds: float) -> None:
        if seconds > 0:
            await asyncio.sleep(seconds)
        self._stopper.check()


@dataclasses.dataclass(slots=True)
class _Command:
    """
    Runs the command once per call, as `Retry` asks.
    """

    argv: Sequence[str]
    retry_on: frozenset[int] | None
    timeout: float | None
    deadline: float | None
    kill_after: float
    stopper: _Stopper
    hint_dir: str
    attempts: int = 0
    last: _Outcome | None = None
    started: float | None = None

    def __call__(self) -> int:
        self.stopper.check()
        self.attempts += 1
        if self.started is None:
            self.started = time.monotonic()
        outcome = self._run_once()
        self.last = outcome
        self.stopper.check()

        if outcome.status == 0:
            return 0
        if not self._is_retryable(outcome):
            if outcome.started:
                logger.warning(
                    "attempt %d failed (%s), a status --retry-on-exit does not "
                    "list; not retrying",
                    self.attempts,
                    outcome.description,
                )
            return outcome.status

        raise CommandFailedError(
            outcome.status,
            description=outcome.description,
            retry_after=outcome.retry_after,
        )

    def _is_retryable(self, outcome: _Outcome) -> bool:
        if not outcome.started:
            # Another try will not find the program either.
            return False

        return self.retry_on is None or outcome.status in self.retry_on

    def _run_once(self) -> _Outcome:
        # A fresh, empty hint file per attempt: a hint never outlives the
        # attempt that gave it.
        fd, hint_path = tempfile.mkstemp(prefix="retry-after-", dir=self.hint_dir)
        os.close(fd)
        env = dict(os.environ)
        env[RETRY_AFTER_ENV] = hint_path
        env[ATTEMPT_ENV] = str(self.attempts)

        try:
            try:
                child = subprocess.Popen(self.argv, env=env)
            except OSError as exc:
                return _not_started(self.argv[0], exc)
            limit, by_deadline = self._time_limit(time.monotonic())
            try:
                self.stopper.watch(child)
                returncode, timed_out = self._wait(child, limit)
            except BaseException:
                # Whatever went wrong here, leave no command running behind.
                child.kill()
                child.wait()
                raise
            finally:
                self.stopper.watch(None)
            # A hint only matters before another attempt: one left by a
            # successful attempt is neither read nor reported.
            failed = timed_out or returncode != 0
            hint = _read_hint(hint_path) if failed else None
        finally:
            with contextlib.suppress(OSError):
                os.unlink(hint_path)

        if timed_out:
            reason = (
                "stopped at the deadline"
                if by_deadline
                else f"timed out after {self.timeout:g} s"
            )
            description = f"{reason}, exit status 124"
            return _Outcome(_TIMED_OUT, description, hint)
        return _Outcome(exit_status(returncode), _describe_exit(returncode), hint)

    def _time_limit(self, now: float) -> tuple[float | None, bool]:
        """
        Return how long an attempt starting at *now* may run, and whether
        the deadline rather than --timeout sets that limit.
        """
        if self.deadline is None or self.started is None:
            return self.timeout, False

        left = max(0.0, self.started + self.deadline - now)
        if self.timeout is not None and self.timeout <= left:
            return self.timeout, False
        return left, True

    def _wait(
        self, child: subprocess.Popen[bytes], limit: float | None
    ) -> tuple[int, bool]:
        try:
            return child.wait(timeout=limit), False
        except subprocess.TimeoutExpired:
            pass

        child.terminate()
        try:
            return child.wait(timeout=self.kill_after), True
        except subprocess.TimeoutExpired:
            child.kill()
        return child.wait(), True


def _not_started(program: str, exc: OSError) -> _Outcome:
    status = _NOT_FOUND if isinstance(exc, FileNotFoundError) else _CANNOT_EXECUTE
    reason = exc.strerror or str(exc)
    logger.error("cannot run %r: %s", program, reason)

    return _Outcome(status, f"cannot run {program!r}: {reason}", started=False)


def _read_hint(path: str) -> str | None:
    """
    Return the Retry-After value the command left in *path*, if any.

    The last non-empty line wins; it may read ``Retry-After: VALUE`` or hold
    the bare VALUE. A value that is neither seconds nor a future HTTP-date
    is reported and ignored.
    """
    try:
        with open(path, encoding="utf-8", errors="replace") as file:
            text = file.read(_HINT_FILE_LIMIT)
    except OSError:
        return None

    value = None
    for raw in text.splitlines():
        line = raw.strip()
        name, colon, rest = line.partition(":")
        if colon and name.strip().lower() == "retry-after":
            line = rest.strip()
        if line:
            value = line
    if value is None:
        return None

    if hint_seconds(value, time.time()) is None:
        logger.warning(
            "ignoring the Retry-After hint %r: it is neither seconds >= 0 nor "
            "a future HTTP-date",
            value,
        )
        return None
    return value


# -- the handler ------------------------------------------------------------


def _handle(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    command = _command_of(args, parser)
    breaker = _open_breaker(args, parser)

    with (
        _Stopper() as stopper,
        tempfile.TemporaryDirectory(prefix="recovery-run-") as hint_dir,
    ):
        runner = _Command(
            command,
            args.retry_on_exit,
            args.timeout,
            args.deadline,
            args.kill_after,
            stopper,
            hint_dir,
        )
        try:
            policy = _policy_for(args, runner, stopper)
        except ConfigurationError as exc:
            parser.error(str(exc))

        try:
            with _quiet_retry_events():
                return _run(policy, runner, breaker, args.breaker)
        except _Interrupted as exc:
            name = signal.Signals(exc.signum).name
            logger.warning("stopped by %s; not retrying", name)
            return 128 + exc.signum
        finally:
            if breaker is not None:
                breaker.store.close()


def _command_of(args: argparse.Namespace, parser: argparse.ArgumentParser) -> list[str]:
    """
    Return the command to run, or exit 2 when the options do not fit.
    """
    command = list(args.command)
    if command[:1] == ["--"]:
        del command[0]
    if not command:
        parser.error(
            "no command to run: give it after --, e.g. "
            "recovery run --attempts 3 -- curl -fsS https://example.com/"
        )
    for option, value in (("--state", args.state), ("--redis", args.redis)):
        if value and not args.breaker:
            parser.error(f"{option} keeps breaker state, so it needs --breaker NAME")

    return command


def _policy_for(args: argparse.Namespace, runner: _Command, stopper: _Stopper) -> Retry:
    return Retry(
        on=CommandFailedError,
        attempts=args.attempts,
        deadline=args.deadline,
        backoff=_build_backoff(args),
        max_hint=_max_hint(args),
        clock=_StoppableClock(stopper),
        name="run",
        listeners=[_Reporter(runner, args.attempts, _max_hint(args))],
    )


def _max_hint(args: argparse.Namespace) -> float:
    return float(args.max_delay if args.max_hint is None else args.max_hint)


def _build_backoff(args: argparse.Namespace) -> Backoff:
    if args.backoff == "constant":
        # Constant means the same wait every time, unless asked otherwise.
        return constant(args.initial, jitter=args.jitter or Jitter.NONE.value)
    jitter = args.jitter or Jitter.FULL.value
    if args.backoff == "linear":
        increment = args.initial if args.increment is None else args.increment
        return linear(args.initial, increment, args.max_delay, jitter=jitter)

    return exponential(args.initial, args.multiplier, args.max_delay, jitter=jitter)


def _open_breaker(
    args: argparse.Namespace, parser: argparse.ArgumentParser
) -> _BreakerLike | None:
    """
    Return the breaker named by --breaker, or None; exit 2 if it cannot be had.
    """
    if args.breaker is None:
        return None

    # Imported here: the breaker machinery is only loaded when asked for.
    breakers = importlib.import_module(f"{__package__}._breakers")
    try:
        breaker: _BreakerLike = breakers.open_cli_breaker(
            args.breaker,
            state=args.state,
            redis=args.redis,
            listeners=[_announce_close],
        )
    except (ConfigurationError, ImportError) as exc:
        parser.error(f"--breaker {args.breaker}: {exc}")

    return breaker


def _announce_close(event: Event) -> None:
    # The breaker logs its opening and half-opening as warnings, but its
    # closing only at INFO; the user of a command line wants all three.
    if isinstance(event, BreakerClosed):
        logger.warning("circuit %r closed again: %s", event.source, event.reason)


def _run(
    policy: Retry, runner: _Command, breaker: _BreakerLike | None, name: str | None
) -> int:
    """
    Run the retried command, inside the breaker when there is one.
    """
    try:
        if breaker is None:
            return policy.call(runner)
        # A run whose retries were exhausted leaves as CommandFailedError, so
        # the breaker counts it as a failure; a final status that is not
        # retryable returns normally: the command answered, as a success.
        return breaker.call(policy.call, runner)
    except CommandFailedError as exc:
        return exc.status
    except CircuitOpenError as exc:
        when = (
            ""
            if exc.retry_after is None
            else f"; next trial in {exc.retry_after:.1f} s"
        )
        logger.warning("circuit %r is open; not running the command%s", name, when)
        return EX_TEMPFAIL


class _Closable(Protocol):
    def close(self) -> None: ...


class _BreakerLike(Protocol):
    @property
    def store(self) -> _Closable: ...

    def call(self, fn: Callable[[_Command], int], arg: _Command, /) -> int: ...


class _Reporter:
    """
    Writes one line per failed attempt, saying what happens next.
    """

    def __init__(self, runner: _Command, attempts: int, max_hint: float) -> None:
        self._runner = runner
        self._attempts = attempts
        self._max_hint = max_hint

    def __call__(self, event: Event) -> None:
        last = self._runner.last
        if last is None:
            return
        if isinstance(event, RetryScheduled):
            asked = self._asked(last) if event.hinted else ""
            logger.warning(
                "attempt %d of %d failed (%s); retrying in %.2f s%s",
                event.attempt,
                self._attempts,
                last.description,
                event.delay,
                asked,
            )
        elif isinstance(event, GaveUp):
            logger.warning(
                "attempt %d of %d failed (%s); giving up: %s",
                event.attempts,
                self._attempts,
                last.description,
                event.reason,
            )
        elif isinstance(event, Recovered):
            logger.info("attempt %d of %d succeeded", event.attempts, self._attempts)

    def _asked(self, last: _Outcome) -> str:
        """
        Return how the wait followed the command's hint, for the log line.
        """
        wanted = (
            None
            if last.retry_after is None
            else hint_seconds(last.retry_after, time.time())
        )
        if wanted is not None and wanted > self._max_hint:
            return (
                f" as the command asked, cut from {wanted:.2f} s to "
                f"--max-hint {self._max_hint:g}"
            )
        return " as the command asked"


@contextlib.contextmanager
def _quiet_retry_events() -> Iterator[None]:
    """
    Keep the policy's own retry lines out of the log, unless debugging.

    `_Reporter` says the same in terms of exit statuses; at DEBUG both show.
    """
    loggers = {RetryScheduled.logger, GaveUp.logger, Recovered.logger}
    saved = {log: log.level for log in loggers}
    for log in loggers:
        if not log.isEnabledFor(logging.DEBUG):
            log.setLevel(logging.ERROR)
    try:
        yield
    finally:
        for log, level in saved.items():
            log.setLevel(level)
