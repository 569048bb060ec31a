"""Accounts: the coordinator's signer and one account per node, with keys that never show themselves.

A :class:`Signer` holds a private key and signs locally (the key never goes to a node over RPC);
its repr, str and pickling reveal only the address. :class:`NodeAccounts` says which account each
node uses: derived deterministically from a seed by default (on the embedded chain the seed is a
public constant, so node ``i`` has the same address in every run), or given explicitly for a real
network, as keys (the lab can claim for the node) or as bare addresses (the node claims itself).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from eth_account import Account
from eth_utils import is_address, keccak, to_checksum_address

EMBEDDED_SEED = "hypergpu-lab embedded chain: public test keys, never hold value"

Key = Any  # bytes | hex str | int | eth_keys PrivateKey | Signer


class Signer:
    """Signs transactions with a private key it never reveals."""

    __slots__ = ("_account", "address")

    def __init__(self, key: Key) -> None:
        if isinstance(key, Signer):
            self._account, self.address = key._account, key.address
            return
        if hasattr(key, "to_bytes") and not isinstance(key, int):  # eth_keys PrivateKey
            key = key.to_bytes()
        try:
            account = Account.from_key(key)
        except Exception:
            raise ValueError("private_key is not a valid secp256k1 private key (32 bytes or 0x + 64 hex)") from None
        self._account = account
        self.address: str = account.address

    def sign_transaction(self, tx: Mapping[str, Any]) -> Any:
        return self._account.sign_transaction(dict(tx))

    def __repr__(self) -> str:
        return f"Signer({self.address})"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Signer) and other.address == self.address

    def __hash__(self) -> int:
        return hash(self.address)

    def __reduce__(self) -> Any:
        raise TypeError("a Signer holds a private key and is not picklable; pass the key where it is needed")

    def __copy__(self) -> Signer:
        return self

    def __deepcopy__(self, memo: dict) -> Signer:
        return self


def derive_key(seed: str, node: int) -> bytes:
    """Node ``node``'s private key under ``seed``: keccak256 of a labelled string (valid with overwhelming odds)."""
    return keccak(text=f"hypergpu-lab/node-key/v1/{seed}/{int(node)}")


class NodeAccounts:
    """Which account each node uses (see the module docstring). Keyword-only.

    Parameters
    ----------
    seed
        Derive keys for nodes not listed in ``keys``/``addresses``; ``None`` means every node must be listed.
        On a real network pass a secret seed (it is as sensitive as the keys) or explicit keys.
    keys
        node -> private key (or :class:`Signer`): the lab can sign for these nodes (claim their rewards).
    addresses
        node -> address, for nodes whose keys stay with their owners: they are credited, and claim themselves.
    """

    def __init__(
        self,
        *,
        seed: str | None = EMBEDDED_SEED,
        keys: Mapping[int, Key] | None = None,
        addresses: Mapping[int, str] | None = None,
    ) -> None:
        self._seed = seed
        self._signers = {int(n): Signer(k) for n, k in (keys or {}).items()}
        self._addresses = {int(n): s.address for n, s in self._signers.items()}
        for n, a in (addresses or {}).items():
            if not is_address(a):
                raise ValueError(f"addresses[{n}] is not an Ethereum address: {a!r}")
            if int(n) in self._signers:
                raise ValueError(f"node {n} is given both a key and an address")
            self._addresses[int(n)] = to_checksum_address(a)
        self._by_address = {a: n for n, a in self._addresses.items()}

    def address(self, node: int) -> str:
        """The node's address (derived and cached on first use)."""
        node = int(node)
        if node not in self._addresses:
            self.signer(node)
        return self._addresses[node]

    def signer(self, node: int) -> Signer:
        """The node's signer; a node known only by address cannot be signed for."""
        node = int(node)
        if node in self._signers:
            return self._signers[node]
        if node in self._addresses:
            raise KeyError(f"node {node} has only an address here ({self._addresses[node]}); its owner signs")
        if self._seed is None:
            raise KeyError(f"node {node} has no account: pass it in keys= or addresses=, or give a seed")
        signer = self._signers[node] = Signer(derive_key(self._seed, node))
        self._addresses[node] = signer.address
        self._by_address[signer.address] = node
        return signer

    def node_of(self, address: str) -> int | None:
        """The node using ``address``, among the nodes seen so far."""
        return self._by_address.get(to_checksum_address(address))

    def __repr__(self) -> str:
        seed = "none" if self._seed is None else ("embedded" if self._seed == EMBEDDED_SEED else "<secret>")
        return f"NodeAccounts(seed={seed}, known={len(self._addresses)}, signable={len(self._signers)})"

    __str__ = __repr__
