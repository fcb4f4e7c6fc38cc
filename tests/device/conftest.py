"""Scripts here run by hand on a machine with a GPU (see each one's docstring); pytest skips them."""

collect_ignore_glob = ["*.py"]
