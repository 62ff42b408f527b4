"""Errors that carry a message meant for the user, not a traceback."""


class FacesketchError(Exception):
    """Base class: the stage scripts print these as one clear line and exit 1."""


class ParamError(FacesketchError):
    """A value in params.yaml (or a -S override) is missing or not allowed."""


class DataError(FacesketchError):
    """Input data is missing, corrupt, unpaired or otherwise unusable."""


class Interrupted(KeyboardInterrupt):
    """A stop signal (Ctrl-C's SIGINT, SIGTERM) arrived: not a crash. The stage scripts print
    the message alone and exit with the shell's status for it, 128 + the signal number (130, 143)."""

    def __init__(self, signum: int, message: str = "interrupted"):
        super().__init__(message)
        self.signum = signum
