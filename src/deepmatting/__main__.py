"""``python -m deepmatting`` (also what ``torchrun -m deepmatting train`` runs)."""

import sys

from .cli import main

sys.exit(main())
