"""Anchoring on an in-process chain (eth-tester on py-evm): send, read back, confirm, and survive faults."""

import socket
from datetime import UTC, datetime, timedelta

import pytest
from eth_account import Account

from ledger.anchoring import chain
from ledger.anchoring import services as anchor_services
from ledger.anchoring.services import anchor_latest_checkpoint, anchor_send, anchor_track, anchoring_tick
from ledger.models import Anchor
from tests.ledger.anchoring.conftest import mine

pytestmark = pytest.mark.django_db

T0 = datetime(2026, 3, 1, 8, 0, 0, tzinfo=UTC)


@pytest.fixture
def clock(monkeypatch):
    """A settable clock for the services (and auto_now fields): clock.now, clock.advance(seconds)."""

    class Clock:
        now = T0

        def advance(self, seconds: float) -> None:
            self.now += timedelta(seconds=seconds)

    fake = Clock()
    monkeypatch.setattr("django.utils.timezone.now", lambda: fake.now)
    return fake


def only_anchor() -> Anchor:
    [anchor] = Anchor.objects.all()
    return anchor


def test_anchor_is_sent_and_read_back(evm, checkpoint_of, anchor_key):
    account, _ = anchor_key
    checkpoint = checkpoint_of(5)
    result = anchoring_tick()
    assert result == {"status": "on", "created": 5, "sent": 1, "tracked": 0}

    anchor = only_anchor()
    assert anchor.checkpoint_id == checkpoint.pk
    assert (anchor.tree_size, bytes(anchor.root_hash)) == (5, bytes(checkpoint.root_hash))
    assert anchor.status == "sent"
    assert anchor.reason == ""
    assert anchor.attempts == 1
    assert anchor.chain_id == evm.eth.chain_id
    assert anchor.sender == account.address
    assert anchor.nonce == 0
    assert anchor.tx_hash.startswith("0x") and len(anchor.tx_hash) == 66

    tx = evm.eth.get_transaction(anchor.tx_hash)
    assert chain.anchor_data_parse(bytes(tx["input"])) == (5, bytes(checkpoint.root_hash))
    assert chain.anchor_read(evm, anchor.tx_hash) == (checkpoint.tree_size, bytes(checkpoint.root_hash))
    assert tx["from"] == account.address
    assert tx["to"] == account.address  # no ANCHOR_TO: the sender's own address
    assert tx["value"] == 0
    assert tx["nonce"] == 0


def test_gas_is_set_explicitly_and_is_enough(evm, checkpoint_of):
    checkpoint_of(5)
    anchoring_tick()
    anchor = only_anchor()
    tx = evm.eth.get_transaction(anchor.tx_hash)
    receipt = evm.eth.get_transaction_receipt(anchor.tx_hash)
    data = chain.anchor_data(anchor.tree_size, bytes(anchor.root_hash))
    assert tx["gas"] == chain.intrinsic_gas(data) + 2000
    assert receipt["status"] == 1
    assert receipt["gasUsed"] == chain.intrinsic_gas(data)
    assert receipt["gasUsed"] <= tx["gas"]
    # Why the limit is never estimated: eth_estimateGas answers less than the transaction uses (EIP-7623 floor).
    estimate = evm.eth.estimate_gas({"from": anchor.sender, "to": anchor.sender, "data": data})
    assert estimate < receipt["gasUsed"]


def test_anchor_to_a_configured_address(evm, checkpoint_of, settings):
    settings.ANCHOR_TO = "0x000000000000000000000000000000000000dEaD"
    checkpoint_of(3)
    anchoring_tick()
    tx = evm.eth.get_transaction(only_anchor().tx_hash)
    assert tx["to"] == "0x000000000000000000000000000000000000dEaD"


def test_final_after_the_configured_confirmations(evm, checkpoint_of, settings):
    settings.ANCHOR_CONFIRMATIONS = 3
    checkpoint_of(4)
    anchoring_tick()
    anchor = only_anchor()
    mined_in = evm.eth.get_transaction_receipt(anchor.tx_hash)["blockNumber"]
    assert evm.eth.block_number == mined_in  # 1 confirmation: its own block

    anchoring_tick()
    anchor.refresh_from_db()
    assert (anchor.status, anchor.block_number, anchor.final_at) == ("sent", mined_in, None)

    mine(evm, 1)  # 2 confirmations
    anchoring_tick()
    anchor.refresh_from_db()
    assert anchor.status == "sent"

    mine(evm, 1)  # 3 confirmations
    anchoring_tick()
    anchor.refresh_from_db()
    assert (anchor.status, anchor.block_number) == ("final", mined_in)
    assert anchor.final_at is not None


def test_one_anchor_per_checkpoint_and_a_new_one_only_when_the_tree_grew(evm, checkpoint_of, settings):
    settings.ANCHOR_CONFIRMATIONS = 1
    checkpoint_of(2)
    assert anchoring_tick()["created"] == 2
    assert anchor_latest_checkpoint() is None  # already anchored
    checkpoint_of(3)
    assert anchor_latest_checkpoint() is None  # the first is still in flight (sent, not final)
    assert anchoring_tick() == {"status": "on", "created": 3, "sent": 1, "tracked": 1}  # the first became final
    assert Anchor.objects.get(tree_size=2).status == "final"
    assert anchoring_tick() == {"status": "on", "created": None, "sent": 0, "tracked": 1}
    assert list(Anchor.objects.values_list("tree_size", "status", "nonce")) == [(2, "final", 0), (3, "final", 1)]


def test_nothing_to_anchor_without_a_checkpoint(evm):
    assert anchoring_tick() == {"status": "on", "created": None, "sent": 0, "tracked": 0}
    assert Anchor.objects.count() == 0


# --- faults ---------------------------------------------------------------------------------------------------


def test_rpc_down_leaves_the_anchor_pending_and_backs_off_exponentially(evm, checkpoint_of, settings, clock):
    checkpoint_of(5)
    settings.ANCHOR_RPC_URL = "http://127.0.0.1:1/"  # nothing listens on port 1: connection refused
    delays_s = []
    for _ in range(4):
        anchoring_tick()
        anchor = only_anchor()
        assert anchor.status == "pending"
        assert anchor.reason.startswith("RPC unreachable: ConnectionError: "), anchor.reason
        assert anchor.tx_hash == ""
        delays_s.append((anchor.next_attempt_at - clock.now).total_seconds())
        anchoring_tick()  # not due yet: nothing is tried
        assert only_anchor().attempts == anchor.attempts
        clock.advance(delays_s[-1])
    assert delays_s == [30, 60, 120, 240]
    assert (anchor.attempts, anchor.faults) == (4, 4)

    settings.ANCHOR_RPC_URL = "tester://anchor-tests"  # the node is back
    anchoring_tick()
    anchor = only_anchor()
    assert (anchor.status, anchor.reason, anchor.faults, anchor.attempts) == ("sent", "", 0, 5)
    assert chain.anchor_read(evm, anchor.tx_hash)[0] == 5


def test_backoff_stops_growing_at_the_maximum(settings):
    settings.ANCHOR_RETRY_BASE_S = 30
    settings.ANCHOR_RETRY_MAX_S = 3600
    assert [anchor_services.retry_delay_s(n) for n in (1, 2, 3, 7, 8, 9, 200)] == [30, 60, 120, 1920, 3600, 3600,
                                                                                   3600]


@pytest.fixture
def silent_server():
    """A TCP port that accepts connections and never answers: every RPC call times out."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    yield f"http://127.0.0.1:{server.getsockname()[1]}/"
    server.close()


def test_rpc_timeout_leaves_the_anchor_pending_with_the_reason(evm, checkpoint_of, settings, clock, silent_server):
    settings.ANCHOR_RPC_URL = silent_server
    settings.ANCHOR_RPC_TIMEOUT_S = 1
    checkpoint_of(5)
    anchoring_tick()
    anchor = only_anchor()
    assert anchor.status == "pending"
    assert anchor.reason.startswith("RPC timeout: "), anchor.reason
    assert anchor.next_attempt_at == clock.now + timedelta(seconds=30)


def test_broadcast_that_timed_out_but_arrived_is_not_sent_twice(evm, checkpoint_of, monkeypatch, clock, anchor_key):
    account, _ = anchor_key
    real_send = chain.anchor_transaction_send

    def send_then_time_out(w3, signed):
        real_send(w3, signed)
        raise TimeoutError("read timed out after the node accepted the transaction")

    monkeypatch.setattr(chain, "anchor_transaction_send", send_then_time_out)
    checkpoint_of(5)
    anchoring_tick()
    anchor = only_anchor()
    assert anchor.status == "pending"
    assert anchor.reason == ("RPC timeout: TimeoutError: read timed out after the node accepted the transaction")
    first_hash = anchor.tx_hash

    clock.advance(30)
    anchoring_tick()
    anchor = only_anchor()
    assert (anchor.status, anchor.tx_hash, anchor.reason) == ("sent", first_hash, "")
    assert evm.eth.get_transaction_count(account.address) == 1  # one transaction, not two


def test_insufficient_funds_is_recorded_as_the_reason(evm, checkpoint_of, settings, tmp_path, clock):
    poor = Account.create()
    key_file = tmp_path / "poor.key"
    key_file.write_text(poor.key.hex())
    settings.ANCHOR_KEY_FILE = str(key_file)
    checkpoint_of(5)
    anchoring_tick()
    anchor = only_anchor()
    assert anchor.status == "pending"
    assert anchor.reason.startswith("insufficient funds for gas: "), anchor.reason
    assert anchor.sender == poor.address
    assert anchor.next_attempt_at == clock.now + timedelta(seconds=30)

    from tests.ledger.anchoring.conftest import fund

    fund(evm, poor.address)
    clock.advance(30)
    anchoring_tick()
    assert only_anchor().status == "sent"


def test_nonce_clash_is_retried_with_the_next_nonce(evm, checkpoint_of, monkeypatch, clock, anchor_key):
    account, _ = anchor_key
    real_send = chain.anchor_transaction_send
    clashes = []

    def someone_else_uses_the_nonce_first(w3, signed):
        if not clashes:
            other = account.sign_transaction({"chainId": w3.eth.chain_id, "nonce": signed.nonce, "to": account.address,
                                              "value": 1, "gas": 21000, "gasPrice": 10**10})
            w3.eth.send_raw_transaction(other.raw_transaction)
            clashes.append(signed.nonce)
        return real_send(w3, signed)

    monkeypatch.setattr(chain, "anchor_transaction_send", someone_else_uses_the_nonce_first)
    checkpoint_of(5)
    anchoring_tick()
    anchor = only_anchor()
    assert anchor.status == "pending"
    assert anchor.reason.startswith("nonce clash: "), anchor.reason

    clock.advance(30)
    anchoring_tick()
    anchor = only_anchor()
    assert (anchor.status, anchor.nonce, clashes) == ("sent", 1, [0])
    assert chain.anchor_read(evm, anchor.tx_hash) == (5, bytes(anchor.root_hash))


def test_unreadable_key_file_is_a_configuration_reason(evm, checkpoint_of, settings, tmp_path):
    settings.ANCHOR_KEY_FILE = str(tmp_path / "missing.key")
    checkpoint_of(5)
    anchoring_tick()
    anchor = only_anchor()
    assert anchor.status == "pending"
    assert anchor.reason == f"configuration: ANCHOR_KEY_FILE {tmp_path / 'missing.key'} does not exist"


def test_gas_limit_set_too_low_is_a_configuration_reason(evm, checkpoint_of, settings):
    settings.ANCHOR_GAS_LIMIT = 21620  # about what eth_estimateGas answers; the transaction uses more
    checkpoint_of(5)
    anchoring_tick()
    anchor = only_anchor()
    data = chain.anchor_data(anchor.tree_size, bytes(anchor.root_hash))
    # The root's bytes vary from run to run, and so does the calldata floor (EIP-7623): 21000 + 10 per zero byte
    # + 40 per non-zero byte.
    used = 21000 + 10 * data.count(0) + 40 * (len(data) - data.count(0))
    assert anchor.reason == f"configuration: gas limit 21620 is below the {used} gas the anchor transaction uses"


# --- dropped and reorganised transactions ---------------------------------------------------------------------


def test_reorganised_out_transaction_is_sent_again_with_a_fresh_nonce(evm, checkpoint_of, anchor_key, settings):
    account, _ = anchor_key
    settings.ANCHOR_CONFIRMATIONS = 3
    tester = evm.provider.ethereum_tester
    checkpoint_of(5)
    before = tester.take_snapshot()
    anchoring_tick()
    anchoring_tick()
    anchor = only_anchor()
    first_hash, first_block = anchor.tx_hash, anchor.block_number
    assert (anchor.status, anchor.nonce) == ("sent", 0)
    assert first_block is not None

    tester.revert_to_snapshot(before)  # the block with the anchor is gone ...
    other = account.sign_transaction({"chainId": evm.eth.chain_id, "nonce": 0, "to": account.address, "value": 1,
                                      "gas": 21000, "gasPrice": 10**10})
    evm.eth.send_raw_transaction(other.raw_transaction)  # ... and the new chain spent nonce 0 on something else
    assert not chain.transaction_known(evm, first_hash)

    anchor_track(anchor=anchor)
    anchor.refresh_from_db()
    assert anchor.status == "pending"
    assert anchor.reason == f"transaction {first_hash} (nonce 0) no longer on chain after block {first_block}; " \
                            "sending again"
    assert (anchor.tx_hash, anchor.block_number) == ("", None)

    anchor_send(anchor=anchor)
    anchor.refresh_from_db()
    assert (anchor.status, anchor.nonce, anchor.attempts, anchor.reason) == ("sent", 1, 2, "")
    assert anchor.tx_hash != first_hash
    mine(evm, 2)
    anchoring_tick()
    anchor.refresh_from_db()
    assert anchor.status == "final"
    assert chain.anchor_read(evm, anchor.tx_hash) == (5, bytes(anchor.root_hash))


def test_transaction_dropped_from_the_pool_is_sent_again(evm, checkpoint_of, monkeypatch, clock, settings):
    settings.ANCHOR_DROPPED_AFTER_S = 600
    real_send = chain.anchor_transaction_send
    monkeypatch.setattr(chain, "anchor_transaction_send", lambda w3, signed: signed.tx_hash)  # the node loses it
    checkpoint_of(5)
    anchoring_tick()
    anchor = only_anchor()
    lost_hash = anchor.tx_hash
    assert anchor.status == "sent"

    clock.advance(599)
    anchoring_tick()  # not found, but perhaps not yet propagated: keep waiting
    assert only_anchor().status == "sent"

    monkeypatch.setattr(chain, "anchor_transaction_send", real_send)
    clock.advance(1)
    anchoring_tick()  # tracked: dropped -> pending, then sent again in the same tick
    anchor = only_anchor()
    assert (anchor.status, anchor.attempts) == ("sent", 2)
    assert anchor.tx_hash == lost_hash  # same nonce, same fees, same bytes: the node never had it
    assert chain.anchor_read(evm, anchor.tx_hash) == (5, bytes(anchor.root_hash))


def test_failed_receipt_marks_the_anchor_failed(evm, checkpoint_of, monkeypatch):
    checkpoint_of(5)
    anchoring_tick()
    anchor = only_anchor()
    real_receipt = evm.eth.get_transaction_receipt(anchor.tx_hash)
    monkeypatch.setattr(type(evm.eth), "get_transaction_receipt", lambda self, tx_hash: {**real_receipt, "status": 0})
    anchoring_tick()
    anchor.refresh_from_db()
    assert anchor.status == "failed"
    assert anchor.reason == (f"transaction {anchor.tx_hash} failed in block {real_receipt['blockNumber']} "
                             f"(receipt status 0, gas used {real_receipt['gasUsed']})")
