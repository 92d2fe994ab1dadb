"""The running GUI attacked over real HTTP: `facelora gui PROJECT` with no other flag, a secret
planted in the project's parent folder and a symbolic link from the project to it. gradio's file
routes (with `../`, absolute paths, `%2F`, NUL, long names, the link), its upload route with a
name that climbs out, and every API endpoint with every text parameter set to such a path: the
secret is never served, nothing outside the project is written, and the server keeps answering."""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
from conftest import gui_server

pytestmark = pytest.mark.slow
pytest.importorskip("gradio")

SECRET = b"the key to everything"


def _request(url: str, data: bytes | None = None, headers: dict | None = None) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(urllib.request.Request(url, data=data, headers=headers or {}), timeout=30) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def _tree(root: Path, skip: Path) -> dict[str, bytes]:
    """Every file under root except those under `skip` (the project), with its content."""
    out = {}
    for p in sorted(root.rglob("*")):
        if p.is_file() and not p.is_symlink() and skip not in p.parents:
            out[str(p)] = p.read_bytes()
    return out


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    from facelora.project import init_project

    parent = tmp_path_factory.mktemp("parent")
    project = init_project(parent / "alice", "ohwx", "woman")
    (parent / "secret.txt").write_bytes(SECRET)
    (parent / "sibling").mkdir()
    (parent / "sibling" / "facelora.toml").write_bytes(b"[project]\ntrigger = 'bob'\n")
    (project.root / "link.txt").symlink_to(parent / "secret.txt")
    (project.root / "linkdir").symlink_to(parent)
    with gui_server([str(project.root)], parent, parent.parent / f"{parent.name}-gui.log", 240) as url:
        before = _tree(parent, project.root)
        yield url, parent, project, before


def _bad_paths(parent: Path, project: Path) -> list[str]:
    secret = str(parent / "secret.txt")
    return [secret, f"{project}/../secret.txt", "../secret.txt", "link.txt", f"{project}/link.txt",
            f"{project}/linkdir/secret.txt", "linkdir/secret.txt", secret + "\x00.png", "x" * 300,
            f"{project}/{'y' * 300}", "/etc/passwd", str(parent / "sibling")]


def test_file_routes_serve_nothing_outside_the_project(served):
    url, parent, project, _ = served
    secret = str(parent / "secret.txt")
    tried = []
    for route in ("/gradio_api/file=", "/file="):
        for path in _bad_paths(parent, project.root):
            for quoted in (urllib.parse.quote(path, safe="/"), urllib.parse.quote(path, safe=""),
                           path.replace("/", "%2F").replace("\x00", "%00")):
                status, body = _request(url + route + quoted)
                tried.append((route, quoted, status))
                assert SECRET not in body, (route, quoted, status)
        for traversal in (f"{project.root}/%2e%2e/secret.txt", f"{project.root}/..%2Fsecret.txt",
                          f"{project.root}/%2E%2E%2Fsecret.txt", "%2e%2e/" * 12 + secret.lstrip("/")):
            status, body = _request(url + route + traversal)
            assert SECRET not in body, (route, traversal, status)
    for static in ("/static/../../secret.txt", "/gradio_api/static/..%2F..%2Fsecret.txt",
                   "/assets/..%2F..%2Fsecret.txt", "/gradio_api/proxy=" + urllib.parse.quote(secret, safe="")):
        status, body = _request(url + static)
        assert SECRET not in body, static
    # the same route serves the project's own files: the refusals above are the policy, not a dead route
    status, body = _request(url + "/gradio_api/file=" + urllib.parse.quote(str(project.config_path)))
    assert status == 200 and b"ohwx" in body, tried[:3]


def test_upload_stays_inside_the_project(served):
    url, parent, project, before = served
    boundary = "----faceloraboundary"
    for name in ("../../../escaped.txt", str(parent / "escaped.txt"), "..%2F..%2Fescaped.txt", "z" * 300):
        body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"files\"; filename=\"{name}\"\r\n"
                f"Content-Type: text/plain\r\n\r\nplanted\r\n--{boundary}--\r\n").encode()
        status, answer = _request(url + "/gradio_api/upload", body,
                                  {"Content-Type": f"multipart/form-data; boundary={boundary}"})
        if status == 200:
            for stored in json.loads(answer):
                assert Path(stored).resolve().is_relative_to(project.root), stored
    assert _tree(parent, project.root) == before
    assert not [p for p in parent.rglob("escaped.txt") if project.root not in p.parents]


def _defaults(info: dict) -> list:
    out = []
    for p in info["parameters"]:
        if p.get("parameter_has_default"):
            out.append(p.get("parameter_default"))
        else:
            kind = p["python_type"]["type"]
            out.append(False if kind == "bool" else 0 if kind in ("int", "float") else None)
    return out


def test_every_endpoint_refuses_paths_outside_the_project(served):
    from gradio_client import Client

    url, parent, project, before = served
    client = Client(url, verbose=False)
    endpoints = client.view_api(print_info=False, return_format="dict")["named_endpoints"]
    texts = {name: [i for i, p in enumerate(info["parameters"]) if p["python_type"]["type"] == "str"
                    or p.get("component") in ("Textbox", "Dropdown")]
             for name, info in endpoints.items()}
    called = 0
    for name, info in endpoints.items():
        if not texts[name] or name in ("/start",):
            continue
        for bad in _bad_paths(parent, project.root):
            args = _defaults(info)
            for i in texts[name]:
                args[i] = bad
            try:
                answer = client.predict(*args, api_name=name)
            except Exception as e:  # a refusal (gr.Error) or a value the component rejects
                answer = str(e)
            called += 1
            assert SECRET.decode() not in json.dumps(answer, default=str), (name, bad)
    assert called > 50
    assert _tree(parent, project.root) == before  # nothing written, changed or removed outside
    assert not (parent / "escaped").exists() and (parent / "secret.txt").read_bytes() == SECRET
    assert _request(url)[0] == 200
