"""Errors meant for the person running the code: one line naming the thing and what was expected."""


class UserError(ValueError):
  """Bad input (a path, a config value, a file's content). Entry points print it without a traceback."""


class TrainingDiverged(UserError, FloatingPointError):
  """A loss or parameter became NaN/inf; training stopped and the last good checkpoint is kept."""
