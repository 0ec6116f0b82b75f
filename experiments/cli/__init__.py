"""The ``codesign`` command line: :mod:`.main` builds the parser, one module per subcommand
adds its own. May import anything in :mod:`codesign.experiments`; nothing imports it.
"""
