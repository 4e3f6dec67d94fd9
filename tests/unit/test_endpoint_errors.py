"""Endpoint failures become one clear error naming the role, the URL and the model."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from mapcoder_lite.graph import Context, build_graph
from mapcoder_lite.llm import RoleCallError
from tests.servers import free_port

PROBLEM = {"problem": "def f():\n    pass", "sample_tests": ["assert f() is None"], "entry_point": "f"}


class NotFound(BaseHTTPRequestHandler):
    """Answers every request as vLLM does for a model it does not serve."""

    def do_POST(self) -> None:
        body = json.dumps(
            {"object": "error", "message": "The model `nope` does not exist.", "type": "NotFoundError", "code": 404}
        ).encode()
        self.send_response(404)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def not_found_server() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), NotFound)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    server.shutdown()


def test_unknown_model_names_the_role(not_found_server: str) -> None:
    context = Context(base_url=not_found_server, retriever_model="nope")
    with pytest.raises(RoleCallError) as caught:
        build_graph().invoke(PROBLEM, context=context)
    message = str(caught.value)
    assert message.startswith("retriever agent:") and "404" in message
    assert not_found_server in message and "'nope'" in message


def test_unreachable_endpoint_names_the_role_and_url() -> None:
    url = f"http://127.0.0.1:{free_port()}/v1"
    with pytest.raises(RoleCallError, match=r"retriever agent: cannot connect") as caught:
        build_graph().invoke(PROBLEM, context=Context(base_url=url, model="m1"))
    assert url in str(caught.value) and "'m1'" in str(caught.value)


def test_context_reads_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MAPCODER_LITE_K", "2")
    monkeypatch.setenv("MAPCODER_LITE_CODER_MODEL", "coder")
    context = Context()
    assert context.k == 2 and context.model_for("coder") == "coder" and context.model_for("planner") == context.model
    assert Context(k=4).k == 4  # an explicit value wins over the environment
    monkeypatch.setenv("MAPCODER_LITE_T", "many")
    with pytest.raises(ValueError, match="MAPCODER_LITE_T='many' is not a valid int"):
        Context()


def test_context_rejects_meaningless_settings() -> None:
    with pytest.raises(ValueError, match="k must be at least 1"):
        Context(k=0)
    with pytest.raises(ValueError, match="sandbox must be"):
        Context(sandbox="docker")
    assert Context.lite().model_for("debugger") == "debugger"


def test_a_role_on_its_own_endpoint_uses_that_endpoint_and_its_key(
    not_found_server: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The retriever goes to its own (teacher) server; the default base_url is never contacted.
    monkeypatch.setenv("TEACHER_KEY", "sk-teacher")
    unused = f"http://127.0.0.1:{free_port()}/v1"
    context = Context(base_url=unused, retriever_base_url=not_found_server, role_api_keys="retriever=TEACHER_KEY")
    assert context.api_key_for("retriever") == "sk-teacher" and context.api_key_for("coder") == "EMPTY"
    with pytest.raises(RoleCallError, match=r"retriever agent: .*404") as caught:
        build_graph().invoke(PROBLEM, context=context)
    assert caught.value.base_url == not_found_server
    with pytest.raises(ValueError, match="role_api_keys"):
        Context(role_api_keys="writer=X")
    with pytest.raises(ValueError, match="'UNSET_KEY' for coder, but it is not set"):
        Context(role_api_keys="coder=UNSET_KEY").api_key_for("coder")
