"""``python -m tif_unlearn.cli`` (and ``torchrun -m tif_unlearn.cli``) run the ``tif`` command."""

import sys

from .app import main

sys.exit(main())
