"""Anchoring signed checkpoints on an EVM chain: the transaction data format and the chain client.

No Django here: the format functions are plain bytes in, bytes out, and the chain functions take a `Web3` and a
locally held key. What the registry does with them (the `Anchor` rows, retries, tracking) is in
`ledger.anchoring.services`.

The data format (version 1), fixed: offline verifiers decode it
-----------------------------------------------------------------

An anchor is an ordinary transaction with value 0, sent to the sender's own address (or the configured
ANCHOR_TO address), whose data field is exactly 44 bytes:

    offset  size  field
    0       4     the ASCII magic "THA1" (Tanhui anchor, version 1): 54 48 41 31
    4       8     tree size: unsigned 64-bit big-endian integer, the checkpoint's number of entries
    12      32    root: the checkpoint's RFC 6962 Merkle root (SHA-256), raw bytes

For example the checkpoint of 5 entries with root 01 02 .. 20 anchors as
`0x54484131 0000000000000005 0102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f20`.
A verifier reads the transaction by hash (eth_getTransactionByHash), takes its `input`, calls
`anchor_data_parse` (or unpacks `>4sQ32s` itself), and compares the size and root with the checkpoint's; the
receipt's status must be 1 and its block far enough below the chain head. A later version takes a new magic
("THA2"); parsers refuse what they do not know.

Gas
---

The gas limit is set explicitly, never estimated: `eth_estimateGas` answers the pre-Prague intrinsic cost, while
a Prague chain (EIP-7623) charges at least the calldata floor, 10 gas per calldata token, and a real node refuses
a transaction whose limit is below what it will use. `anchor_gas_limit` takes the larger of the two costs and
adds a margin.
"""

import threading
from dataclasses import dataclass

from eth_account import Account
from eth_account.signers.local import LocalAccount
from web3 import EthereumTesterProvider, Web3
from web3.exceptions import TransactionNotFound

from ledger.core.anchor_format import (  # noqa: F401  (the format, re-exported for callers of the chain client)
    ANCHOR_DATA_SIZE,
    ANCHOR_MAGIC,
    AnchorDataError,
    AnchorError,
    anchor_data,
    anchor_data_parse,
)

# Gas (yellow paper and EIP-2028; EIP-7623 for the calldata floor since Prague).
TX_BASE_GAS = 21_000
CALLDATA_ZERO_BYTE_GAS = 4
CALLDATA_NONZERO_BYTE_GAS = 16
CALLDATA_FLOOR_GAS_PER_TOKEN = 10  # tokens = zero bytes + 4 × non-zero bytes
DEFAULT_GAS_MARGIN = 2_000

TESTER_SCHEME = "tester://"


class AnchorConfigError(AnchorError):
    """The anchoring settings cannot work: an unknown RPC URL scheme, an unreadable key, a gas limit too low."""


# --- gas ------------------------------------------------------------------------------------------------------


def intrinsic_gas(data: bytes) -> int:
    """Gas a plain transaction carrying `data` uses: the larger of the standard and the EIP-7623 floor cost.

    Standard: 21000 + 4 per zero byte + 16 per non-zero byte. Floor: 21000 + 10 × (zero bytes + 4 × non-zero).
    The 44 anchor bytes with 7 zeros: standard 21000 + 28 + 592 = 21620, floor 21000 + 10 × 155 = 22550.
    """
    zero_bytes = bytes(data).count(0)
    nonzero_bytes = len(data) - zero_bytes
    standard = TX_BASE_GAS + CALLDATA_ZERO_BYTE_GAS * zero_bytes + CALLDATA_NONZERO_BYTE_GAS * nonzero_bytes
    floor = TX_BASE_GAS + CALLDATA_FLOOR_GAS_PER_TOKEN * (zero_bytes + 4 * nonzero_bytes)
    return max(standard, floor)


def anchor_gas_limit(data: bytes, *, margin_gas: int = DEFAULT_GAS_MARGIN, fixed_gas: int | None = None) -> int:
    """The gas limit to send `data` with: `fixed_gas` when given (refused below the intrinsic gas), else
    intrinsic gas + `margin_gas`."""
    needed = intrinsic_gas(data)
    if fixed_gas:
        if fixed_gas < needed:
            raise AnchorConfigError(f"gas limit {fixed_gas} is below the {needed} gas the anchor transaction uses")
        return fixed_gas
    return needed + margin_gas


# --- the chain client -----------------------------------------------------------------------------------------


class _LockedTesterProvider(EthereumTesterProvider):
    """An in-process py-evm chain that several threads may call: one request at a time."""

    def __init__(self):
        super().__init__()
        self._lock = threading.Lock()

    def make_request(self, method, params):
        with self._lock:
            return super().make_request(method, params)


_tester_chains: dict[str, Web3] = {}
_tester_chains_lock = threading.Lock()


def tester_chain(url: str) -> Web3:
    """The in-process chain named by `url` ("tester://NAME"): created on first use, the same one after that."""
    with _tester_chains_lock:
        if url not in _tester_chains:
            _tester_chains[url] = Web3(_LockedTesterProvider())
        return _tester_chains[url]


def tester_chains_reset() -> None:
    """Forget every in-process chain (tests start each on a fresh chain)."""
    with _tester_chains_lock:
        _tester_chains.clear()


def web3_for(url: str, *, timeout_s: float = 5.0) -> Web3:
    """A Web3 client for the chain at `url`.

    http(s)://...: JSON-RPC over HTTP with a `timeout_s` per request and no retries inside web3 (the caller
    retries later with backoff). tester://NAME: an in-process py-evm chain (eth-tester), for tests and demos; its
    first accounts hold test ether. Tests may replace this function to inject faults.
    """
    if url.startswith(TESTER_SCHEME):
        return tester_chain(url)
    if url.startswith(("http://", "https://")):
        provider = Web3.HTTPProvider(url, request_kwargs={"timeout": timeout_s}, exception_retry_configuration=None)
        return Web3(provider)
    raise AnchorConfigError(f"ANCHOR_RPC_URL {url!r}: want http://, https:// or {TESTER_SCHEME}NAME")


def account_from_key_text(text: str) -> LocalAccount:
    """The local signing account for a private key written as 64 hex digits (optionally 0x-prefixed)."""
    key_hex = text.strip().removeprefix("0x")
    if len(key_hex) != 64:
        raise AnchorConfigError(f"anchor key is {len(key_hex)} hex digits, want 64")
    try:
        return Account.from_key(bytes.fromhex(key_hex))
    except ValueError as exc:
        raise AnchorConfigError(f"anchor key is not a valid secp256k1 private key in hex: {exc}") from None


@dataclass(frozen=True, slots=True)
class SignedAnchorTx:
    """A signed anchor transaction, ready to broadcast."""

    tx_hash: str  # "0x" + 64 hex digits
    nonce: int
    gas_limit: int
    raw: bytes


def anchor_transaction_sign(w3: Web3, account: LocalAccount, data: bytes, *, to: str | None = None,
                            gas_limit: int) -> SignedAnchorTx:
    """Build and sign (locally) a value-0 transaction carrying `data`, to `to` or the sender itself.

    Nonce: the sender's pending transaction count. Fees: EIP-1559 (max fee 2 × base fee + priority fee) when the
    latest block has a base fee, else the legacy gas price.
    """
    chain_id = w3.eth.chain_id
    nonce = w3.eth.get_transaction_count(account.address, "pending")
    tx = {
        "chainId": chain_id,
        "nonce": nonce,
        "to": Web3.to_checksum_address(to) if to else account.address,
        "value": 0,
        "data": data,
        "gas": gas_limit,
    }
    base_fee_wei = w3.eth.get_block("latest").get("baseFeePerGas")
    if base_fee_wei is not None:
        priority_fee_wei = w3.eth.max_priority_fee
        tx["maxPriorityFeePerGas"] = priority_fee_wei
        tx["maxFeePerGas"] = 2 * base_fee_wei + priority_fee_wei
        tx["type"] = 2
    else:
        tx["gasPrice"] = w3.eth.gas_price
    signed = account.sign_transaction(tx)
    return SignedAnchorTx(tx_hash=Web3.to_hex(signed.hash), nonce=nonce, gas_limit=gas_limit,
                          raw=bytes(signed.raw_transaction))


def anchor_transaction_send(w3: Web3, signed: SignedAnchorTx) -> str:
    """Broadcast `signed`; return its hash as the node reports it."""
    return Web3.to_hex(w3.eth.send_raw_transaction(signed.raw))


def transaction_known(w3: Web3, tx_hash: str) -> bool:
    """True when the node knows the transaction (in its pool or in a block)."""
    try:
        w3.eth.get_transaction(tx_hash)
    except TransactionNotFound:
        return False
    return True


def anchor_read(w3: Web3, tx_hash: str) -> tuple[int, bytes]:
    """(tree size, root) read back from the anchor transaction `tx_hash` on chain."""
    return anchor_data_parse(bytes(w3.eth.get_transaction(tx_hash)["input"]))


def fault_reason(exc: BaseException) -> str:
    """A short, operator-readable reason for an RPC or transaction fault, naming the kind of fault first.

    Kinds: "insufficient funds for gas", "nonce clash", "RPC timeout", "RPC unreachable", "RPC error". Nodes word
    their refusals differently (geth: "insufficient funds for gas * price + value", "nonce too low"; eth-tester:
    "cannot afford txn gas", "Invalid transaction nonce"); the original message follows the kind.
    """
    text = str(exc)
    lowered = text.lower()
    if any(sign in lowered for sign in ("insufficient funds", "cannot afford")):
        kind = "insufficient funds for gas"
    elif any(sign in lowered for sign in ("nonce too low", "invalid transaction nonce", "already known",
                                          "replacement transaction underpriced")):
        kind = "nonce clash"
    elif "timed out" in lowered or "timeout" in type(exc).__name__.lower():
        kind = "RPC timeout"
    elif "connection" in lowered or "connection" in type(exc).__name__.lower():
        kind = "RPC unreachable"
    else:
        kind = "RPC error"
    return f"{kind}: {type(exc).__name__}: {text}"[:1000]
