"""Exit codes, and the errors a user sees as one line on stderr.

Every exit code hdr uses is declared here and nowhere else. The errors are click exceptions, so
click itself prints them and exits with their code; hdr only chooses the words.
"""

from __future__ import annotations

import signal

import click

EXIT_OK = 0
EXIT_FAILURE = 1        # a failure at run time, recorded in the run folder
EXIT_USAGE = 2          # a mistake in the command or config; nothing was created
# A stop that was asked for: 128 + the signal number, as shells report it. SIGHUP is a closed
# terminal or a dropped ssh session: a stop like the others, every completed epoch kept.
EXIT_SIGNAL = {s: 128 + s for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
STOP_SIGNALS = tuple(EXIT_SIGNAL)


def exit_code_for_signal(signum: int) -> int:
    return EXIT_SIGNAL.get(signum, 128 + int(signum))


def after_hangup(signum: int) -> None:
    """After SIGHUP the terminal is gone and writing to it fails (EIO): point stdout and stderr
    at /dev/null so that stopping cleanly is not cut short by a progress line."""
    if signum != signal.SIGHUP:
        return
    import os

    null = os.open(os.devnull, os.O_WRONLY)
    for fd in (1, 2):
        os.dup2(null, fd)
    os.close(null)


class HdrError(click.ClickException):
    """A failure hdr explains in one line; never shown as a traceback."""

    exit_code = EXIT_FAILURE
    prefix = "hdr: error: "

    def __init__(self, message: str, exit_code: int | None = None):
        super().__init__(message)
        if exit_code is not None:
            self.exit_code = exit_code

    def show(self, file=None) -> None:
        click.echo(f"{self.prefix}{self.format_message()}", err=True)


class UsageError(HdrError):
    """The user asked for something invalid: a bad config, a missing file, a wrong argument."""

    exit_code = EXIT_USAGE


class DataError(HdrError):
    """A dataset file is missing, truncated or corrupt."""

    exit_code = EXIT_FAILURE


class Stopped(HdrError):
    """The user stopped a command with Ctrl-C or SIGTERM. Not an error: the message says what was
    kept and how to go on."""

    prefix = "hdr: "

    def __init__(self, message: str, signum: int = signal.SIGINT):
        self.signum = signum
        super().__init__(message, exit_code_for_signal(signum))
