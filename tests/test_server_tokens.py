"""A token per person (`--tokens-file`, serving/tokens.py): the file's rules, and a real server process that lets
each person's token in, keeps others out, counts completions per person, takes a removed line's access away
without a restart and keeps the old tokens when an edit breaks the file."""
import time

import pytest
import requests

from benchmarks.server_load import ServerProcess
from serving.tokens import TokenFileError, parse_tokens

ANN, BOB, CAROL = "Zr2x0f7Q9yY4vUo1mHc8sLp3dT6bWnAe", "q8Hk1VtB5sXcN0eRj2LmG7yPw4DfZa9U", "c4r0l-t0ken#with-a-hash"
SHARED = "the-shared-token-of-before"
ARGS = ("--torch-threads", "1", "--workers", "0", "--reload-interval", "0")


def test_the_files_rules():
    text = f"# who  token\n\nann {ANN}\n  bob\t{BOB}   # laptop\ncarol {CAROL}\n"
    assert parse_tokens(text) == {"ann": ANN, "bob": BOB, "carol": CAROL}  # `#` inside a token is the token's
    for bad, why in [(f"ann {ANN} extra", "tokens:1: expected `NAME TOKEN`, found 3"),
                     ("ann", "found 1 field"),
                     ("ann short-token", "shorter than 16"),
                     (f"ann {ANN}\nann {BOB}", "tokens:2: ann has a token already"),
                     (f"ann {ANN}\nbob {ANN}", "tokens:2: bob's token is another user's too"),
                     (f"an/n {ANN}", "a name is")]:
        with pytest.raises(TokenFileError, match=why):
            parse_tokens(bad, "tokens")


def ask(url: str, token: str | None) -> int:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return requests.post(url + "/autocomplete", json={"prompt": "import o"}, headers=headers, timeout=30).status_code


def test_each_persons_token_and_no_other(checkpoint, tmp_path):
    tokens = tmp_path / "tokens"
    tokens.write_text(f"ann {ANN}\nbob {BOB}\n")
    with ServerProcess(checkpoint, *ARGS, "--tokens-file", str(tokens), "--token", SHARED) as s:
        assert [ask(s.url, t) for t in (ANN, BOB, ANN, SHARED)] == [200] * 4
        assert [ask(s.url, t) for t in (None, "x" * 32, ANN[:-1], ANN + "x", BOB.lower())] == [401] * 5
        r = requests.post(s.url + "/infill", json={"input_prefix": "import o"}, timeout=30,
                          headers={"Authorization": f"Bearer {BOB}"})
        assert r.status_code == 200  # every route takes the same tokens
        assert requests.get(s.url + "/metrics", timeout=30).status_code == 401
        text = requests.get(s.url + "/metrics", headers={"Authorization": f"Bearer {ANN}"}, timeout=30).text
        assert 'autocomplete_user_requests_total{user="ann"} 2.0' in text
        assert 'autocomplete_user_requests_total{user="bob"} 2.0' in text
        assert 'autocomplete_user_requests_total{user="shared"} 1.0' in text
        assert ANN not in text and BOB not in text


def test_the_file_changes_without_a_restart(checkpoint, tmp_path):
    tokens = tmp_path / "tokens"
    tokens.write_text(f"ann {ANN}\nbob {BOB}\n")
    with ServerProcess(checkpoint, *ARGS, "--tokens-file", str(tokens)) as s:
        assert ask(s.url, BOB) == 200
        tokens.write_text(f"ann {ANN}\ncarol {CAROL}\n")  # bob leaves the team, carol joins
        deadline = time.monotonic() + 30
        while ask(s.url, BOB) != 401:
            assert time.monotonic() < deadline, s.output()
            time.sleep(0.2)
        assert ask(s.url, CAROL) == 200 and ask(s.url, ANN) == 200
        tokens.write_text(f"ann {ANN}\ncarol\n")  # a broken edit: the tokens read before stay in use
        deadline = time.monotonic() + 30
        while "tokens:2: expected `NAME TOKEN`" not in s.output():  # the file is looked at as requests come
            assert ask(s.url, ANN) == 200 and ask(s.url, CAROL) == 200 and ask(s.url, BOB) == 401
            assert time.monotonic() < deadline, s.output()
            time.sleep(0.2)
        tokens.unlink()  # gone: the same
        deadline = time.monotonic() + 30
        while "the tokens read before stay in use" not in s.output().split("expected `NAME TOKEN`")[-1]:
            assert ask(s.url, ANN) == 200 and ask(s.url, CAROL) == 200
            assert time.monotonic() < deadline, s.output()
            time.sleep(0.2)


def test_a_bad_file_stops_the_start(checkpoint, tmp_path):
    from server import main
    bad = tmp_path / "tokens"
    bad.write_text(f"ann {ANN}\nbob short\n")
    assert main(["--model", str(checkpoint), "--tokens-file", str(bad)]) == 2
    bad.write_text("# nobody yet\n")
    assert main(["--model", str(checkpoint), "--tokens-file", str(bad)]) == 2
    assert main(["--model", str(checkpoint), "--tokens-file", str(tmp_path / "missing")]) == 2


def test_a_tokens_file_is_the_token_a_lan_address_needs(checkpoint, tmp_path):
    tokens = tmp_path / "tokens"
    tokens.write_text(f"ann {ANN}\n")
    with ServerProcess(checkpoint, *ARGS, "--tokens-file", str(tokens), host="0.0.0.0") as s:
        assert ask(s.url, None) == 401 and ask(s.url, ANN) == 200
        assert requests.get(s.url + "/metrics", timeout=30).status_code == 401
