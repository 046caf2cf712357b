"""
Unit tests of `recovery run`: options, exit statuses, hints and signals.

The commands run here are tiny `sh -c` scripts with zero waits, so each test
stays well under a quarter of a second; the real service and the real waits
are in test_run_integration.py.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from recovery.cli import build_parser, main
from recovery.cli import run as run_module
from recovery.cli.run import (
    ATTEMPT_ENV,
    RETRY_AFTER_ENV,
    CommandFailedError,
    _Command,
    _describe_exit,
    _Interrupted,
    _read_hint,
    _StoppableClock,
    _Stopper,
    exit_status,
    parse_exit_codes,
)
from recovery.policies.backoff import constant, exponential, linear
from recovery.policies.breaker import CircuitBreaker
from recovery.testing import FakeClock

# Options that make every wait zero, so a test never sleeps.
NO_WAIT = ["--initial", "0", "--jitter", "none"]


def run_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == run_module.__name__]


# Built once: importing every sub-command is not what a test should time.
PARSER = build_parser()


def parse(*argv: str) -> argparse.Namespace:
    return PARSER.parse_args(["run", *argv])


class TestExitCodes:
    def test_list_and_ranges(self) -> None:
        """
        Single statuses and inclusive ranges combine into one set.
        """
        assert {1, 75, *range(100, 111)} == parse_exit_codes("1,75,100-110")

    def test_whitespace_and_repeats(self) -> None:
        assert {3, 4, 5} == parse_exit_codes(" 3 , 4-5,4 ")

    def test_whole_range(self) -> None:
        assert frozenset(range(1, 256)) == parse_exit_codes("1-255")

    @pytest.mark.parametrize(
        ("text", "says"),
        [
            ("0", "out of range"),
            ("256", "out of range"),
            ("5-3", "A <= B"),
            ("x", "is not an exit status"),
            ("1,,2", "is not an exit status"),
            ("", "is not an exit status"),
            ("-3", "is not an exit status"),
        ],
    )
    def test_bad_items_are_named(self, text: str, says: str) -> None:
        with pytest.raises(argparse.ArgumentTypeError, match=says):
            parse_exit_codes(text)


class TestExitStatus:
    @pytest.mark.parametrize(
        ("returncode", "status"),
        [(0, 0), (1, 1), (75, 75), (255, 255), (-2, 130), (-9, 137), (-15, 143)],
    )
    def test_shell_convention(self, returncode: int, status: int) -> None:
        """
        A child killed by signal N reports 128 + N, as shells do.
        """
        assert status == exit_status(returncode)

    def test_descriptions(self) -> None:
        assert _describe_exit(75) == "exit status 75"
        assert _describe_exit(-9) == "killed by SIGKILL, exit status 137"


class TestOptions:
    def test_defaults(self) -> None:
        args = parse("--", "true")

        assert args.attempts == 3
        assert args.deadline is None
        assert args.backoff == "exponential"
        assert args.initial == 0.5
        assert args.multiplier == 2.0
        assert args.max_delay == 30.0
        assert args.jitter is None  # chosen by --backoff
        assert args.retry_on_exit is None
        assert args.timeout is None
        assert args.kill_after == 5.0
        assert args.breaker is None
        assert args.command == ["--", "true"]

    def test_command_keeps_its_own_options(self) -> None:
        """
        Everything after -- belongs to the command, even recovery's options.
        """
        args = parse("--attempts", "2", "--", "cmd", "--attempts", "9", "-x")

        assert args.attempts == 2
        assert args.command == ["--", "cmd", "--attempts", "9", "-x"]

    @pytest.mark.parametrize(
        ("argv", "expected"),
        [
            (["--backoff", "constant", "--initial", "2"], constant(2.0, jitter="none")),
            (
                ["--backoff", "constant", "--initial", "2", "--jitter", "full"],
                constant(2.0, jitter="full"),
            ),
            ([], exponential(0.5, 2.0, 30.0, jitter="full")),
            (
                ["--backoff", "linear", "--initial", "1", "--max-delay", "9"],
                linear(1.0, 1.0, 9.0, jitter="full"),
            ),
            (
                ["--backoff", "linear", "--initial", "1", "--increment", "3"],
                linear(1.0, 3.0, 30.0, jitter="full"),
            ),
            (
                ["--initial", "0.2", "--multiplier", "3", "--max-delay", "2"],
                exponential(0.2, 3.0, 2.0, jitter="full"),
            ),
            (["--jitter", "none"], exponential(0.5, 2.0, 30.0, jitter="none")),
        ],
    )
    def test_backoff_built_from_options(
        self, argv: list[str], expected: object
    ) -> None:
        assert expected == run_module._build_backoff(parse(*argv, "--", "true"))

    @pytest.mark.parametrize(
        ("argv", "named", "accepted"),
        [
            (["--attempts", "0"], "--attempts", "integer >= 1"),
            (["--attempts", "-2"], "--attempts", "integer >= 1"),
            (["--attempts", "two"], "--attempts", "integer >= 1"),
            (["--deadline", "0"], "--deadline", "> 0"),
            (["--deadline", "nan"], "--deadline", "> 0"),
            (["--timeout", "-1"], "--timeout", "> 0"),
            (["--kill-after", "-1"], "--kill-after", ">= 0"),
            (["--initial", "inf"], "--initial", ">= 0"),
            (["--max-delay", "-0.5"], "--max-delay", ">= 0"),
            (["--multiplier", "0.5"], "--multiplier", ">= 1"),
            (["--backoff", "fibonacci"], "--backoff", "'constant', 'linear'"),
            (["--jitter", "some"], "--jitter", "'decorrelated'"),
            (["--retry-on-exit", "0,1"], "--retry-on-exit", "from 1 to 255"),
            (["--breaker", ""], "--breaker", "non-empty name"),
            (["--breaker", "  "], "--breaker", "non-empty name"),
            (["--breaker", "a\nb"], "--breaker", "printable characters"),
        ],
    )
    def test_bad_option_exits_2_naming_it(
        self,
        argv: list[str],
        named: str,
        accepted: str,
        capsys: pytest.CaptureFixture[str],
    ) -> None:
        with pytest.raises(SystemExit) as exit_info:
            main(["run", *argv, "--", "true"])

        assert exit_info.value.code == 2
        err = capsys.readouterr().err
        assert f"argument {named}:" in err
        assert accepted in err

    @pytest.mark.parametrize(
        ("argv", "says"),
        [
            ([], "no command to run"),
            (["--"], "no command to run"),
            (["--redis", "redis://x", "--", "true"], "--redis"),
            (["--state", "s.db", "--", "true"], "--state"),
        ],
    )
    def test_bad_combination_exits_2(
        self, argv: list[str], says: str, capsys: pytest.CaptureFixture[str]
    ) -> None:
        with pytest.raises(SystemExit) as exit_info:
            main(["run", *argv])

        assert exit_info.value.code == 2
        assert says in capsys.readouterr().err

    def test_unknown_option_is_reported_by_run(
        self, capsys: pytest.CaptureFixture[str]
    ) -> None:
        with pytest.raises(SystemExit) as exit_info:
            main(["run", "--bogus", "--", "true"])

        assert exit_info.value.code == 2
        err = capsys.readouterr().err
        assert "recovery run: error: unrecognized arguments: --bogus" in err

    def test_configuration_error_exits_2(
        self, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """
        A setting the backoff itself refuses is a usage error too.
        """

        def refuse(args: argparse.Namespace) -> object:
            return linear(-1.0, 0.0, 1.0)

        monkeypatch.setattr(run_module, "_build_backoff", refuse)

        with pytest.raises(SystemExit) as exit_info:
            main(["run", "--", "true"])

        assert exit_info.value.code == 2
        assert "initial must be a finite number >= 0, got -1.0" in (
            capsys.readouterr().err
        )


class TestRetrying:
    """
    Whole runs through `main`, with real (tiny) commands and no waiting.
    """

    def test_success_first_time(self, caplog: pytest.LogCaptureFixture) -> None:
        assert main(["run", *NO_WAIT, "--", "true"]) == 0
        assert run_lines(caplog) == []

    def test_retries_until_attempts_run_out(
        self, tmp_path: Path, caplog: pytest.LogCaptureFixture
    ) -> None:
        """
        The exit status is the last attempt's; every attempt is numbered.
        """
        log = tmp_path / "attempts"
        script = f'echo "${ATTEMPT_ENV}" >> {log}; exit 3'

        status = main(["run", "--attempts", "3", *NO_WAIT, "--", "sh", "-c", script])

        assert status == 3
        assert log.read_text() == "1\n2\n3\n"
        assert run_lines(caplog) == [
            "attempt 1 of 3 failed (exit status 3); retrying in 0.00 s",
            "attempt 2 of 3 failed (exit status 3); retrying in 0.00 s",
            "attempt 3 of 3 failed (exit status 3); giving up: "
            "attempt limit of 3 reached",
        ]

    def test_success_after_failures(self, tmp_path: Path) -> None:
        log = tmp_path / "attempts"
        script = f'echo x >> {log}; [ "${ATTEMPT_ENV}" -ge 3 ]'

        status = main(["run", "--attempts", "5", *NO_WAIT, "--", "sh", "-c", script])

        assert status == 0
        assert len(log.read_text().splitlines()) == 3

    def test_unlisted_status_is_final_at_once(
        self, tmp_path: Path, caplog: pytest.LogCaptureFixture
    ) -> None:
        log = tmp_path / "attempts"
        script = f"echo x >> {log}; exit 4"
        argv = ["--attempts", "5", "--retry-on-exit", "1-3,75", *NO_WAIT]

        status = main(["run", *argv, "--", "sh", "-c", script])

        assert status == 4
        assert len(log.read_text().splitlines()) == 1
        assert run_lines(caplog) == [
            "attempt 1 failed (exit status 4), a status --retry-on-exit does not "
            "list; not retrying"
        ]

    def test_listed_status_is_retried(self, tmp_path: Path) -> None:
        log = tmp_path / "attempts"
        script = f"echo x >> {log}; exit 75"
        argv = ["--attempts", "4", "--retry-on-exit", "75", *NO_WAIT]

        assert main(["run", *argv, "--", "sh", "-c", script]) == 75
        assert len(log.read_text().splitlines()) == 4

    def test_killed_by_signal(self, caplog: pytest.LogCaptureFixture) -> None:
        script = "kill -KILL $$"

        status = main(["run", "--attempts", "1", *NO_WAIT, "--", "sh", "-c", script])

        assert status == 137
        assert run_lines(caplog) == [
            "attempt 1 of 1 failed (killed by SIGKILL, exit status 137); giving "
            "up: attempt limit of 1 reached"
        ]

    def test_missing_program_is_not_retried(
        self, tmp_path: Path, caplog: pytest.LogCaptureFixture
    ) -> None:
        missing = str(tmp_path / "no-such-program")

        assert main(["run", "--attempts", "5", *NO_WAIT, "--", missing]) == 127
        assert [f"cannot run {missing!r}: No such file or directory"] == run_lines(
            caplog
        )

    def test_unrunnable_program_is_not_retried(self, tmp_path: Path) -> None:
        program = tmp_path / "not-executable"
        program.write_text("#!/bin/sh\n")

        assert main(["run", "--attempts", "5", *NO_WAIT, "--", str(program)]) == 126

    def test_deadline_stops_before_a_long_wait(
        self, caplog: pytest.LogCaptureFixture
    ) -> None:
        """
        A wait that would end past the deadline is not begun.
        """
        argv = ["--deadline", "1", "--initial", "5", "--jitter", "none"]

        assert main(["run", *argv, "--", "false"]) == 1
        assert run_lines(caplog) == [
            "attempt 1 of 3 failed (exit status 1); giving up: "
            "deadline of 1 s would be exceeded"
        ]

    def test_policy_lines_stay_quiet(self, caplog: pytest.LogCaptureFixture) -> None:
        """
        Only the run's own line per attempt is logged, not the policy's too.
        """
        caplog.set_level(logging.WARNING)

        main(["run", "--attempts", "2", *NO_WAIT, "--", "false"])

        assert len(caplog.records) == 2
        assert {run_module.__name__} == {r.name for r in caplog.records}


class TestTimeLimit:
    """
    How long one attempt may run, from --timeout and what --deadline leaves.
    """

    @staticmethod
    def command(timeout: float | None, deadline: float | None) -> _Command:
        return _Command(
            ["true"], None, timeout, deadline, 5.0, _Stopper(), "/tmp", started=100.0
        )

    @pytest.mark.parametrize(
        ("timeout", "deadline", "now", "limit"),
        [
            (None, None, 150.0, (None, False)),
            (2.0, None, 150.0, (2.0, False)),
            (None, 10.0, 104.0, (6.0, True)),
            (2.0, 10.0, 104.0, (2.0, False)),
            (8.0, 10.0, 104.0, (6.0, True)),
            (6.0, 10.0, 104.0, (6.0, False)),
            (None, 10.0, 111.0, (0.0, True)),
        ],
    )
    def test_limit(
        self,
        timeout: float | None,
        deadline: float | None,
        now: float,
        limit: tuple[float | None, bool],
    ) -> None:
        assert self.command(timeout, deadline)._time_limit(now) == limit


class TestServerHint:
    def test_hint_replaces_the_backoff_delay(
        self, caplog: pytest.LogCaptureFixture
    ) -> None:
        """
        A zero-second hint from the command beats a five-second backoff.
        """
        script = f'echo "Retry-After: 0" > "${RETRY_AFTER_ENV}"; exit 1'
        argv = ["--attempts", "2", "--initial", "5", "--jitter", "none"]

        assert main(["run", *argv, "--", "sh", "-c", script]) == 1
        assert run_lines(caplog)[0] == (
            "attempt 1 of 2 failed (exit status 1); retrying in 0.00 s as the "
            "command asked"
        )

    def test_long_hint_is_cut_to_max_hint(
        self, caplog: pytest.LogCaptureFixture
    ) -> None:
        script = f'echo 3600 > "${RETRY_AFTER_ENV}"; exit 1'
        argv = ["--attempts", "2", "--max-hint", "0", *NO_WAIT]

        assert main(["run", *argv, "--", "sh", "-c", script]) == 1
        assert run_lines(caplog)[0] == (
            "attempt 1 of 2 failed (exit status 1); retrying in 0.00 s as the "
            "command asked, cut from 3600.00 s to --max-hint 0"
        )

    def test_hint_within_max_hint_is_not_called_cut(
        self, caplog: pytest.LogCaptureFixture
    ) -> None:
        script = f'echo 0 > "${RETRY_AFTER_ENV}"; exit 1'
        argv = ["--attempts", "2", "--max-hint", "0", *NO_WAIT]

        assert main(["run", *argv, "--", "sh", "-c", script]) == 1
        assert run_lines(caplog)[0].endswith("retrying in 0.00 s as the command asked")

    def test_hint_of_a_successful_attempt_is_not_read(
        self, caplog: pytest.LogCaptureFixture
    ) -> None:
        """
        Only a failed attempt's hint matters, so a success's is not judged.
        """
        script = f'echo banana > "${RETRY_AFTER_ENV}"; exit 0'

        assert main(["run", *NO_WAIT, "--", "sh", "-c", script]) == 0
        assert run_lines(caplog) == []

    def test_hint_of_a_failed_attempt_is_judged(
        self, caplog: pytest.LogCaptureFixture
    ) -> None:
        script = f'echo banana > "${RETRY_AFTER_ENV}"; exit 1'

        assert main(["run", "--attempts", "1", *NO_WAIT, "--", "sh", "-c", script]) == 1
        assert run_lines(caplog)[0] == (
            "ignoring the Retry-After hint 'banana': it is neither seconds >= 0 "
            "nor a future HTTP-date"
        )

    def test_each_attempt_gets_a_fresh_file(self, tmp_path: Path) -> None:
        """
        The file is empty at the start of every attempt and gone afterwards.
        """
        log = tmp_path / "seen"
        script = (
            f'echo "$(wc -c < "${RETRY_AFTER_ENV}") ${RETRY_AFTER_ENV}" >> {log}; '
            f'echo 0 > "${RETRY_AFTER_ENV}"; exit 1'
        )

        main(["run", "--attempts", "3", *NO_WAIT, "--", "sh", "-c", script])

        seen = [line.split() for line in log.read_text().splitlines()]
        assert [size for size, _ in seen] == ["0", "0", "0"]
        paths = [path for _, path in seen]
        assert len(set(paths)) == 3
        assert not any(os.path.exists(path) for path in paths)

    @pytest.mark.parametrize(
        ("content", "value"),
        [
            ("", None),
            ("\n\n", None),
            ("Retry-After: 5\n", "5"),
            ("retry-after:0.25", "0.25"),
            ("7", "7"),
            ("Retry-After: 1\nRetry-After: 2\n", "2"),
            (
                "Retry-After: Fri, 31 Dec 9999 23:59:59 GMT",
                "Fri, 31 Dec 9999 23:59:59 GMT",
            ),
        ],
    )
    def test_reading_the_hint(
        self, tmp_path: Path, content: str, value: str | None
    ) -> None:
        path = tmp_path / "hint"
        path.write_text(content)

        assert value == _read_hint(str(path))

    @pytest.mark.parametrize(
        "content",
        ["Retry-After: soon", "-1", "Retry-After: Wed, 21 Oct 2015 07:28:00 GMT"],
    )
    def test_unusable_hint_is_reported_and_ignored(
        self, tmp_path: Path, content: str, caplog: pytest.LogCaptureFixture
    ) -> None:
        path = tmp_path / "hint"
        path.write_text(content)

        assert _read_hint(str(path)) is None
        assert len(run_lines(caplog)) == 1
        assert "ignoring the Retry-After hint" in run_lines(caplog)[0]

    def test_missing_file_is_no_hint(self, tmp_path: Path) -> None:
        assert _read_hint(str(tmp_path / "gone")) is None

    def test_error_carries_status_and_hint(self) -> None:
        error = CommandFailedError(75, description="exit status 75", retry_after="2")

        assert error.status == 75
        assert error.retry_after == "2"
        assert str(error) == "the command failed (exit status 75)"


@pytest.mark.skipif(
    threading.current_thread() is not threading.main_thread(),
    reason="signal handlers need the main thread",
)
class TestStopping:
    def test_signal_ends_a_long_sleep_at_once(self) -> None:
        """
        A signal during the wait between attempts ends the wait and the run.
        """
        with _Stopper() as stopper:
            clock = _StoppableClock(stopper)
            timer = threading.Timer(0.01, os.kill, (os.getpid(), signal.SIGTERM))
            timer.start()
            with pytest.raises(_Interrupted) as info:
                clock.sleep(60)
            timer.join()

        assert info.value.signum == signal.SIGTERM

    def test_handlers_are_restored(self) -> None:
        before = signal.getsignal(signal.SIGTERM)

        with _Stopper():
            assert signal.getsignal(signal.SIGTERM) is not before

        assert signal.getsignal(signal.SIGTERM) is before

    def test_no_attempt_starts_after_a_signal(self) -> None:
        with _Stopper() as stopper:
            os.kill(os.getpid(), signal.SIGTERM)
            # The handler runs at the next bytecode boundary, before this.
            with pytest.raises(_Interrupted) as info:
                stopper.check()

        assert info.value.signum == signal.SIGTERM

    def test_ignored_signal_stays_ignored(self) -> None:
        """
        Under nohup or in a background job, SIGINT is ignored; keep it so.
        """
        before = signal.signal(signal.SIGINT, signal.SIG_IGN)
        try:
            with _Stopper():
                inside = signal.getsignal(signal.SIGINT)
            after = signal.getsignal(signal.SIGINT)
        finally:
            signal.signal(signal.SIGINT, before)

        assert inside is signal.SIG_IGN
        assert after is signal.SIG_IGN

    def test_runs_from_another_thread_without_handlers(self) -> None:
        statuses: list[int] = []
        worker = threading.Thread(
            target=lambda: statuses.append(main(["run", *NO_WAIT, "--", "true"]))
        )
        worker.start()
        worker.join()

        assert statuses == [0]

    def test_interrupted_is_not_an_exception(self) -> None:
        """
        Retry and breakers handle Exception only, so they never count it.
        """
        assert not issubclass(_Interrupted, Exception)


class TestBreaker:
    """
    --breaker, with state kept in a SQLite file between runs.
    """

    @staticmethod
    def runs_until_open(tmp_path: Path, name: str, attempts: int) -> list[int]:
        pytest.importorskip("recovery.cli._breakers")
        log = tmp_path / f"{name}.runs"
        argv = [
            "run", "--attempts", str(attempts), *NO_WAIT,
            "--breaker", name, "--state", str(tmp_path / "state.db"),
            "--", "sh", "-c", f"echo x >> {log}; exit 3",
        ]  # fmt: skip
        statuses: list[int] = []
        while 75 not in statuses and len(statuses) < 50:
            statuses.append(main(argv))
        return statuses

    def test_open_circuit_skips_the_command(
        self, tmp_path: Path, caplog: pytest.LogCaptureFixture
    ) -> None:
        statuses = self.runs_until_open(tmp_path, "flaky", attempts=1)

        assert statuses[-1] == 75
        assert set(statuses[:-1]) == {3}
        runs = (tmp_path / "flaky.runs").read_text().splitlines()
        assert len(runs) == len(statuses) - 1
        assert run_lines(caplog)[-1].startswith(
            "circuit 'flaky' is open; not running the command; next trial in "
        )

    def test_a_run_is_one_failure_whatever_its_attempts(self, tmp_path: Path) -> None:
        """
        Three failed attempts in one run count once, like a single attempt.
        """
        single = self.runs_until_open(tmp_path, "single", attempts=1)
        triple = self.runs_until_open(tmp_path, "triple", attempts=3)

        assert len(single) == len(triple)
        runs = (tmp_path / "triple.runs").read_text().splitlines()
        assert len(runs) == 3 * (len(triple) - 1)

    def test_success_passes_through(self, tmp_path: Path) -> None:
        pytest.importorskip("recovery.cli._breakers")
        state = str(tmp_path / "state.db")

        argv = ["run", *NO_WAIT, "--breaker", "fine", "--state", state, "--", "true"]

        assert main(argv) == 0

    def test_outcomes_as_a_breaker_sees_them(
        self,
        tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture,
    ) -> None:
        """
        Exhausted retries are a failure; an unlisted status is an answer.

        Uses an in-memory breaker, so it runs whether or not the shared
        breaker module is present.
        """
        breaker = CircuitBreaker(
            "mem", failure_threshold=2, reset_timeout=60, clock=FakeClock()
        )
        monkeypatch.setattr(run_module, "_open_breaker", lambda args, parser: breaker)
        log = tmp_path / "runs"

        def run(status: int) -> int:
            script = f"echo x >> {log}; exit {status}"
            argv = ["--attempts", "2", "--retry-on-exit", "3", *NO_WAIT]
            return main(["run", *argv, "--breaker", "mem", "--", "sh", "-c", script])

        statuses = [run(3), run(4), run(3), run(3), run(3)]

        assert statuses == [3, 4, 3, 3, 75]
        assert len(log.read_text().splitlines()) == 2 + 1 + 2 + 2
        assert run_lines(caplog)[-1] == (
            "circuit 'mem' is open; not running the command; next trial in 60.0 s"
        )

    def test_closing_again_is_announced(
        self,
        tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture,
    ) -> None:
        """
        Opening and half-opening are reported, and so is the close after.
        """
        breakers = pytest.importorskip("recovery.cli._breakers")
        real: Callable[..., CircuitBreaker] = breakers.open_cli_breaker

        def quick(name: str, **kwargs: Any) -> CircuitBreaker:
            # A nearly zero open time, so the next run is the trial run.
            return real(name, failure_threshold=1, reset_timeout=1e-6, **kwargs)

        monkeypatch.setattr(breakers, "open_cli_breaker", quick)
        argv = ["run", "--attempts", "1", *NO_WAIT, "--breaker", "job"]
        argv += ["--state", str(tmp_path / "state.db"), "--"]

        assert main([*argv, "false"]) == 1
        assert main([*argv, "true"]) == 0

        assert run_lines(caplog) == [
            "attempt 1 of 1 failed (exit status 1); giving up: attempt limit of "
            "1 reached",
            "circuit 'job' closed again: trial calls succeeded",
        ]

    def test_state_and_redis_together_exit_2(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        pytest.importorskip("recovery.cli._breakers")
        argv = ["--breaker", "b", "--state", str(tmp_path / "s.db")]

        with pytest.raises(SystemExit) as exit_info:
            main(["run", *argv, "--redis", "redis://127.0.0.1:1/0", "--", "true"])

        assert exit_info.value.code == 2
        assert "--breaker b: give --state PATH or --redis URL" in (
            capsys.readouterr().err
        )


@pytest.mark.parametrize(
    ("argv", "prog"),
    [
        (["run", "--bogus", "--", "true"], "recovery run"),
        (["status", "--bogus"], "recovery status"),
        (["backup", "list", "--bogus"], "recovery backup list"),
        (["services", "check", "--bogus", "x.toml"], "recovery services check"),
    ],
)
def test_unknown_options_are_reported_by_their_sub_command(
    argv: list[str], prog: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        main(argv)

    assert exited.value.code == 2
    assert f"{prog}: error: unrecognized arguments: --bogus" in capsys.readouterr().err
