"""The contract's main path driven by the Python `python-socketio` client, over WebSocket and
over long-polling, against the real binary: connect with a token (and without), join, send,
receive, retry an id, resume with `since`, refusals as acks and as `chat_error`.

Run with `python3 -m pytest tests/python` (the test command does, after installing the client
from PyPI); CHATROOM_BIN names the binary (default target/debug/chatroom)."""

import os
import re
import subprocess
import tempfile
import threading
import time
import uuid

import pytest
import requests
import socketio

BIN = os.environ.get("CHATROOM_BIN", os.path.join(os.path.dirname(__file__), "../../target/debug/chatroom"))


@pytest.fixture(scope="module")
def server():
    data = tempfile.mkdtemp(prefix="chatroom-py-")
    proc = subprocess.Popen(
        [BIN, "serve", "--listen", "127.0.0.1:0", "--data-dir", data, "--send-rate-limit", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    line = proc.stdout.readline()
    url = re.match(r"chatroom listening on (http://\S+)", line).group(1)
    yield url
    proc.terminate()
    proc.wait(timeout=20)


def register(url):
    r = requests.post(f"{url}/api/register", json={"username": "py" + uuid.uuid4().hex[:12], "password": "password123"})
    assert r.status_code == 201, r.text
    return r.json()["data"]


def wait_for(predicate, timeout=10.0):
    end = time.time() + timeout
    while time.time() < end:
        if predicate():
            return True
        time.sleep(0.02)
    return False


def client(url, token, transport):
    sio = socketio.Client(reconnection=False)
    got = []
    errors = []
    sio.on("received", lambda m: got.append(m), namespace="/chatroom")
    sio.on("chat_error", lambda e: errors.append(e), namespace="/chatroom")
    sio.connect(url, namespaces=["/chatroom"], auth={"token": token}, transports=[transport], wait_timeout=10)
    return sio, got, errors


@pytest.mark.parametrize("transport", ["websocket", "polling"])
def test_the_main_path(server, transport):
    alice = register(server)
    bob = register(server)
    headers = {"Authorization": "Bearer " + alice["token"]}
    room = requests.post(f"{server}/api/room/create", json={"name": "py", "description": ""}, headers=headers).json()["data"]["room"]
    r = requests.post(f"{server}/api/room/join", json={"roomIdHash": room["room_hash_id"]}, headers={"Authorization": "Bearer " + bob["token"]})
    assert r.status_code == 200

    a, got_a, _ = client(server, alice["token"], transport)
    b, got_b, errors_b = client(server, bob["token"], transport)
    ack = a.call("join_all", {"roomList": [room["id"]]}, namespace="/chatroom", timeout=10)
    assert ack["ok"] and ack["rooms"][0]["ok"] and ack["rooms"][0]["lastSeq"] == 0
    ack = b.call("join_one_chat", {"roomId": room["id"]}, namespace="/chatroom", timeout=10)
    assert ack["ok"] and ack["rooms"][0]["roomId"] == room["id"]

    seqs = []
    for i in range(5):
        ack = a.call("user_send_message", {"roomId": room["id"], "id": f"m{i}", "message": f"<b>hi {i}</b>", "type": "input", "userId": alice["userInfo"]["userId"]}, namespace="/chatroom", timeout=10)
        assert ack["ok"], ack
        seqs.append(ack["seq"])
    assert seqs == [1, 2, 3, 4, 5]
    again = a.call("user_send_message", {"roomId": room["id"], "id": "m0", "message": "again", "type": "input"}, namespace="/chatroom", timeout=10)
    assert again["ok"] and again["seq"] == 1

    assert wait_for(lambda: len([m for m in got_b if m.get("type") == "input"]) == 5)
    msgs = [m for m in got_b if m.get("type") == "input"]
    assert [m["seq"] for m in msgs] == [1, 2, 3, 4, 5]
    assert msgs[0]["message"] == "<b>hi 0</b>" and msgs[0]["user"]["name"] == alice["userInfo"]["name"]

    # Refusals: as an ack, and as chat_error without one.
    forged = b.call("user_send_message", {"roomId": room["id"], "id": "x", "message": "x", "userId": alice["userInfo"]["userId"]}, namespace="/chatroom", timeout=10)
    assert forged == {"ok": False, "error": {"code": "forbidden", "message": forged["error"]["message"]}}
    b.emit("user_send_message", {"roomId": "nope", "id": "q", "message": "x"}, namespace="/chatroom")
    assert wait_for(lambda: errors_b)
    assert errors_b[0]["code"] == "not_found" and errors_b[0]["id"] == "q"

    # Resume: b leaves, a posts, b comes back with since.
    b.disconnect()
    for i in range(3):
        a.call("user_send_message", {"roomId": room["id"], "id": f"n{i}", "message": "missed", "type": "input"}, namespace="/chatroom", timeout=10)
    b2, got_b2, _ = client(server, bob["token"], transport)
    ack = b2.call("join_all", {"roomList": [room["id"]], "since": {room["id"]: 5}}, namespace="/chatroom", timeout=10)
    assert ack["rooms"][0]["recovered"] is True and ack["rooms"][0]["lastSeq"] == 8
    assert wait_for(lambda: len([m for m in got_b2 if m.get("type") == "input"]) == 3)
    assert [m["seq"] for m in got_b2 if m.get("type") == "input"] == [6, 7, 8]
    a.disconnect()
    b2.disconnect()


def test_a_bad_token_is_refused(server):
    sio = socketio.Client(reconnection=False)
    refusals = []
    sio.on("connect_error", lambda data: refusals.append(data), namespace="/chatroom")
    with pytest.raises(socketio.exceptions.ConnectionError):
        sio.connect(server, namespaces=["/chatroom"], auth={"token": "nope"}, transports=["websocket"], wait_timeout=5)
    assert refusals and refusals[0]["message"] == "unauthorized"
