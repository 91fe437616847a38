"""The subcommands of `cli.py` beside fit / test."""
