"""Subcommands of the `vptracker` CLI, one module each (see vptracker/cli.py)."""
