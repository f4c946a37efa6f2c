"""Allow ``python -m lsfsim``."""

from lsfsim.cli.main import main

main()
