"""The one exception type the command line turns into a one-line message and a non-zero exit."""


class UnlearnBenchError(Exception):
    """A problem with the user's input (names, files, data, checkpoints), stated in one line."""


class UnknownNameError(UnlearnBenchError, KeyError):
    """A name that is not in a registry; the message lists the known names."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


class DataAccessError(UnlearnBenchError):
    """A method asked for a split outside its declared data access."""
