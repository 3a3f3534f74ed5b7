"""Errors meant for the person running the code: one line naming the thing and what was expected."""


class UserError(ValueError):
  """Bad input (a path, a config value, a file's content). Entry points print it without a traceback."""
