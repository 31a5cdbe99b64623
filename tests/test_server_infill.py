"""llama.cpp's POST /infill on this server (serving/infill.py), with the tiny real model: it asks the engine what
/autocomplete asks for the same text, a blank cursor line gets its indentation, llama.cpp's settings act on
the answer (n_predict 0, stop, n_indent, n_cmpl, response_fields, stream), errors come in llama.cpp's shape
and are never 5xx; and over HTTP, a real server process answers the requests llama.vim and llama.vscode
build (their shapes as read in their sources) the way those plugins parse them."""
import json
import re

import pytest
import requests
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import server
from benchmarks.server_load import ServerProcess
from server import ServerConfig, create_app
from serving.indent import blank_line_indent, code_of_line
from serving.infill import InfillOptions, cut, select_fields
from serving.metrics import sample_value
from tests.test_server_http import SERVER_ARGS, json_values
from tests.tiny_model import TINY_TEXT

torch.set_num_threads(1)
TOKEN = "infill-token-for-tests"
PREFIX = "import unittest\n\n\nclass TestAdd(unittest.TestCase):\n    def test_add(self):\n"
# llama.vim checks an answer with this before it decodes it (autoload/llama.vim, s:fim_on_response)
LLAMA_VIM_CHECK = re.compile(r'^\s*\{.*"content"\s*:"', re.S)


@pytest.fixture(scope="module")
def loaded(checkpoint):
    return server.load_model(str(checkpoint))


@pytest.fixture(scope="module")
def client(loaded, checkpoint):
    predictor, info = loaded
    return create_app(predictor, ServerConfig(model_info=info, default_model=str(checkpoint))).test_client()


def autocomplete(client, prompt: str, suffix: str = "", n: int = 1) -> list[str]:
    r = client.post("/autocomplete", json={"prompt": prompt, "suffix": suffix, "max_suggestions": n})
    assert r.status_code == 200, r.get_data(as_text=True)
    return r.get_json()["prediction"]


def infill(client, **body):
    r = client.post("/infill", json=body)
    assert r.status_code == 200, r.get_data(as_text=True)
    return r.get_json()


def test_infill_asks_what_autocomplete_asks(client):
    middle = "        self.assertEq"
    answer = infill(client, input_prefix=PREFIX, prompt=middle, input_suffix="\n")
    assert answer["content"] == autocomplete(client, PREFIX + middle, "\n")[0]
    assert answer["content"].startswith("ual(")  # the tiny model knows its text by heart
    assert answer["index"] == 0 and answer["stop"] is True and answer["stop_type"] == "eos"
    assert answer["model"] == "tiny" and answer["truncated"] is False
    assert set(answer["timings"]) == {"queue_ms", "engine_ms", "compute_ms"}
    # the cursor mid-line: the rest of the line is the suffix's start, as /autocomplete reads it
    answer = infill(client, input_prefix=PREFIX, prompt="        self.assertEqual(add(", input_suffix=")\n")
    assert answer["content"] == autocomplete(client, PREFIX + "        self.assertEqual(add(", ")\n")[0]


def test_a_blank_cursor_line_gets_its_indentation(client):
    # llama.vim sends "" for a line of blanks, and n_indent 0: the line above's ":" says one level more
    answer = infill(client, input_prefix=PREFIX, prompt="", input_suffix="\n", n_indent=0)
    expected = autocomplete(client, PREFIX + "        ", "\n")[0]
    assert expected.strip() and answer["content"] == "        " + expected
    # llama.vscode sends the line's own width as n_indent
    answer = infill(client, input_prefix=PREFIX, prompt="", input_suffix="\n", n_indent=4)
    assert answer["content"] == "    " + autocomplete(client, PREFIX + "    ", "\n")[0]
    # blanks the client did send are its own: nothing is added in front
    answer = infill(client, input_prefix=PREFIX, prompt="        ", input_suffix="\n")
    assert answer["content"] == expected


def test_blanks_only_go_on_to_the_code(client):
    # at the end of a line that opens a block the tiny model's best is the next line's indentation alone
    text = TINY_TEXT[:TINY_TEXT.index("    def test_add(self):") + len("    def test_add(self):")]
    above, _, line = text.rpartition("\n")
    blanks = autocomplete(client, text, "\n\n")[0]
    assert blanks.startswith("\n") and not blanks.strip()
    answer = infill(client, input_prefix=above + "\n", prompt=line, input_suffix="\n\n")
    code = autocomplete(client, text + blanks, "\n\n")[0]
    assert code.strip() and answer["content"] == blanks + code
    assert answer["timings"]["engine_ms"] >= answer["timings"]["compute_ms"] > 0


@pytest.mark.parametrize("prefix,n_indent,indent", [
    ("def f(x):\n", 0, "    "),
    ("def f(x):  \n\n", 0, "    "),                      # blank lines between: the last line with code counts
    ("class A:\n    def f(self):\n        return 1\n", 0, "    "),  # after return: one level less
    ("    x = 1\n    pass\n", 0, ""),
    ("if x:\n\ty = 1\n", 0, "\t"),                        # tabs stay tabs
    ("if x:\n\tif y:\n", 0, "\t\t"),
    ("x = {'a': 1,  # a comment: not the end\n", 0, ""),
    ("x = 1  # why:\n", 0, ""),                           # a colon in a comment opens nothing
    ("if x:  # don't\n", 0, "    "),                      # a quote in the comment opens no string
    ('if s == "#":\n', 0, "    "),                         # a # in a string is no comment
    ("x = '#'  # why:\n", 0, ""),
    ("def f():\n    return\n", 0, ""),
    ("", 0, ""), ("", 4, "    "),
    ("def f(x):\n", 8, " " * 8),                          # the editor's count wins
    ("if x:\n\ty = 1\n", 2, "\t\t"),
])
def test_blank_line_indent(prefix, n_indent, indent):
    assert blank_line_indent(prefix, n_indent) == indent


@pytest.mark.parametrize("line,code", [
    ("x = 1  # c", "x = 1"),
    ("x = '#'  # c", "x = '#'"),
    (r's = "a\"#" # c', r's = "a\"#"'),                     # an escaped quote does not end the string
    ("s = '''#''' + \"'\"  # c:", "s = '''#''' + \"'\""),    # triple quotes, and a quote inside the other kind
    ("d = {'a': 1,  # x: y", "d = {'a': 1,"),
    ("print('unterminated #", "print('unterminated #"),   # a string open to the line end holds the rest
    ("# only a comment", ""),
    ("    x = 1   ", "    x = 1"),
])
def test_code_of_line(line, code):
    assert code_of_line(line) == code


def test_cut_stops_where_llama_cpp_would():
    text = "a = 1\n    b = 2\n  c = 3\nd = 4"
    assert cut(text, InfillOptions(n_indent=4)) == ("a = 1\n    b = 2", "eos", "")
    assert cut(text, InfillOptions(n_indent=0)) == (text, "eos", "")
    assert cut(text, InfillOptions(stop=["= 2", "b"])) == ("a = 1\n    ", "word", "b")
    assert cut(text, InfillOptions(stop=["zz"])) == (text, "eos", "")
    assert cut("x\n\n    y", InfillOptions(n_indent=4)) == ("x\n\n    y", "eos", "")  # blank lines end nothing


def test_select_fields_flattens_paths():
    answer = {"content": "x", "timings": {"compute_ms": 1.5}, "stop": True}
    assert select_fields(answer, ["content", "timings/compute_ms", "timings/nope", "nope", ""]) == \
        {"content": "x", "timings/compute_ms": 1.5}
    assert select_fields(answer, None) is answer


def answered(client) -> float:
    """How many completion requests the tiny model has answered (the server's metric; 0 before the first)."""
    return sample_value(client.get("/metrics").get_data(as_text=True), "autocomplete_model_requests_total",
                        model="tiny")


def test_settings_llama_cpp_applies(client):
    asked = answered(client)
    # n_predict 0: "read these chunks" (llama.vim's ring update): answered without the engine
    r = client.post("/infill", json={"input_prefix": "", "input_extra": [{"filename": "a.py", "text": "x = 1\n"}],
                                     "n_predict": 0, "response_fields": [""]})
    assert r.status_code == 200 and r.get_json() == {}
    assert infill(client, input_prefix=PREFIX, prompt="        self.", n_predict=0)["content"] == ""
    assert answered(client) == asked
    # stop strings cut the completion before them
    full = infill(client, input_prefix=PREFIX, prompt="        self.assert")["content"]
    assert len(full) > 2
    stopped = infill(client, input_prefix=PREFIX, prompt="        self.assert", stop=[full[2:]])
    assert (stopped["content"], stopped["stop_type"], stopped["stopping_word"]) == (full[:2], "word", full[2:])
    # n_cmpl: a list of distinct completions, best first; `n` is its OpenAI alias
    many = infill(client, input_prefix=PREFIX, prompt="        self.", n_cmpl=3)
    assert isinstance(many, list) and 1 <= len(many) <= 3 and [a["index"] for a in many] == list(range(len(many)))
    assert len({a["content"] for a in many}) == len(many)
    assert [a["content"] for a in many] == autocomplete(client, PREFIX + "        self.", "", 3)[:len(many)]
    assert [a["content"] for a in infill(client, input_prefix=PREFIX, prompt="        self.", n=3)] == \
        [a["content"] for a in many]
    # response_fields: llama.vim's list, its paths moved to the top
    answer = infill(client, input_prefix=PREFIX, prompt="        self.", response_fields=[
        "content", "timings/compute_ms", "timings/prompt_n", "truncated", "tokens_cached"])
    assert set(answer) == {"content", "timings/compute_ms", "truncated", "tokens_cached"}


def test_stream_answers_as_server_sent_events(client):
    r = client.post("/infill", json={"input_prefix": PREFIX, "prompt": "        self.assertEq", "stream": True})
    assert r.status_code == 200 and r.headers["Content-Type"].startswith("text/event-stream")
    events = [json.loads(line[len("data: "):]) for line in r.get_data(as_text=True).split("\n\n") if line]
    assert [(e["content"], e["stop"]) for e in events] == \
        [(autocomplete(client, PREFIX + "        self.assertEq")[0], True)]


def test_truncated_says_the_prompt_was_cut(loaded):
    predictor, info = loaded
    small = create_app(predictor, ServerConfig(model_info=info, max_prompt_chars=100)).test_client()
    assert infill(small, input_prefix="x = 1\n" * 10, prompt="y")["truncated"] is False
    assert infill(small, input_prefix="x = 1\n" * 30, prompt="y")["truncated"] is True


@pytest.mark.parametrize("body,status", [
    ({"input_prefix": 3}, 400), ({"prompt": ["x"]}, 400), ({"input_suffix": {}}, 400),
    ({"n_predict": -2}, 400), ({"n_predict": True}, 400), ({"n_predict": 1.5}, 400),
    ({"stop": [1]}, 400), ({"stop": ["x"] * 65}, 400), ({"n_indent": -1}, 400),
    ({"n_cmpl": 0}, 400), ({"n_cmpl": 11}, 400), ({"n": "2"}, 400), ({"response_fields": "content"}, 400),
    ({"t_max_predict_ms": "fast"}, 400), ({"t_max_predict_ms": float("inf")}, 400),
    ({"input_extra": [{"text": 1}]}, 400), ({"input_extra": "x"}, 400), ({"kind": "paragraph"}, 400),
    ({"model": 7}, 400), ({"model": "nope"}, 404),
    ({"input_extra": [{"filename": "a.py", "text": "x"}] * 257}, 413),
])
def test_client_mistakes_get_llama_cpp_errors(client, body, status):
    r = client.post("/infill", json={"input_prefix": "x", **body})
    assert r.status_code == status, r.get_data(as_text=True)
    error = r.get_json()["error"]
    assert error["code"] == status and error["message"] and error["type"].endswith("_error")


def test_other_errors_in_llama_cpp_shape_too(client, loaded):
    r = client.post("/infill", data="{not json", content_type="application/json")
    assert r.status_code == 400 and r.get_json()["error"]["type"] == "invalid_request_error"
    r = client.post("/infill", data="x", content_type="text/plain")
    assert r.status_code == 415 and r.get_json()["error"]["code"] == 415
    r = client.get("/infill")
    assert r.status_code == 405 and r.get_json()["error"]["type"] == "invalid_request_error"
    assert r.headers["Allow"] and r.get_json()["error"]["code"] == 405
    predictor, info = loaded
    locked = create_app(predictor, ServerConfig(token=TOKEN, model_info=info)).test_client()
    r = locked.post("/infill", json={"input_prefix": "x"})
    assert r.status_code == 401 and r.get_json()["error"]["type"] == "authentication_error"
    assert locked.post("/infill", json={"input_prefix": "x"},
                       headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 200
    # /autocomplete keeps its own shape
    assert client.post("/autocomplete", json={"prompt": 3}).get_json()["success"] is False


# ---- a real server process, the plugins' requests ----

def llama_vim_request(prefix: str, middle: str, suffix: str, extra: list[dict]) -> dict:
    """The body llama.vim's llama#fim builds (autoload/llama.vim at a1c8e6e): model and api key always sent,
    empty by default."""
    return {"id_slot": 0, "input_prefix": prefix, "input_suffix": suffix, "input_extra": extra, "prompt": middle,
            "n_predict": 128, "stop": [], "n_indent": len(middle) - len(middle.lstrip()), "top_k": 40, "top_p": 0.90,
            "samplers": ["top_k", "top_p", "infill"], "stream": False, "cache_prompt": True,
            "t_max_prompt_ms": 500, "t_max_predict_ms": 250, "model": "",
            "response_fields": ["content", "timings/prompt_n", "timings/prompt_ms", "timings/prompt_per_token_ms",
                                "timings/prompt_per_second", "timings/predicted_n", "timings/predicted_ms",
                                "timings/predicted_per_token_ms", "timings/predicted_per_second", "truncated",
                                "tokens_cached"]}


def llama_vim_ring_update(extra: list[dict]) -> dict:
    """llama.vim's s:ring_update: new chunks to read ahead, nothing to generate."""
    return {"id_slot": 0, "input_prefix": "", "input_suffix": "", "input_extra": extra, "prompt": "",
            "n_predict": 0, "temperature": 0.0, "samplers": [], "stream": False, "cache_prompt": True,
            "t_max_prompt_ms": 1, "t_max_predict_ms": 1, "response_fields": [""], "model": ""}


def llama_vscode_request(prefix: str, middle: str, suffix: str, extra: list[dict], nindent: int) -> dict:
    """The body llama.vscode's createRequestPayload builds (src/llama-server.ts at 3938fb3), its defaults."""
    return {"id_slot": 0, "input_prefix": prefix, "input_suffix": suffix, "input_extra": extra, "prompt": middle,
            "n_predict": 128, "n_cmpl": 3, "top_k": 40, "top_p": 0.99, "stream": False, "samplers": ["top_k", "top_p",
            "infill"], "cache_prompt": True, "n_indent": nindent, "t_max_prompt_ms": 500, "t_max_predict_ms": 2500}


@pytest.fixture(scope="module")
def srv(checkpoint):
    with ServerProcess(checkpoint, *SERVER_ARGS, "--workers", "1", env={"AUTOCOMPLETE_API_TOKEN": TOKEN}) as s:
        yield s


def test_the_plugins_requests_over_http(srv, loaded):
    predictor = loaded[0]
    auth = {"Authorization": f"Bearer {TOKEN}"}
    chunks = [{"text": "def add(a, b):\n    return a + b\n", "time": 12.5, "filename": "calc.py"}]
    with requests.Session() as s:
        s.headers.update(auth)
        r = s.post(srv.url + "/infill", json=llama_vim_ring_update(chunks), timeout=60)
        assert r.status_code == 200 and r.json() == {}
        # llama.vim at a blank line in a method: it decodes only answers that pass its check
        r = s.post(srv.url + "/infill", json=llama_vim_request(PREFIX, "", "\n\n", chunks), timeout=60)
        assert r.status_code == 200 and LLAMA_VIM_CHECK.match(r.text), r.text
        expected = predictor.complete(PREFIX + "        ", "\n\n", max_suggestions=1, extra=[
            ("calc.py", chunks[0]["text"])])[0].text
        assert r.json()["content"] == "        " + expected
        assert set(r.json()) == {"content", "truncated", "tokens_cached"}
        # llama.vscode mid-line, three completions: a list it reads `content` from
        r = s.post(srv.url + "/infill", json=llama_vscode_request(PREFIX, "        self.assertEq", "\n", chunks, 8),
                   timeout=60)
        assert r.status_code == 200 and isinstance(r.json(), list) and r.json()[0]["content"].startswith("ual(")
        # without the token: 401 in llama.cpp's shape
        r = requests.post(srv.url + "/infill", json=llama_vim_request(PREFIX, "", "\n", []), timeout=60)
        assert r.status_code == 401 and r.json()["error"]["code"] == 401
        metrics = s.get(srv.url + "/metrics", timeout=30).text
    assert 'autocomplete_requests_total{endpoint="/infill",method="POST",status="200"} 3.0' in metrics
    assert 'autocomplete_requests_total{endpoint="/infill",method="POST",status="401"} 1.0' in metrics


infill_objects = st.fixed_dictionaries({}, optional={
    "input_prefix": st.text(max_size=200) | json_values, "input_suffix": st.text(max_size=50) | json_values,
    "prompt": st.text(max_size=50) | json_values, "input_extra": json_values,
    "n_predict": st.integers(-3, 200) | json_values, "n_indent": st.integers(-2, 12) | json_values,
    "stop": st.lists(st.text(max_size=5), max_size=3) | json_values, "n_cmpl": st.integers(-1, 12) | json_values,
    "response_fields": st.lists(st.sampled_from(["content", "timings/compute_ms", "", "a/b/c"])) | json_values,
    "stream": st.booleans() | json_values, "t_max_predict_ms": st.integers(-5, 300) | json_values,
    "model": st.sampled_from(["", None, "tiny", "nope", "../x"]) | json_values})


@settings(max_examples=200, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(body=infill_objects)
def test_fuzz_infill_bodies(srv, body):
    r = requests.post(srv.url + "/infill", data=json.dumps(body), timeout=30,
                      headers={"Content-Type": "application/json", "Authorization": f"Bearer {TOKEN}"})
    assert r.status_code in (200, 400, 404, 413), (r.status_code, r.text[:300])
    if r.status_code != 200:
        assert r.json()["error"]["code"] == r.status_code
    elif not r.headers["Content-Type"].startswith("text/event-stream"):
        assert isinstance(r.json(), (dict, list))


def test_evaluate_types_with_llama_vims_request(srv, loaded, tmp_path):
    """`python -m evaluate --server-api infill` (evaluate/remote.py InfillPredictor): llama.vim's request cut at
    the cursor, its answer read as llama.vim shows it."""
    from evaluate.__main__ import main
    from evaluate.remote import InfillPredictor
    vim = InfillPredictor(srv.url, TOKEN)
    assert vim.url == srv.url + "/infill"
    body = vim.request("a = 1\nb = 2\n    ", "\nc = 3\n")  # a blank cursor line: left out, n_indent 0
    assert (body["input_prefix"], body["prompt"], body["input_suffix"], body["n_indent"]) == \
        ("a = 1\nb = 2\n", "", "\nc = 3\n", 0)
    body = vim.request("a = 1\n    y = f(", "z)\nw\n", [("m.py", "x")])  # mid-line
    assert (body["input_prefix"], body["prompt"], body["input_suffix"], body["n_indent"]) == \
        ("a = 1\n", "    y = f(", "z)\nw\n", 4)
    assert body["input_extra"] == [{"filename": "m.py", "text": "x"}]
    assert vim.request("x\n" * 300 + "y", "")["input_prefix"] == "x\n" * 256  # llama.vim's n_prefix lines
    assert vim.request("y", "\n" + "z\n" * 100)["input_suffix"] == "\n" + "z\n" * 64
    # the blanks a blank line holds are not suggested again; the rest is the server's answer
    text = TINY_TEXT[:TINY_TEXT.index("        self.assertEqual(add(")] + "        "
    got = vim.complete(text)
    expected = loaded[0].complete(text, "\n\n", max_suggestions=1)[0].text
    assert got and got[0].text == expected
    f = tmp_path / "tiny.py"
    f.write_text(TINY_TEXT)
    out = tmp_path / "vim"
    assert main(["--model", str(srv.cmd[srv.cmd.index("--model") + 1]), "--files", str(f), "--max-chars", "300",
                 "--line-samples", "0", "--server", srv.url, "--token", TOKEN, "--server-api", "infill",
                 "--autoindent", "--out", str(out)]) == 0
    report = json.loads((out / "eval.json").read_text())
    assert report["server_api"] == "infill" and report["autoindent"] is True
    assert report["overall"]["saved_auto"] > 0.3  # the tiny model knows its text


def test_llama_vim_check_needs_the_plugin(tmp_path, capsys):
    """scripts/llama_vim_check.py runs the real plugin, which is not in this repository (docs/server.md): without
    it, a clear error and no server started."""
    from scripts.llama_vim_check import main
    with pytest.raises(SystemExit) as e:
        main(["--plugin", str(tmp_path)])
    assert e.value.code == 2 and "holds no autoload/llama.vim" in capsys.readouterr().err
