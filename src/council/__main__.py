"""`python -m council` is the CLI."""

from council.cli import main

main()
