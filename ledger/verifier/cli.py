"""Verify a pledge bundle on your own machine: the standard library and `cryptography`, nothing else.

    python -m ledger.verifier BUNDLE.json --key 'tanhui.example/registry+1a2b3c4d+AQ...'
        [--key ANOTHER_TRUSTED_KEY] [--trusted-checkpoint FILE [--consistency-proof FILE]] [--rpc URL]

Exit status: 0 and a short summary when every check holds; 1 and the first failing check, naming the bundle's
field ("entries[2]: entry hash does not match (seq 17) ..."); 2 when the input cannot be checked (a missing file,
not JSON, another format version, an unreadable key, an RPC endpoint that does not answer). No network is used
unless --rpc is given; then only JSON-RPC POSTs to that URL (eth_chainId, eth_getTransactionByHash,
eth_getTransactionReceipt, eth_blockNumber). The checks are in `ledger.verifier.checks`; docs/bundle.md explains them.
"""

import argparse
import itertools
import json
import sys
import urllib.error
import urllib.request
from collections.abc import Sequence

from ledger.verifier.checks import load_bundle, verify_bundle
from ledger.verifier.errors import BundleFormatError, BundleInvalidError, RPCUnavailableError

EXIT_VALID, EXIT_INVALID, EXIT_UNUSABLE = 0, 1, 2
RPC_TIMEOUT_S = 30  # a socket timeout for a remote node, not a limit on verification


class JSONRPCClient:
    """Plain JSON-RPC 2.0 over HTTP POST with urllib: `client("eth_chainId", [])` returns the result."""

    def __init__(self, url: str, timeout_s: float = RPC_TIMEOUT_S):
        self.url, self.timeout_s = url, timeout_s
        self._ids = itertools.count(1)

    def __call__(self, method: str, params: list) -> object:
        body = json.dumps({"jsonrpc": "2.0", "id": next(self._ids), "method": method, "params": params}).encode()
        request = urllib.request.Request(self.url, data=body, headers={"Content-Type": "application/json"},
                                         method="POST")
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_s) as response:
                answer = json.loads(response.read())
        except (urllib.error.URLError, OSError, ValueError) as error:
            raise RPCUnavailableError(f"RPC {method} to {self.url} failed: {error}") from None
        if not isinstance(answer, dict):
            raise RPCUnavailableError(f"RPC {method} answered {answer!r}, want a JSON-RPC object")
        if answer.get("error"):
            raise RPCUnavailableError(f"RPC {method} answered error {answer['error']}")
        return answer.get("result")


def _read(path: str, what: str) -> bytes:
    try:
        with open(path, "rb") as handle:
            return handle.read()
    except OSError as error:
        raise BundleFormatError(f"cannot read {what} {path}: {error.strerror or error}") from None


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m ledger.verifier", description=(
        "Verify a Tanhui pledge bundle offline: entry hashes and signatures, inclusion proofs, the signed "
        "checkpoint, the replayed projection, and optionally consistency with a checkpoint you trust and the "
        "on-chain anchor."))
    parser.add_argument("bundle", help="the bundle JSON file (GET /api/assets/{code}/bundle/)")
    parser.add_argument("--key", action="append", required=True, metavar="VERIFIER_KEY",
                        help="a registry verifier key you trust, name+keyid+base64 (repeat for several)")
    parser.add_argument("--trusted-checkpoint", metavar="FILE",
                        help="a signed checkpoint note you saw before; the bundle's must be consistent with it")
    parser.add_argument("--consistency-proof", metavar="FILE",
                        help="JSON from /api/ledger/consistency/?first=M&second=N when the bundle carries none "
                             "from your trusted checkpoint's size")
    parser.add_argument("--rpc", metavar="URL", help="an EVM JSON-RPC endpoint to check the anchor transaction on")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    arguments = _parser().parse_args(argv)
    try:
        bundle = load_bundle(_read(arguments.bundle, "bundle"))
        trusted_checkpoint = None
        if arguments.trusted_checkpoint:
            raw = _read(arguments.trusted_checkpoint, "trusted checkpoint")
            try:
                trusted_checkpoint = raw.decode("utf-8")
            except UnicodeDecodeError:
                raise BundleFormatError("trusted checkpoint is not UTF-8 text") from None
        consistency_proof = None
        if arguments.consistency_proof:
            try:
                consistency_proof = json.loads(_read(arguments.consistency_proof, "consistency proof"))
            except ValueError as error:
                raise BundleFormatError(f"consistency proof is not JSON: {error}") from None
            if not isinstance(consistency_proof, dict):
                raise BundleFormatError("consistency proof: want the JSON object the API returns")
        rpc = JSONRPCClient(arguments.rpc) if arguments.rpc else None
        verdict = verify_bundle(bundle, trusted_keys=arguments.key, trusted_checkpoint=trusted_checkpoint,
                                consistency_proof=consistency_proof, rpc=rpc)
    except BundleInvalidError as error:
        print(f"INVALID: {error}", file=sys.stderr)
        return EXIT_INVALID
    except (BundleFormatError, RPCUnavailableError) as error:
        print(f"UNUSABLE: {error}", file=sys.stderr)
        return EXIT_UNUSABLE
    print(verdict.summary())
    return EXIT_VALID

