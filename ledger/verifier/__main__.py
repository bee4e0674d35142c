"""`python -m ledger.verifier BUNDLE.json --key VKEY`: the bank's offline check of a pledge bundle."""

import sys

from ledger.verifier.cli import main

sys.exit(main())
