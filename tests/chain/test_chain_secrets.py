"""No RPC credential leaves the client: every message the client and recorder produce is scanned for it.

The endpoint is a real node (ganache) behind a small HTTP front on 127.0.0.1 that takes credentials in
the URL like a hosted provider and can fail like one (503, 401), so the errors come from the real
requests/web3 stack, with the secrets in userinfo, path and query.
"""

from __future__ import annotations

import logging
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import SimpleNamespace

import pytest

pytest.importorskip("web3", reason="the chain extras (web3, eth-tester[py-evm]) are not installed")

from chain_support import REWARD

from hypergpu_lab.chain import ChainClient, ChainError, ChainRecorder, NodeAccounts
from hypergpu_lab.events import EventBus

SECRETS = ("user-S3CRET", "pw-S3CRET", "KEY-S3CRET-0123456789", "Q-S3CRET-abcdef")


def secret_url(port: int) -> str:
    return f"http://{SECRETS[0]}:{SECRETS[1]}@127.0.0.1:{port}/v3/{SECRETS[2]}?apikey={SECRETS[3]}"


@pytest.fixture
def rpc_server(ganache_node):
    """A hosted-node look-alike: credentials in the URL, forwarding to ganache; ``mode`` makes it fail."""
    import urllib.request

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            if server.mode in ("down", "unauthorised"):
                self.send_response(503 if server.mode == "down" else 401)
                self.end_headers()
                return
            forward = urllib.request.Request(ganache_node.url, data=body, headers={"Content-Type": "application/json"})
            data = urllib.request.urlopen(forward, timeout=30).read()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args) -> None:  # keep the test output quiet
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.mode = "up"
    server.key = ganache_node.private_key
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def assert_clean(texts: list[str]) -> None:
    text = "\n".join(texts)
    for secret in SECRETS:
        assert secret not in text, f"{secret} leaked"


def test_a_dead_url_raises_a_clear_chain_error_without_its_credentials(caplog) -> None:
    caplog.set_level(logging.DEBUG)
    with pytest.raises(ChainError) as exc:
        ChainClient(secret_url(closed_port()), private_key=b"\x01" * 32, accounts=NodeAccounts(seed="s"), timeout=2)
    message = str(exc.value)
    assert "cannot reach the chain at http://127.0.0.1:" in message
    assert exc.value.__context__ is None and exc.value.__cause__ is None
    assert_clean([message, repr(exc.value), caplog.text])


@pytest.mark.slow
def test_every_message_the_client_and_recorder_produce_is_free_of_url_credentials(
    rpc_server, trained_run, caplog
) -> None:
    # Prepare: a client on the secret URL; every log record of every library at DEBUG.
    caplog.set_level(logging.DEBUG)
    url = secret_url(rpc_server.server_address[1])
    chain = ChainClient(url, private_key=rpc_server.key, accounts=NodeAccounts(seed="secret test seed"))
    bus = EventBus()
    recorder = ChainRecorder(chain, bus, reward_per_round=REWARD, background=False, backoff_s=0.01)
    shown = [repr(chain), str(chain), str(chain.w3.provider), repr(chain.w3.provider), str(chain.describe())]

    # Execute: a healthy round, then the node goes down (503), then refuses the key (401).
    bus.emit(trained_run.reports[0])
    shown.append(str(recorder.flush(timeout=60)))
    rpc_server.mode = "down"
    bus.emit(trained_run.reports[1])
    down = recorder.flush(timeout=0.3)
    shown += [str(down), repr(recorder), str(recorder.failures())]
    for call in (lambda: chain.rounds_recorded(recorder.session_id), lambda: chain.claimable(0)):
        with pytest.raises(Exception) as exc:
            call()
        shown += [str(exc.value), repr(exc.value), str(exc.value.__context__), str(exc.value.__cause__)]
    rpc_server.mode = "unauthorised"
    bus.emit(trained_run.reports[2])
    refused = recorder.flush(timeout=5)
    shown += [str(refused), repr(recorder), str(recorder.failures())]
    with pytest.raises(ChainError) as exc:
        chain.claimable(0)
    shown += [str(exc.value), repr(exc.value)]

    # Assert: the failures happened and were reported, without a credential anywhere.
    assert down.sent == 1 and down.pending == 1 and "ConnectionError" in down.last_error
    assert "HTTP 401" in refused.last_error and refused.failed == 2  # a refused key is final: parked
    assert "127.0.0.1" in down.last_error and "***" in caplog.text  # web3 logged the URL, scrubbed
    assert_clean(shown + [caplog.text] + [str(r.__dict__) for r in caplog.records])
    source = SimpleNamespace(bus=EventBus())
    assert_clean([repr(chain.attach(source, background=False))])
