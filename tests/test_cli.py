"""The command-line entry point."""

import subprocess
import sys

from deepmatting import __version__
from deepmatting.cli import main


def test_version_and_help(capsys):
    try:
        main(["--version"])
    except SystemExit as e:
        assert e.code == 0
    assert __version__ in capsys.readouterr().out
    assert main([]) == 0
    assert "deepmatting" in capsys.readouterr().out


def test_module_entry_point():
    out = subprocess.run([sys.executable, "-m", "deepmatting", "--help"], capture_output=True, text=True)
    assert out.returncode == 0 and "usage: deepmatting" in out.stdout
