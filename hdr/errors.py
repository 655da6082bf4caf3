"""The two kinds of error a user sees: a mistake of theirs (exit 2) or a failure at run time (exit 1)."""


class HdrError(Exception):
    """A failure hdr explains in one line; never shown as a traceback."""

    exit_code = 1


class UsageError(HdrError):
    """The user asked for something invalid: a bad config, a missing file, a wrong argument."""

    exit_code = 2


class DataError(HdrError):
    """A dataset file is missing, truncated or corrupt."""

    exit_code = 1
