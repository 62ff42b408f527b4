"""Errors that carry a message meant for the user, not a traceback."""


class FacesketchError(Exception):
    """Base class: the stage scripts print these as one clear line and exit 1."""


class ParamError(FacesketchError):
    """A value in params.yaml (or a -S override) is missing or not allowed."""


class DataError(FacesketchError):
    """Input data is missing, corrupt, unpaired or otherwise unusable."""
