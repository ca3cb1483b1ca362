"""One module per ``deepmatting`` subcommand; options shared by several are declared in ``options``."""
