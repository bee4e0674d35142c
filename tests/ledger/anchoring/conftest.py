"""An in-process EVM chain (eth-tester on py-evm) per test, a funded anchor key, and signed checkpoints."""

import pytest
from eth_account import Account

from ledger.anchoring import chain
from ledger.log.services import checkpoint_sign_latest, entry_append

CHAIN_URL = "tester://anchor-tests"
FUNDS_WEI = 10**18  # 1 ether: far more than any test spends


@pytest.fixture(autouse=True)
def anchor_settings(settings, tmp_path):
    """Ledger and anchor keys in this test's own folder; anchoring off until a test asks for the chain."""
    settings.LEDGER_ORIGIN = "tanhui.local/anchor-tests"  # keys and VAR_DIR: tests/conftest.py
    settings.ANCHOR_RPC_URL = None
    settings.ANCHOR_KEY_FILE = None
    settings.ANCHOR_TO = None
    settings.ANCHOR_CONFIRMATIONS = 3
    settings.ANCHOR_GAS_LIMIT = 0
    settings.ANCHOR_GAS_MARGIN = 2000
    settings.ANCHOR_RPC_TIMEOUT_S = 2
    settings.ANCHOR_RETRY_BASE_S = 30
    settings.ANCHOR_RETRY_MAX_S = 3600
    settings.ANCHOR_DROPPED_AFTER_S = 600
    chain.tester_chains_reset()
    yield settings
    chain.tester_chains_reset()


@pytest.fixture
def anchor_key(tmp_path):
    """A fresh secp256k1 key written to a file, as an operator would provide it."""
    account = Account.create()
    path = tmp_path / "anchor.key"
    path.write_text("0x" + account.key.hex() + "\n")
    return account, path


def fund(w3, address: str, value_wei: int = FUNDS_WEI) -> None:
    """Send test ether from the tester's first (pre-funded) account."""
    w3.eth.send_transaction({"from": w3.eth.accounts[0], "to": address, "value": value_wei})


@pytest.fixture
def evm(anchor_settings, anchor_key):
    """Anchoring on: the in-process chain at CHAIN_URL, with the anchor key funded. Returns the Web3 client."""
    account, path = anchor_key
    anchor_settings.ANCHOR_RPC_URL = CHAIN_URL
    anchor_settings.ANCHOR_KEY_FILE = str(path)
    w3 = chain.web3_for(CHAIN_URL)
    fund(w3, account.address)
    return w3


def mine(w3, blocks: int) -> None:
    w3.provider.ethereum_tester.mine_blocks(blocks)


@pytest.fixture
def checkpoint_of(db):
    """Factory: checkpoint_of(n) appends entries until the ledger holds n, then signs and returns the checkpoint."""
    from ledger.log.tree import tree_size_current

    def make(tree_size: int):
        for i in range(tree_size_current(), tree_size):
            entry_append(kind="test.anchor", payload={"n": i})
        return checkpoint_sign_latest(force=True)

    return make
