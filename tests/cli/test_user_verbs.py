"""The `digits` user verbs without a server: where the login is kept and with which modes, how
an answer becomes an exit code, the SSE reader, and the resumable upload's resume after a cut."""

from __future__ import annotations

import io
import json
import stat
import tarfile
from pathlib import Path

import httpx
import pytest
from rich.console import Console

from digits_cli.__main__ import main
from digits_cli.client import config, sse, uploads
from digits_cli.client.api import UNREACHABLE, USAGE, Api, CliError, check
from digits_cli.commands import events
from digits_cli.commands._common import Context, print_ended
from tests.conftest import free_port


@pytest.fixture(autouse=True)
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Each test its own config folder and no login in the environment."""
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    monkeypatch.delenv("DIGITS_URL", raising=False)
    monkeypatch.delenv("DIGITS_TOKEN", raising=False)
    return tmp_path / "xdg"


def test_a_saved_login_is_owner_only_and_the_environment_overrides_it(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The file is 0600 in a 0700 folder; DIGITS_URL/DIGITS_TOKEN win over it, and the stored
    token is never sent to another URL."""
    path = config.save(config.Login(url="http://a:5000", token="t1", token_id="i1"))
    assert path == home / "digits" / "config.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert config.load().token == "t1"
    monkeypatch.setenv("DIGITS_URL", "http://b:5000/")
    assert config.load() == config.Login(url="http://b:5000", token="", token_id="i1")
    monkeypatch.setenv("DIGITS_TOKEN", "t2")
    assert config.load().token == "t2"
    assert config.forget() and not path.exists()


def _answer(status: int, body: object) -> httpx.Response:
    request = httpx.Request("POST", "http://x/api/v1/models/")
    return httpx.Response(status, json=body, request=request)


def test_refusals_become_exit_codes_with_the_servers_words() -> None:
    """400 names the field (usage, 2); 401, 403 and 429 are refusals (3); 5xx is the server's
    (3)."""
    with pytest.raises(CliError) as bad:
        check(_answer(400, {"errors": {"dataset_id": ["Unknown dataset"]}}))
    assert bad.value.code == USAGE and "dataset_id: Unknown dataset" in str(bad.value)
    for status in (401, 403, 429, 503):
        with pytest.raises(CliError) as refused:
            check(_answer(status, {"error": {"message": "no", "type": "x"}}))
        assert refused.value.code == UNREACHABLE and "no" in str(refused.value)
    assert check(_answer(202, {"id": "x"})).status_code == 202


def test_an_unreachable_server_is_one_line_and_exit_3(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Nothing listens on the port: exit 3 and one line naming the URL, no traceback."""
    url = f"http://127.0.0.1:{free_port()}"
    monkeypatch.setenv("DIGITS_URL", url)
    assert main(["jobs", "list"]) == UNREACHABLE
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and url in err and "Traceback" not in err


def test_a_bad_flag_is_a_usage_error() -> None:
    """argparse refuses an unknown flag or a non-number with exit 2."""
    with pytest.raises(SystemExit) as e:
        main(["train", "--dataset", "d", "--epochs", "many"])
    assert e.value.code == USAGE
    with pytest.raises(SystemExit) as e:
        main(["datasets", "list", "--nope"])
    assert e.value.code == USAGE


def test_the_sse_reader_joins_data_lines_and_skips_comments() -> None:
    """Two messages: the first with an event name, id and two data lines; a comment between."""
    lines = ["event: status", "id: 7", 'data: {"a":', "data: 1}", "", ": ping", "", "data: x", ""]
    got = list(sse.messages(lines))
    assert got == [sse.Message("status", '{"a":\n1}', "7"), sse.Message("message", "x", "7")]


class FakeUploads:
    """`/api/v1/uploads` as the gateway's contract says, whose second PATCH drops the
    connection after keeping half its bytes (as a cut mid-chunk leaves them)."""

    def __init__(self) -> None:
        self.data = b""
        self.size = 0
        self.patches = 0

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if request.method == "POST":
            self.size = json.loads(request.content)["size"]
            return httpx.Response(201, json={"id": "u1", "offset": 0, "state": "receiving"})
        if request.method == "GET":
            return httpx.Response(200, json=self._status())
        assert request.method == "PATCH"
        offset = int(request.headers["Upload-Offset"])
        if offset != len(self.data):
            return httpx.Response(409, json={"error": {"message": "offset"}, "offset": offset})
        self.patches += 1
        if self.patches == 2:
            self.data += request.content[: len(request.content) // 2]
            raise httpx.RemoteProtocolError("peer closed connection", request=request)
        self.data += request.content
        return httpx.Response(200, json=self._status())

    def _status(self) -> dict[str, object]:
        done = len(self.data) == self.size
        return {"id": "u1", "offset": len(self.data), "state": "complete" if done else "receiving"}


def test_a_cut_upload_resumes_from_the_servers_offset(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Three chunks, the second cut half-way: the client asks for the offset, sends the rest,
    and the server ends with exactly the file's bytes."""
    monkeypatch.setattr(uploads, "CHUNK", 1000)
    monkeypatch.setattr(uploads.time, "sleep", lambda _s: None)
    archive = tmp_path / "a.tar"
    archive.write_bytes(bytes(range(256)) * 11)  # 2816 bytes: three chunks
    server = FakeUploads()
    http = httpx.Client(base_url="http://x", transport=httpx.MockTransport(server))
    api = Api(config.Login(url="http://x", token="t"), http=http)
    quiet = Console(file=io.StringIO())
    assert uploads.upload(api, archive, "dataset", quiet, quiet=True) == "u1"
    assert server.data == archive.read_bytes()


def test_a_folder_is_packed_with_its_class_folders_at_the_root(tmp_path: Path) -> None:
    """The tar holds `cats/...` and `dogs/...` (the folder's name is not a level of it), and is
    removed afterwards."""
    for label in ("cats", "dogs"):
        (tmp_path / "pets" / label).mkdir(parents=True)
        (tmp_path / "pets" / label / "1.png").write_bytes(b"png")
    with uploads.as_archive(tmp_path / "pets") as archive, tarfile.open(archive) as tar:
        names = sorted(tar.getnames())
    assert names == ["cats", "cats/1.png", "dogs", "dogs/1.png"]
    assert not archive.exists()


class CutStream(httpx.SyncByteStream):
    """An SSE body that sends one message, then loses the connection."""

    def __init__(self, message: bytes) -> None:
        self.message = message

    def __iter__(self):
        yield self.message
        raise httpx.ReadError("connection reset")


def test_events_follow_reopens_a_dropped_stream_from_the_last_id(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The stream drops after each message: it is opened again with Last-Event-ID, every event
    printed once; a refusal (401) ends it with its own message."""
    monkeypatch.setattr(events.time, "sleep", lambda _s: None)
    seen: list[str | None] = []

    def server(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers.get("last-event-id"))
        if len(seen) == 3:
            return httpx.Response(401, json={"error": {"message": "token revoked"}})
        n = len(seen)
        body = f'id: {n}\ndata: {{"type": "t{n}", "sequence": {n}}}\n\n'.encode()
        return httpx.Response(
            200, stream=CutStream(body), headers={"content-type": "text/event-stream"}
        )

    http = httpx.Client(base_url="http://x", transport=httpx.MockTransport(server))
    ctx = Context(api=Api(config.Login(url="http://x"), http=http), err=Console(), as_json=True)
    with pytest.raises(CliError) as refused:
        events._follow_sse(ctx, "/api/v1/events", {})
    assert refused.value.code == UNREACHABLE and "token revoked" in str(refused.value)
    assert seen == [None, "1", "2"]
    printed = [json.loads(line)["type"] for line in capsys.readouterr().out.splitlines()]
    assert printed == ["t1", "t2"]


def test_an_ended_job_is_its_json_or_its_status_page_and_error(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """`train` and `datasets create` end alike: --json prints the job; else its status with its
    page, and its error when it failed."""
    job = {"id": "20261201-120000-abcd", "status": "Error", "error": "out of memory"}
    api = Api(config.Login(url="http://x"), http=httpx.Client(base_url="http://x"))
    print_ended(Context(api=api, err=Console(), as_json=True), "model", job)
    assert json.loads(capsys.readouterr().out) == job
    print_ended(Context(api=api, err=Console(), as_json=False), "dataset", job)
    assert capsys.readouterr().out.splitlines() == [
        "Error: http://x/datasets/20261201-120000-abcd",
        "error: out of memory",
    ]
