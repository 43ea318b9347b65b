"""The notebooks, executed by the test suite (nbval); a package so that their conftest has a
name of its own beside the tests' conftest."""
