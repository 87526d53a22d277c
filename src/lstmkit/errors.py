"""User-facing errors.

Every mistake a user can make with their data, arguments or files raises a :class:`UserError` subclass
whose message names the input, what was expected, what was found and the fix. The CLI prints the
message as one line on stderr and exits with code 2; library users can catch the class.
"""

from __future__ import annotations


class UserError(Exception):
    """A mistake in the user's input (data, argument, file); the message says how to fix it."""


class DataError(UserError, ValueError):
    """The data (a file, a column, a series) cannot be used as given."""


class ConfigError(UserError, ValueError):
    """An argument or option has a value that cannot work."""


class ModelDirError(UserError, ValueError):
    """A saved model directory is missing, incomplete, incompatible or has been tampered with."""
