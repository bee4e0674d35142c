"""`--rpc URL`: the anchor transaction is read back over plain JSON-RPC from a tiny server on 127.0.0.1 that
answers like an EVM node (eth_chainId, eth_getTransactionByHash, eth_getTransactionReceipt, eth_blockNumber)."""

import base64
import json

import pytest
from django.utils import timezone

from ledger.bundles.services import bundle_build, bundle_bytes
from ledger.core.anchor_format import anchor_data
from ledger.log.services import checkpoint_sign_latest
from ledger.models import Anchor, Checkpoint
from tests.ledger.verifier.test_verify import run_verifier, write
from tests.loopback import LoopbackServer

pytestmark = pytest.mark.django_db
CHAIN_ID = 31337
TX_HASH = "0x" + "5a" * 32
SENDER = "0x" + "11" * 20


class FakeNode(LoopbackServer):
    """Answers JSON-RPC calls from `self.answers`; records the methods asked."""

    def __init__(self):
        self.answers: dict[str, object] = {}
        self.asked: list[str] = []
        super().__init__(self._answer)

    def _answer(self, path, headers, body):
        request = json.loads(body)
        self.asked.append(request["method"])
        answer = {"jsonrpc": "2.0", "id": request["id"], "result": self.answers.get(request["method"])}
        return 200, "application/json", json.dumps(answer).encode()


@pytest.fixture
def anchored(scene, tmp_path):
    """The asset's bundle proven to a checkpoint anchored in block 40 (chain head 45); the node's answers."""
    checkpoint = checkpoint_sign_latest(force=True) or Checkpoint.objects.latest("tree_size")  # covers the asset
    Anchor.objects.create(checkpoint=checkpoint, tree_size=checkpoint.tree_size, root_hash=checkpoint.root_hash,
                          chain_id=CHAIN_ID, sender=SENDER, tx_hash=TX_HASH, block_number=40, status="final",
                          next_attempt_at=timezone.now())
    bundle = json.loads(bundle_bytes(bundle_build(asset=scene.asset)))
    data = anchor_data(checkpoint.tree_size, bytes(checkpoint.root_hash))
    answers = {"eth_chainId": hex(CHAIN_ID), "eth_blockNumber": hex(45),
               "eth_getTransactionByHash": {"hash": TX_HASH, "from": SENDER, "input": "0x" + data.hex()},
               "eth_getTransactionReceipt": {"transactionHash": TX_HASH, "status": "0x1", "blockNumber": hex(40)}}
    return bundle, answers, checkpoint


def test_bundle_carries_the_anchor_of_its_checkpoint(anchored):
    bundle, _, checkpoint = anchored
    assert bundle["checkpoint"]["tree_size"] == checkpoint.tree_size
    assert bundle["anchor"] == {"chain_id": CHAIN_ID, "tx_hash": TX_HASH, "block_number": 40, "status": "final",
                                "sender": SENDER}


def test_anchor_found_on_chain(anchored, registry_key, tmp_path):
    bundle, answers, checkpoint = anchored
    with FakeNode() as node:
        node.answers = answers
        result = run_verifier(write(tmp_path, "b.json", bundle), "--key", registry_key, "--rpc", node.url)
    assert result.returncode == 0, result.stderr
    assert f"anchor: checkpoint size {checkpoint.tree_size} and root found on chain {CHAIN_ID} in block 40 " \
           f"(6 confirmations)" in result.stdout
    assert set(node.asked) == {"eth_chainId", "eth_getTransactionByHash", "eth_getTransactionReceipt",
                               "eth_blockNumber"}


def _other_root(answers, checkpoint):
    answers["eth_getTransactionByHash"]["input"] = "0x" + anchor_data(checkpoint.tree_size, b"\x09" * 32).hex()
    return "anchor.tx_hash: transaction anchors root 0909"


def _other_size(answers, checkpoint):
    data = anchor_data(checkpoint.tree_size - 1, bytes(checkpoint.root_hash))
    answers["eth_getTransactionByHash"]["input"] = "0x" + data.hex()
    return f"anchor.tx_hash: transaction anchors tree size {checkpoint.tree_size - 1}"


def _not_an_anchor(answers, checkpoint):
    answers["eth_getTransactionByHash"]["input"] = "0x" + (b"THA2" + bytes(40)).hex()
    return "anchor.tx_hash: transaction " + TX_HASH + " is not a checkpoint anchor"


def _failed(answers, checkpoint):
    answers["eth_getTransactionReceipt"]["status"] = "0x0"
    return "failed on chain (receipt status 0, want 1)"


def _other_chain(answers, checkpoint):
    answers["eth_chainId"] = hex(1)
    return f"anchor.chain_id: {CHAIN_ID}, but the RPC endpoint serves chain 1"


def _missing(answers, checkpoint):
    answers["eth_getTransactionByHash"] = None
    return f"anchor.tx_hash: no transaction {TX_HASH}"


def _other_sender(answers, checkpoint):
    answers["eth_getTransactionByHash"]["from"] = "0x" + "22" * 20
    return f"anchor.sender: {SENDER}, but transaction"


def _other_block(answers, checkpoint):
    answers["eth_getTransactionReceipt"]["blockNumber"] = hex(41)
    return "anchor.block_number: 40, but the transaction is in block 41"


@pytest.mark.parametrize("change", [
    pytest.param(_other_root, id="other-root"), pytest.param(_other_size, id="other-size"),
    pytest.param(_not_an_anchor, id="not-an-anchor"), pytest.param(_failed, id="receipt-failed"),
    pytest.param(_other_chain, id="other-chain"), pytest.param(_missing, id="no-transaction"),
    pytest.param(_other_sender, id="other-sender"), pytest.param(_other_block, id="other-block"),
])
def test_anchor_that_does_not_match_fails(anchored, registry_key, tmp_path, change):
    bundle, answers, checkpoint = anchored
    expected = change(answers, checkpoint)
    with FakeNode() as node:
        node.answers = answers
        result = run_verifier(write(tmp_path, "b.json", bundle), "--key", registry_key, "--rpc", node.url)
    assert result.returncode == 1, result.stdout
    assert expected in result.stderr


def test_bundle_without_anchor_fails_when_rpc_asked(bundle, registry_key, tmp_path):
    with FakeNode() as node:
        result = run_verifier(write(tmp_path, "b.json", bundle), "--key", registry_key, "--rpc", node.url)
    assert result.returncode == 1
    assert "INVALID: anchor: the bundle carries no anchor to check against the chain" in result.stderr


def test_unreachable_rpc_exits_2(anchored, registry_key, tmp_path):
    bundle, _, _ = anchored
    with FakeNode() as node:
        url = node.url
    result = run_verifier(write(tmp_path, "b.json", bundle), "--key", registry_key, "--rpc", url)
    assert result.returncode == 2 and "UNUSABLE: RPC eth_chainId" in result.stderr


def test_root_in_bundle_is_what_the_transaction_carries(anchored):
    bundle, answers, _ = anchored
    data = bytes.fromhex(answers["eth_getTransactionByHash"]["input"][2:])
    assert len(data) == 44 and data[:4] == b"THA1"
    assert int.from_bytes(data[4:12], "big") == bundle["checkpoint"]["tree_size"]
    assert data[12:] == base64.b64decode(bundle["checkpoint"]["root_hash"])
