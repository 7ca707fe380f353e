"""`python -m nnrun` is the `nnrun` command."""

from nnrun.cli import main

main()
