"""`python -m ledger.verify`: the offline verifier's earlier name, kept so that banks' scripts keep working.
The kit is `ledger.verifier` (standard library and `cryptography` only)."""

import sys

from ledger.verifier.cli import main

if __name__ == "__main__":
    sys.exit(main())
