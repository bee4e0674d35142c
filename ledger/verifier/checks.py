"""The checks a bank runs on a pledge bundle, offline. Pure: the standard library and `cryptography` only.

    verdict = verify_bundle(load_bundle(data), trusted_keys=["tanhui.example/registry+1a2b3c4d+AQ..."])
    print(verdict.summary())

`verify_bundle` raises BundleInvalidError naming the first field that fails (exit 1 of `python -m ledger.verifier`)
and BundleFormatError for input it cannot check at all (exit 2). The checks, in order (docs/bundle.md says why):

1. trusted keys parse; the bundle's own key list parses (`keys[i]`).
2. `checkpoint.note` is a C2SP checkpoint signed by a trusted key whose name is the checkpoint's origin;
   `checkpoint.tree_size` and `checkpoint.root_hash` repeat what it signs.
3. `entries` are in log order, `proofs[i]` belongs to `entries[i]`, every seq is inside the checkpoint.
4. each entry's hash is the RFC 6962 leaf hash of its RFC 8785 bytes; its signature verifies under its key;
   consecutive entries link through `prev_hash`; each inclusion proof leads to the checkpoint's root.
5. every entry concerns the asset or creates a party the bundle names; replaying the entries
   (`ledger.core.replay`) gives exactly the bundle's `asset`, `parties` and `pledges`.
6. `parcel_geometry` and `method` hash to what the entries recorded.
7. a trusted earlier checkpoint, when given, is consistent with the bundle's (proof from the bundle's
   `consistency` list or given separately).
8. with an RPC caller, the anchor transaction carries the checkpoint's size and root on the named chain.
"""

import base64
import binascii
import hashlib
import itertools
import json
import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation

from ledger.core import codec, merkle, note, replay
from ledger.core.anchor_format import ANCHOR_ON_CHAIN, anchor_data_parse
from ledger.core.canonical_json import CanonicalJSONError, canonical_json
from ledger.core.errors import EntryPayloadError, NoteError, ProofError
from ledger.verifier.errors import BundleFormatError, BundleInvalidError, RPCUnavailableError

BUNDLE_FORMAT = "tanhui-pledge-bundle/1"
MEDIA_TYPE = "application/vnd.tanhui.pledge-bundle+json"
TLOG_PROOF_HEADER = "c2sp.org/tlog-proof@v1"
ED25519_SIGNATURE_SIZE = 64
TOP_LEVEL = {"format": str, "asset": dict, "parties": dict, "pledges": list, "entries": list, "proofs": list,
             "checkpoint": dict, "consistency": list, "keys": list}

RPCCall = Callable[[str, list], object]  # (method, params) -> the JSON-RPC "result"


# --- reading -----------------------------------------------------------------------------------------------------


def _no_duplicate_keys(pairs: list[tuple[str, object]]) -> dict:
    result = {}
    for key, value in pairs:
        if key in result:
            raise BundleFormatError(f"duplicate JSON key {key!r}: a bundle must mean one thing to every parser")
        result[key] = value
    return result


# Arrays and objects inside one another: a bundle needs 6. Python's json parser recurses in C once per level, guarded
# only by the recursion limit, which a dependency of the service raises to 100,000: measured first, without recursion.
MAX_JSON_DEPTH = 64
_JSON_STRING = re.compile(r'"(?:[^"\\]++|\\.)*+(?:"|\\?\Z)', re.DOTALL)
_JSON_INNERMOST = re.compile(r"[\[{][^\[\]{}]*+[\]}]")
_JSON_NOT_BRACKET = re.compile(r"[^\[\]{}]++")
_JSON_STEP = {"[": 1, "{": 1, "]": -1, "}": -1}


def json_depth(text: str) -> int:
    """How deep arrays and objects nest in JSON `text`: exact for valid JSON, and never less than the depth a parser
    reaches before it finds a fault. Linear time, no recursion: strings blanked, the innermost arrays and objects
    collapsed twice, then the maximum of a running sum of +1 per opening and -1 per closing bracket. (The service
    has the same function in config.common.jsonlimits; the offline kit imports nothing of the service.)"""
    text = _JSON_STRING.sub("0", text)
    collapsed = 0
    for _ in range(2):
        text, removed = _JSON_INNERMOST.subn("0", text)
        if not removed:
            break
        collapsed += 1
    brackets = _JSON_NOT_BRACKET.sub("", text)
    return collapsed + max(0, max(itertools.accumulate(map(_JSON_STEP.__getitem__, brackets)), default=0))


def _finite_float(literal: str) -> float:
    value = float(literal)
    if math.isinf(value):
        raise BundleFormatError(f"not JSON a verifier can check: the number {literal[:40]} is beyond the range of a "
                                "double")
    return value


def _no_constant(name: str):
    raise BundleFormatError(f"not JSON: {name} is not a JSON value")


def parse_json(data: bytes | str) -> object:
    """Parse JSON strictly: BundleFormatError when it is not UTF-8 JSON, nests arrays and objects deeper than
    MAX_JSON_DEPTH (checked before parsing, whatever the recursion limit), has a number beyond a double, NaN or
    Infinity, or an object repeats a key anywhere."""
    try:
        text = data.decode("utf-8") if isinstance(data, bytes | bytearray) else data
    except UnicodeDecodeError as error:
        raise BundleFormatError(f"not JSON: {error}") from None
    depth = json_depth(text)
    if depth > MAX_JSON_DEPTH:
        raise BundleFormatError(f"not JSON a verifier can check: arrays and objects nest {depth} deep, at most "
                                f"{MAX_JSON_DEPTH} levels are accepted", depth=depth, max_depth=MAX_JSON_DEPTH)
    try:
        return json.loads(text, object_pairs_hook=_no_duplicate_keys, parse_float=_finite_float,
                          parse_constant=_no_constant)
    except ValueError as error:
        if isinstance(error, BundleFormatError):
            raise
        raise BundleFormatError(f"not JSON: {error}") from None


def load_bundle(data: bytes | str) -> dict:
    """Parse a bundle's JSON; raise BundleFormatError unless it is one object of format BUNDLE_FORMAT with the
    top-level members of the right JSON types. Duplicate object keys are refused anywhere in the document."""
    return check_format(parse_json(data))


def check_format(document: object) -> dict:
    """`document` if it is a bundle of this format version with the right top-level members; BundleFormatError
    otherwise."""
    if not isinstance(document, dict):
        raise BundleFormatError(f"a bundle is a JSON object, got {type(document).__name__}")
    got = document.get("format")
    if got != BUNDLE_FORMAT:
        raise BundleFormatError(f"format is {got!r}, want {BUNDLE_FORMAT!r}", format=got)
    for name, kind in TOP_LEVEL.items():
        if not isinstance(document.get(name), kind):
            raise BundleFormatError(f"{name} is missing or not a JSON {'object' if kind is dict else 'array'}")
    return document


def parse_trusted_keys(vkeys: Sequence[str]) -> list[note.Verifier]:
    """The verifier keys the bank trusts; BundleFormatError when none is given or one cannot be read."""
    if not vkeys:
        raise BundleFormatError("no trusted verifier key given; pass the registry's key (name+keyid+base64)")
    verifiers = []
    for vkey in vkeys:
        try:
            verifiers.append(note.parse_verifier_key(vkey))
        except NoteError as error:
            raise BundleFormatError(f"trusted key {vkey[:40]!r}: {error}") from None
    return verifiers


# --- small helpers -----------------------------------------------------------------------------------------------


def _fail(where: str, reason: str) -> BundleInvalidError:
    return BundleInvalidError(where, reason)


def _b64(where: str, value: object, size: int | None = merkle.HASH_SIZE) -> bytes:
    if not isinstance(value, str):
        raise _fail(where, f"want a base64 string, got {type(value).__name__}")
    try:
        raw = base64.b64decode(value.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError, ValueError):
        raise _fail(where, f"not standard base64: {value[:48]!r}") from None
    if size is not None and len(raw) != size:
        raise _fail(where, f"decodes to {len(raw)} bytes, want {size}")
    return raw


def _int(where: str, value: object, *, minimum: int = 0) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise _fail(where, f"want an integer >= {minimum}, got {value!r}")
    return value


def _text(where: str, value: object) -> str:
    if not isinstance(value, str):
        raise _fail(where, f"want a string, got {type(value).__name__}")
    return value


def _hex(data: bytes) -> str:
    return data.hex()


def entry_bytes(entry: Mapping) -> bytes:
    """An entry's bytes (`ledger.core.codec.entry_bytes`) from its bundle form, which holds prev_hash as base64,
    as the ledger API does."""
    prev_hash = base64.b64decode(entry["prev_hash"], validate=True)
    return codec.entry_bytes(seq=entry["seq"], kind=entry["kind"], payload=entry["payload"],
                             timestamp=entry["timestamp"], prev_hash=prev_hash)


def tlog_proof_text(bundle: Mapping, position: int) -> str:
    """`proofs[position]` with the bundle's checkpoint as a C2SP tlog-proof (c2sp.org/tlog-proof), for tools
    built for transparency logs: header, `index N`, one base64 hash per line, a blank line, the signed note."""
    proof = bundle["proofs"][position]
    lines = [TLOG_PROOF_HEADER, f"index {proof['index']}", *proof["hashes"]]
    return "\n".join(lines) + "\n\n" + bundle["checkpoint"]["note"]


# --- the verdict -------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Verdict:
    """What a valid bundle shows, for a one-paragraph summary."""

    asset_code: str
    holder_id: int
    holder_name: str
    asset_status: str
    active_pledges: tuple[dict, ...]
    tree_size: int
    root_hash_b64: str
    signed_by: str
    entry_count: int
    consistent_with: int | None = None
    anchor: str | None = None
    notes: tuple[str, ...] = field(default=())

    def summary(self) -> str:
        pledges = "no active pledge" if not self.active_pledges else "; ".join(
            f"pledge {p['id']} to party {p['pledgee']} for {p['amount']['amount']} {p['amount']['currency']}"
            for p in self.active_pledges)
        lines = [
            f"VALID: asset {self.asset_code}, held by {self.holder_name} (party {self.holder_id}), {self.asset_status}",
            f"active pledges: {len(self.active_pledges)} ({pledges})",
            f"{self.entry_count} entries proven in checkpoint of size {self.tree_size} (root {self.root_hash_b64}), "
            f"signed by {self.signed_by}",
        ]
        if self.consistent_with is not None:
            lines.append(f"consistent with the trusted checkpoint of size {self.consistent_with}")
        lines.append(self.anchor or "anchor: not checked (no --rpc)")
        lines.extend(self.notes)
        return "\n".join(lines)

    def as_dict(self) -> dict:
        return {"valid": True, "asset": self.asset_code, "holder": {"id": self.holder_id, "name": self.holder_name},
                "status": self.asset_status, "active_pledges": list(self.active_pledges),
                "tree_size": self.tree_size, "root_hash": self.root_hash_b64, "signed_by": self.signed_by,
                "entries": self.entry_count, "consistent_with": self.consistent_with, "anchor": self.anchor,
                "notes": list(self.notes), "summary": self.summary()}


# --- the checks --------------------------------------------------------------------------------------------------


def _bundle_keys(bundle: Mapping, trusted: list[note.Verifier]) -> dict[str, note.Verifier]:
    """Entry-signing keys by hex key ID: the trusted keys, then the bundle's own list (current and retired)."""
    by_id: dict[str, note.Verifier] = {v.key_id_hex: v for v in trusted}
    for position, item in enumerate(bundle["keys"]):
        where = f"keys[{position}]"
        if not isinstance(item, dict):
            raise _fail(where, "want an object with vkey and status")
        try:
            verifier = note.parse_verifier_key(_text(f"{where}.vkey", item.get("vkey")))
        except NoteError as error:
            raise _fail(f"{where}.vkey", str(error)) from None
        known = by_id.get(verifier.key_id_hex)
        if known is not None and known != verifier:
            raise _fail(f"{where}.vkey", f"key ID {verifier.key_id_hex} names another key than the trusted one")
        by_id.setdefault(verifier.key_id_hex, verifier)
    return by_id


def _checkpoint(bundle: Mapping, trusted: list[note.Verifier]) -> tuple[note.Checkpoint, str]:
    checkpoint = bundle["checkpoint"]
    text = _text("checkpoint.note", checkpoint.get("note"))
    try:
        _body, signatures = note.parse_note(text)
    except NoteError as error:
        raise _fail("checkpoint.note", str(error)) from None
    known = {(v.name, v.key_id) for v in trusted}
    if not any((s.name, s.key_id) in known for s in signatures):
        names = ", ".join(f"{s.name}+{s.key_id.hex()}" for s in signatures) or "none"
        trusted_names = ", ".join(f"{v.name}+{v.key_id_hex}" for v in trusted)
        raise _fail("checkpoint.note", f"signature by unknown key (signed by {names}; trusted: {trusted_names})")
    try:
        opened = note.open_note(text, trusted)
    except NoteError as error:
        raise _fail("checkpoint.note", f"signature does not verify: {error}") from None
    try:
        body = note.parse_checkpoint(opened.text)
    except NoteError as error:
        raise _fail("checkpoint.note", str(error)) from None
    signer = opened.verified[0]
    if body.origin != signer.name:
        raise _fail("checkpoint.note", f"origin {body.origin!r} is not the name of the key that signed it "
                                       f"({signer.name!r})")
    size = _int("checkpoint.tree_size", checkpoint.get("tree_size"))
    if size != body.tree_size:
        raise _fail("checkpoint.tree_size", f"{size} is not the signed checkpoint's tree size {body.tree_size}")
    root_hash = _b64("checkpoint.root_hash", checkpoint.get("root_hash"))
    if root_hash != body.root_hash:
        raise _fail("checkpoint.root_hash", f"{checkpoint['root_hash']} is not the signed checkpoint's root "
                                            f"{base64.b64encode(body.root_hash).decode()}")
    return body, f"{signer.name}+{signer.key_id.hex()}"


def _entries_in_order(bundle: Mapping, tree_size: int) -> list[int]:
    entries, proofs = bundle["entries"], bundle["proofs"]
    if not entries:
        raise _fail("entries", "empty; a bundle proves at least the asset's registration")
    if len(proofs) != len(entries):
        raise _fail("proofs", f"{len(proofs)} proofs for {len(entries)} entries; want one per entry")
    seqs = []
    for position, entry in enumerate(entries):
        if not isinstance(entry, dict):
            raise _fail(f"entries[{position}]", "want an object")
        seq = _int(f"entries[{position}].seq", entry.get("seq"))
        if seqs and seq <= seqs[-1]:
            raise _fail(f"entries[{position}].seq", f"{seq} does not come after entries[{position - 1}].seq "
                                                    f"{seqs[-1]}; entries must be in log order, each once")
        if seq >= tree_size:
            raise _fail(f"entries[{position}].seq", f"{seq} is not in the checkpoint's tree of size {tree_size}")
        proof = proofs[position]
        if not isinstance(proof, dict):
            raise _fail(f"proofs[{position}]", "want an object with index and hashes")
        index = _int(f"proofs[{position}].index", proof.get("index"))
        if index != seq:
            raise _fail(f"proofs[{position}].index", f"{index} is not entries[{position}].seq {seq}")
        seqs.append(seq)
    return seqs


def _entry(position: int, entry: Mapping, keys: Mapping[str, note.Verifier]) -> bytes:
    where = f"entries[{position}]"
    seq = entry["seq"]
    _text(f"{where}.kind", entry.get("kind"))
    _text(f"{where}.timestamp", entry.get("timestamp"))
    if not isinstance(entry.get("payload"), dict):
        raise _fail(f"{where}.payload", "want a JSON object")
    _b64(f"{where}.prev_hash", entry.get("prev_hash"))
    stated = _b64(f"{where}.hash", entry.get("hash"))
    try:
        leaf = merkle.leaf_hash(entry_bytes(entry))
    except (CanonicalJSONError, EntryPayloadError) as error:
        raise _fail(f"{where}.payload", f"cannot be canonicalised (seq {seq}): {error}") from None
    if leaf != stated:
        raise _fail(where, f"entry hash does not match (seq {seq}): its seq, kind, payload, timestamp and prev_hash "
                           f"hash to {_hex(leaf)}, {where}.hash is {_hex(stated)}")
    key_id = _text(f"{where}.key_id", entry.get("key_id"))
    verifier = keys.get(key_id)
    if verifier is None:
        raise _fail(f"{where}.key_id", f"unknown key {key_id} (seq {seq}); the trusted keys and the bundle's keys "
                                       f"are {', '.join(sorted(keys))}")
    signature = _b64(f"{where}.signature", entry.get("signature"), ED25519_SIGNATURE_SIZE)
    if not verifier.verify(leaf, signature):
        raise _fail(f"{where}.signature", f"does not verify under key {verifier.name}+{key_id} (seq {seq})")
    return leaf


def _inclusion(position: int, seq: int, leaf: bytes, proof: Mapping, checkpoint: note.Checkpoint) -> None:
    where = f"proofs[{position}]"
    hashes = proof.get("hashes")
    if not isinstance(hashes, list):
        raise _fail(f"{where}.hashes", "want an array of base64 hashes")
    decoded = [_b64(f"{where}.hashes[{i}]", h) for i, h in enumerate(hashes)]
    try:
        got = merkle.root_from_inclusion_proof(seq, checkpoint.tree_size, leaf, decoded)
    except ProofError as error:
        raise _fail(f"{where}.hashes", str(error)) from None
    if got != checkpoint.root_hash:
        raise _fail(where, f"inclusion proof of entries[{position}] (seq {seq}) does not lead to the checkpoint "
                           f"root: it gives {_hex(got)}, the checkpoint of size {checkpoint.tree_size} has "
                           f"{_hex(checkpoint.root_hash)}")


def _bundle_difference(stated: object, replayed: object, where: str) -> str | None:
    return replay.first_difference(stated, replayed, where, stated_in="the bundle", stated_says="the bundle says",
                                   replayed_in="the replay of its entries")


def _projection(bundle: Mapping) -> dict:
    asset = bundle["asset"]
    code = _text("asset.code", asset.get("code"))
    wanted_parties = set(bundle["parties"])
    for position, entry in enumerate(bundle["entries"]):
        payload = entry["payload"]
        if entry["kind"] == "party.create" and str(payload.get("party")) in wanted_parties:
            continue
        if payload.get("asset") != code:
            raise _fail(f"entries[{position}]", f"{entry['kind']} (seq {entry['seq']}) concerns neither asset {code} "
                                                f"nor a party in the bundle's parties")
    try:
        state = replay.replay(bundle["entries"])
    except replay.ReplayError as error:
        position = next((i for i, e in enumerate(bundle["entries"]) if e["seq"] == error.seq), None)
        raise _fail(f"entries[{position}]" if position is not None else "entries",
                    f"the replay refuses it: {error}") from None
    replayed_asset = state["assets"].get(code)
    if replayed_asset is None:
        raise _fail("asset.code", f"no asset.register entry for {code} among the entries")
    problem = (_bundle_difference(asset, replayed_asset, "asset")
               or _bundle_difference(bundle["parties"], state["parties"], "parties")
               or _bundle_difference(bundle["pledges"], sorted(
                   (p for p in state["pledges"].values() if p["asset"] == code), key=lambda p: p["id"]), "pledges"))
    if problem:
        where, _, reason = problem.partition(": ")
        raise _fail(where, reason)
    holder = str(replayed_asset["holder"])
    if holder not in state["parties"]:
        raise _fail("parties", f"the holder, party {holder}, is not among them with its party.create entry")
    return state


def _facts(bundle: Mapping) -> None:
    asset = bundle["asset"]
    geometry = bundle.get("parcel_geometry")
    if geometry is not None:
        try:
            digest = hashlib.sha256(canonical_json(geometry)).hexdigest()
        except CanonicalJSONError as error:
            raise _fail("parcel_geometry", f"cannot be canonicalised: {error}") from None
        want = asset["parcel"]["geometry_sha256"]
        if digest != want:
            raise _fail("parcel_geometry", f"sha256 of its RFC 8785 form is {digest}, the asset.register entry "
                                           f"recorded {want}")
    method = bundle.get("method")
    valuation = asset.get("valuation")
    if method is not None:
        if valuation is None:
            raise _fail("method", "given, but the asset has no valuation")
        if not isinstance(method, dict) or set(method) != {"kind", "parameters"}:
            raise _fail("method", "want an object with exactly kind and parameters")
        try:
            digest = hashlib.sha256(canonical_json(method)).hexdigest()
        except CanonicalJSONError as error:
            raise _fail("method", f"cannot be canonicalised: {error}") from None
        if digest != valuation["method_sha256"]:
            raise _fail("method", f"sha256 of its RFC 8785 form is {digest}, the asset.value entry recorded "
                                  f"method_sha256 {valuation['method_sha256']}")


def _consistency(bundle: Mapping, checkpoint: note.Checkpoint, trusted_note: str,
                 trusted: list[note.Verifier], extra_proof: Mapping | None) -> int:
    try:
        opened = note.open_note(trusted_note, trusted)
        earlier = note.parse_checkpoint(opened.text)
    except NoteError as error:
        raise BundleFormatError(f"trusted checkpoint: {error}") from None
    if earlier.origin != checkpoint.origin:
        raise _fail("checkpoint.note", f"origin {checkpoint.origin!r} is another log than the trusted checkpoint's "
                                       f"{earlier.origin!r}")
    small, large = sorted([(earlier.tree_size, earlier.root_hash, "trusted"), (checkpoint.tree_size,
                                                                              checkpoint.root_hash, "bundle")])
    if small[0] == large[0]:
        if small[1] != large[1]:
            raise _fail("checkpoint", f"root {_hex(checkpoint.root_hash)} differs from the trusted checkpoint's "
                                      f"{_hex(earlier.root_hash)} at the same size {earlier.tree_size}: the log "
                                      f"forked")
        return earlier.tree_size
    candidates: list[tuple[str, Mapping]] = []
    if extra_proof is not None:
        candidates.append(("consistency proof", extra_proof))
    if large[2] == "bundle":
        candidates.extend((f"consistency[{i}]", p) for i, p in enumerate(bundle["consistency"])
                          if isinstance(p, dict) and p.get("old_size") == small[0])
    for where, proof in candidates:
        first = proof.get("old_size", proof.get("first"))
        second = proof.get("new_size", proof.get("second", checkpoint.tree_size))
        if (first, second) != (small[0], large[0]):
            continue
        hashes = proof.get("hashes", proof.get("proof"))
        if not isinstance(hashes, list):
            raise _fail(f"{where}.hashes", "want an array of base64 hashes")
        decoded = [_b64(f"{where}.hashes[{i}]", h) for i, h in enumerate(hashes)]
        try:
            got_old, got_new = merkle.roots_from_consistency_proof(small[0], large[0], decoded, small[1])
        except ProofError as error:
            raise _fail(f"{where}.hashes", str(error)) from None
        if got_old != small[1] or got_new != large[1]:
            raise _fail("checkpoint", f"not consistent with the trusted checkpoint of size {earlier.tree_size}: "
                                      f"{where} from size {small[0]} to {large[0]} gives roots {_hex(got_old)} "
                                      f"and {_hex(got_new)}, want {_hex(small[1])} and {_hex(large[1])}")
        return earlier.tree_size
    raise _fail("consistency", f"no proof that the bundle's checkpoint (size {checkpoint.tree_size}) is consistent "
                               f"with the trusted one (size {earlier.tree_size}); fetch "
                               f"/api/ledger/consistency/?first={small[0]}&second={large[0]} and pass it with "
                               f"--consistency-proof")


def _quantity(where: str, value: object) -> int:
    if not isinstance(value, str) or not value.startswith("0x"):
        raise RPCUnavailableError(f"{where}: the RPC endpoint answered {value!r}, want a 0x-prefixed quantity")
    return int(value, 16)


def _anchor(bundle: Mapping, checkpoint: note.Checkpoint, rpc: RPCCall) -> str:
    anchor = bundle.get("anchor")
    if not isinstance(anchor, dict):
        raise _fail("anchor", "the bundle carries no anchor to check against the chain")
    if anchor.get("status") not in ANCHOR_ON_CHAIN or not anchor.get("tx_hash"):
        raise _fail("anchor.status", f"{anchor.get('status')!r}: no transaction on chain to check yet")
    chain_id = _int("anchor.chain_id", anchor.get("chain_id"), minimum=1)
    tx_hash = _text("anchor.tx_hash", anchor.get("tx_hash"))
    served_chain = _quantity("eth_chainId", rpc("eth_chainId", []))
    if served_chain != chain_id:
        raise _fail("anchor.chain_id", f"{chain_id}, but the RPC endpoint serves chain {served_chain}")
    transaction = rpc("eth_getTransactionByHash", [tx_hash])
    if transaction is None:
        raise _fail("anchor.tx_hash", f"no transaction {tx_hash} on chain {chain_id}")
    if not isinstance(transaction, dict):
        raise RPCUnavailableError(f"eth_getTransactionByHash answered {transaction!r}, want an object")
    sender = anchor.get("sender")
    if sender and str(transaction.get("from", "")).lower() != sender.lower():
        raise _fail("anchor.sender", f"{sender}, but transaction {tx_hash} was sent by {transaction.get('from')}")
    data_hex = transaction.get("input", transaction.get("data"))
    try:
        data = bytes.fromhex(str(data_hex).removeprefix("0x"))
        size, root_hash = anchor_data_parse(data)
    except ValueError as error:
        raise _fail("anchor.tx_hash", f"transaction {tx_hash} is not a checkpoint anchor: {error}") from None
    if size != checkpoint.tree_size:
        raise _fail("anchor.tx_hash", f"transaction anchors tree size {size}, the checkpoint has "
                                      f"{checkpoint.tree_size}")
    if root_hash != checkpoint.root_hash:
        raise _fail("anchor.tx_hash", f"transaction anchors root {_hex(root_hash)}, the checkpoint has "
                                      f"{_hex(checkpoint.root_hash)}")
    receipt = rpc("eth_getTransactionReceipt", [tx_hash])
    if receipt is None:
        raise _fail("anchor.tx_hash", f"transaction {tx_hash} is not in a block yet (no receipt)")
    if not isinstance(receipt, dict):
        raise RPCUnavailableError(f"eth_getTransactionReceipt answered {receipt!r}, want an object")
    status = _quantity("receipt status", receipt.get("status"))
    if status != 1:
        raise _fail("anchor.tx_hash", f"transaction {tx_hash} failed on chain (receipt status {status}, want 1)")
    block = _quantity("receipt blockNumber", receipt.get("blockNumber"))
    stated_block = anchor.get("block_number")
    if stated_block is not None and stated_block != block:
        raise _fail("anchor.block_number", f"{stated_block}, but the transaction is in block {block}")
    head = _quantity("eth_blockNumber", rpc("eth_blockNumber", []))
    return (f"anchor: checkpoint size {size} and root found on chain {chain_id} in block {block} "
            f"({head - block + 1} confirmations), tx {tx_hash}")


def _decimal(value: str) -> Decimal:
    try:
        return Decimal(value)
    except (InvalidOperation, TypeError):
        return Decimal(0)


def verify_bundle(bundle: Mapping, *, trusted_keys: Sequence[str], trusted_checkpoint: str | None = None,
                  consistency_proof: Mapping | None = None, rpc: RPCCall | None = None) -> Verdict:
    """Run every check on a loaded bundle (see the module docstring); return the Verdict of a valid one.

    `trusted_keys` are verifier key strings the bank trusts (at least one); `trusted_checkpoint` a signed note it
    saw before; `consistency_proof` a {"first", "second", "proof"} object from /api/ledger/consistency/;
    `rpc(method, params)` answers JSON-RPC calls for the anchor check. Raises BundleInvalidError at the first
    failing check, BundleFormatError for unusable input, RPCUnavailableError when the chain cannot be asked.
    """
    check_format(bundle)
    trusted = parse_trusted_keys(trusted_keys)
    keys = _bundle_keys(bundle, trusted)
    checkpoint, signed_by = _checkpoint(bundle, trusted)
    seqs = _entries_in_order(bundle, checkpoint.tree_size)
    entries, proofs = bundle["entries"], bundle["proofs"]
    leaves = []
    for position, entry in enumerate(entries):
        leaf = _entry(position, entry, keys)
        if position and seqs[position] == seqs[position - 1] + 1:
            prev = _b64(f"entries[{position}].prev_hash", entry["prev_hash"])
            if prev != leaves[-1]:
                raise _fail(f"entries[{position}].prev_hash", f"{_hex(prev)} is not the hash of seq "
                                                              f"{seqs[position - 1]}, {_hex(leaves[-1])}")
        _inclusion(position, seqs[position], leaf, proofs[position], checkpoint)
        leaves.append(leaf)
    state = _projection(bundle)
    _facts(bundle)
    consistent_with = None
    if trusted_checkpoint is not None:
        consistent_with = _consistency(bundle, checkpoint, trusted_checkpoint, trusted, consistency_proof)
    anchor_line = _anchor(bundle, checkpoint, rpc) if rpc is not None else None
    notes = []
    if rpc is None and isinstance(bundle.get("anchor"), dict):
        a = bundle["anchor"]
        notes.append(f"the bundle names anchor {a.get('tx_hash')} on chain {a.get('chain_id')} "
                     f"({a.get('status')}); pass --rpc to check it")
    asset = bundle["asset"]
    holder = state["parties"][str(asset["holder"])]
    active = tuple(p for p in bundle["pledges"] if p["status"] == replay.ACTIVE)
    total = sum((_decimal(p["amount"]["amount"]) for p in active), Decimal(0))
    if active:
        notes.append(f"active pledges total {total} {active[0]['amount']['currency']}")
    return Verdict(asset_code=asset["code"], holder_id=asset["holder"], holder_name=holder["name"],
                   asset_status=asset["status"], active_pledges=active, tree_size=checkpoint.tree_size,
                   root_hash_b64=base64.b64encode(checkpoint.root_hash).decode(), signed_by=signed_by,
                   entry_count=len(entries), consistent_with=consistent_with, anchor=anchor_line, notes=tuple(notes))
