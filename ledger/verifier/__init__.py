"""The bank's offline kit: `python -m ledger.verifier BUNDLE.json --key VKEY` checks a pledge bundle with the
standard library, `cryptography` and `ledger.core` only."""
