"""The fixed 44-byte anchor data format and the explicit gas limit: pure functions, no chain, no Django."""

import subprocess
import sys
from pathlib import Path

import pytest

from ledger.anchoring import chain
from ledger.anchoring.chain import AnchorConfigError, AnchorDataError, anchor_data, anchor_data_parse

ROOT = bytes(range(1, 33))


def test_layout_matches_the_documented_example():
    data = anchor_data(5, ROOT)
    assert len(data) == 44
    assert data.hex() == ("54484131" "0000000000000005"
                          "0102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f20")
    assert anchor_data_parse(data) == (5, ROOT)


@pytest.mark.parametrize("tree_size", [0, 1, 2**32, 2**64 - 1])
def test_round_trip_at_the_edges_of_uint64(tree_size):
    assert anchor_data_parse(anchor_data(tree_size, ROOT)) == (tree_size, ROOT)
    assert anchor_data(tree_size, ROOT)[4:12] == tree_size.to_bytes(8, "big")


@pytest.mark.parametrize(("tree_size", "root", "message"), [
    pytest.param(-1, ROOT, "tree size -1 does not fit an unsigned 64-bit integer", id="negative size"),
    pytest.param(2**64, ROOT, f"tree size {2**64} does not fit an unsigned 64-bit integer", id="size too big"),
    pytest.param(True, ROOT, "tree size True does not fit an unsigned 64-bit integer", id="bool size"),
    pytest.param(5, ROOT[:31], "root is 31 bytes, want 32", id="short root"),
    pytest.param(5, ROOT + b"\x00", "root is 33 bytes, want 32", id="long root"),
])
def test_values_that_do_not_fit_are_refused(tree_size, root, message):
    with pytest.raises(AnchorDataError) as caught:
        anchor_data(tree_size, root)
    assert str(caught.value) == message


@pytest.mark.parametrize(("data", "message"), [
    pytest.param(b"", "anchor data is 0 bytes, want 44", id="empty"),
    pytest.param(anchor_data(5, ROOT)[:43], "anchor data is 43 bytes, want 44", id="one byte short"),
    pytest.param(anchor_data(5, ROOT) + b"\x00", "anchor data is 45 bytes, want 44", id="one byte extra"),
    pytest.param(b"THA2" + anchor_data(5, ROOT)[4:], "anchor data starts with b'THA2', want b'THA1'",
                 id="unknown version"),
    pytest.param(b"tha1" + anchor_data(5, ROOT)[4:], "anchor data starts with b'tha1', want b'THA1'",
                 id="lower case magic"),
])
def test_parse_refuses_wrong_length_or_prefix(data, message):
    with pytest.raises(AnchorDataError) as caught:
        anchor_data_parse(data)
    assert str(caught.value) == message


def test_intrinsic_gas_is_the_larger_of_standard_and_eip7623_floor():
    data = anchor_data(5, ROOT)  # 7 zero bytes (in the size), 37 non-zero
    assert data.count(0) == 7
    # standard 21000 + 4 × 7 + 16 × 37 = 21620; floor 21000 + 10 × (7 + 4 × 37) = 22550
    assert chain.intrinsic_gas(data) == 22550
    assert chain.intrinsic_gas(b"") == 21000
    assert chain.anchor_gas_limit(data) == 22550 + 2000
    assert chain.anchor_gas_limit(data, margin_gas=500) == 23050
    assert chain.anchor_gas_limit(data, fixed_gas=30000) == 30000


def test_a_fixed_gas_limit_below_what_the_transaction_uses_is_refused():
    with pytest.raises(AnchorConfigError) as caught:
        chain.anchor_gas_limit(anchor_data(5, ROOT), fixed_gas=21620)
    assert str(caught.value) == "gas limit 21620 is below the 22550 gas the anchor transaction uses"


@pytest.mark.parametrize(("message", "kind"), [
    ("insufficient funds for gas * price + value: balance 0", "insufficient funds for gas"),
    ("Sender b'..' cannot afford txn gas 46031250000000 with account balance 0", "insufficient funds for gas"),
    ("nonce too low: next nonce 4, tx nonce 3", "nonce clash"),
    ("Invalid transaction nonce: Expected 1, but got 0", "nonce clash"),
    ("Read timed out. (read timeout=2)", "RPC timeout"),
    ("Failed to establish a new connection: [Errno 111] Connection refused", "RPC unreachable"),
    ("execution reverted", "RPC error"),
])
def test_fault_reason_names_the_kind_first(message, kind):
    assert chain.fault_reason(ValueError(message)) == f"{kind}: ValueError: {message}"


def test_unknown_rpc_scheme_is_refused():
    with pytest.raises(AnchorConfigError) as caught:
        chain.web3_for("ftp://node.example/")
    assert str(caught.value) == "ANCHOR_RPC_URL 'ftp://node.example/': want http://, https:// or tester://NAME"


def test_anchor_module_imports_without_django():
    code = "import sys, ledger.anchoring.chain; print('django' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                            env={"PATH": "/usr/bin:/bin"}, cwd=Path(__file__).parents[3])
    assert result.stdout.strip() == "False"
