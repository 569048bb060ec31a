"""Chain exceptions, and decoding a revert's custom error from whatever shape the node reported it in.

web3 reports a revert as ``ContractCustomError`` / ``ContractLogicError`` carrying the revert data
(JSON-RPC nodes), while the in-process eth-tester raises ``TransactionFailed("execution reverted:
b'...'")``. :class:`ErrorDecoder` finds the raw bytes in either and names the Solidity error.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Mapping
from typing import Any

from eth_abi import decode as abi_decode
from eth_abi import encode as abi_encode
from eth_utils import collapse_if_tuple, keccak, to_checksum_address

# The exceptions are part of the Ledger contract, so they live in ledger.py (web3-free); they are
# re-exported here, where the decoder makes them, for the names existing code imports.
from .ledger import ChainError, ContractRevert

__all__ = ["ChainError", "ContractRevert", "ErrorDecoder"]

_BUILTIN = [
    {"type": "error", "name": "Error", "inputs": [{"name": "message", "type": "string"}]},
    {"type": "error", "name": "Panic", "inputs": [{"name": "code", "type": "uint256"}]},
]


class ErrorDecoder:
    """Maps 4-byte error selectors to names and argument types, from any number of ABIs."""

    def __init__(self, abis: Iterable[list[dict[str, Any]]] = ()) -> None:
        self._errors: dict[bytes, tuple[str, list[str], list[str]]] = {}
        self.add(_BUILTIN)
        for abi in abis:
            self.add(abi)

    def add(self, abi: Iterable[dict[str, Any]]) -> None:
        for item in abi:
            if item.get("type") != "error":
                continue
            types = [collapse_if_tuple(i) for i in item["inputs"]]
            selector = keccak(text=f"{item['name']}({','.join(types)})")[:4]
            names = [i["name"] or f"arg{k}" for k, i in enumerate(item["inputs"])]
            self._errors[selector] = (item["name"], types, names)

    def decode(self, data: bytes, function: str | None = None) -> ContractRevert:
        """The named error in raw revert ``data`` (``UnknownError`` when no ABI declares its selector)."""
        if len(data) < 4:
            return ContractRevert("EmptyRevert", function=function, data=data)
        known = self._errors.get(data[:4])
        if known is None:
            return ContractRevert("UnknownError", {"selector": data[:4]}, function=function, data=data)
        name, types, names = known
        try:
            values = abi_decode(types, data[4:])
        except Exception:
            return ContractRevert(name, {"undecodable": data[4:]}, function=function, data=data)
        args = {n: (to_checksum_address(v) if t == "address" else v) for n, t, v in zip(names, types, values)}
        return ContractRevert(name, args, function=function, data=data)

    def from_exception(self, exc: BaseException, function: str | None = None) -> ContractRevert | None:
        """The revert inside a web3 / eth-tester exception, or None when ``exc`` is not a revert."""
        data = revert_data(exc)
        return None if data is None else self.decode(data, function)


def revert_data(exc: BaseException) -> bytes | None:
    """The raw revert bytes carried by ``exc`` (or one it was raised from), None if it is not a revert."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        data = getattr(exc, "data", None)
        if isinstance(data, Mapping):  # ganache: {"result": "0x..", ...}; others {"data": ..} or {tx: {"return": ..}}
            data = (
                data.get("data")
                or data.get("result")
                or next((v.get("return") for v in data.values() if isinstance(v, Mapping)), None)
            )
        if isinstance(data, str) and data.startswith("0x"):
            try:
                return bytes.fromhex(data[2:])
            except ValueError:
                pass
        if type(exc).__name__ == "TransactionFailed" and exc.args:
            found = _from_tester_message(exc.args[0])
            if found is not None:
                return found
        exc = exc.__cause__ or exc.__context__
    return None


def _from_tester_message(arg: Any) -> bytes | None:
    """eth-tester's forms: raw bytes, or "execution reverted: b'...'" (the repr of the bytes)."""
    if isinstance(arg, bytes):
        return arg
    if isinstance(arg, BaseException) and arg.args:
        return _from_tester_message(arg.args[0])
    if isinstance(arg, str):
        text = arg.removeprefix("execution reverted: ").strip()
        if text[:2] in ("b'", 'b"'):
            try:
                value = ast.literal_eval(text)
            except (ValueError, SyntaxError):
                return None
            return value if isinstance(value, bytes) else None
        if text == "execution reverted" or not text:
            return b""
        # eth-tester already decoded an Error(string) reason (or reports a VM failure): re-encode it as one
        return keccak(text="Error(string)")[:4] + abi_encode(["string"], [text])
    return None
