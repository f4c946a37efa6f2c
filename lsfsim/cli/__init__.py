"""The ``lsfsim`` command line."""
