"""shmrt serve end to end, with real clients: curl, requests and the openai
package, against `shmrt serve` processes on loopback.

Usage: test_serve.py SHMRT CHAT_TEMPLATES_DIR
Each check prints PASS or FAIL; the last line is "N passed, M failed".
Exit 77 (skipped) only when the test's Python lacks requests or openai
(scripts/dev.sh test installs them in build/pyenv)."""
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import traceback

try:
    import openai
    import requests
except ImportError as e:
    print(f"SKIP: {e}: run scripts/dev.sh test, which installs requests and openai in build/pyenv")
    sys.exit(77)

SHMRT = os.path.abspath(sys.argv[1])
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from chat_templates import SMOLLM2  # noqa: E402

TMP = tempfile.mkdtemp(prefix="shmrt-serve-test-")
SHM = tempfile.mkdtemp(prefix="shmrt-serve-", dir="/dev/shm")
ENV = dict(os.environ, SHMRT_SHM_DIR=SHM)
for k in list(ENV):
    if k.startswith("AIP_"):
        del ENV[k]
RESULTS = []
PROCS = []


def check(name):
    def wrap(fn):
        def run():
            t0 = time.monotonic()
            try:
                fn()
                RESULTS.append((name, True))
                print(f"PASS {name} ({time.monotonic() - t0:.1f} s)", flush=True)
            except Exception:
                RESULTS.append((name, False))
                print(f"FAIL {name}", flush=True)
                traceback.print_exc()
                sys.stdout.flush()
        return run
    return wrap


def expect(cond, what):
    if not cond:
        raise AssertionError(what)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def shmrt(*args, **kw):
    return subprocess.run([SHMRT, *args], env=ENV, capture_output=True, text=True, timeout=600, **kw)


class Server:
    def __init__(self, *args, env=None, name=None):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.name = name
        self.log = open(os.path.join(TMP, f"serve-{self.port}.log"), "w+")
        argv = [SHMRT, "serve", "--host", "127.0.0.1", "--port", str(self.port), *args]
        if name:
            argv += ["--name", name]
        self.proc = subprocess.Popen(argv, env=env or ENV, stdout=self.log, stderr=subprocess.STDOUT)
        PROCS.append(self.proc)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:  # the port opens at once, before the model loads
            expect(self.proc.poll() is None, f"serve exited {self.proc.returncode}: {self.output()}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                time.sleep(0.05)
        raise AssertionError("the port never opened")

    def output(self):
        self.log.flush()
        self.log.seek(0)
        return self.log.read()

    def wait_ready(self, timeout=300):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if requests.get(self.url + "/health", timeout=10).status_code == 200:
                return
            expect(self.proc.poll() is None, f"serve exited: {self.output()}")
            time.sleep(0.1)
        raise AssertionError("never ready: " + self.output())

    def stop(self, sig=signal.SIGTERM, timeout=60):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        return self.proc.wait(timeout=timeout)

    def post(self, path, body, **kw):
        return requests.post(self.url + path, json=body, timeout=300, **kw)

    def stat(self):
        out = shmrt("stat", "--name", self.name, "--json")
        expect(out.returncode == 0, "stat: " + out.stderr)
        return json.loads(out.stdout)

    def metrics(self):
        text = requests.get(self.url + "/metrics", timeout=30).text
        values = {}
        for line in text.splitlines():
            if line and not line.startswith("#"):
                key, value = line.rsplit(" ", 1)
                values[key] = float(value)
        return text, values


def generate(model, prompt, max_tokens):
    """The single-process reference: `shmrt generate` greedy."""
    out = shmrt("generate", "--model", model, "--prompt", prompt, "--max-tokens", str(max_tokens),
                "--temperature", "0", "--json")
    expect(out.returncode == 0, "generate: " + out.stderr)
    return json.loads(out.stdout)["text"]


def sse_events(resp):
    """The data: payloads of a server-sent event stream, as they come."""
    for line in resp.iter_lines():
        if line.startswith(b"data: "):
            yield line[6:].decode()


# ---- the models ------------------------------------------------------------

TINY = os.path.join(TMP, "tiny")      # a chat template added (SmolLM2's ChatML)
PLAIN = os.path.join(TMP, "plain")    # no tokenizer_config.json: no chat template
SMALL = os.path.join(TMP, "small")    # 100M parameters: slow enough to catch mid-stream
for preset, path in (("tiny", TINY), ("small", SMALL)):
    r = shmrt("mkmodel", "--preset", preset, "--out", path)
    expect(r.returncode == 0, r.stderr)
shutil.copytree(TINY, PLAIN)
with open(os.path.join(TINY, "tokenizer_config.json"), "w") as f:
    json.dump({"chat_template": SMOLLM2, "bos_token": "<|im_start|>", "eos_token": "<|im_end|>"}, f)

PROMPTS = [f"Prompt {i}: the model reads the text and writes" for i in range(16)]


# ---- checks -----------------------------------------------------------------

@check("health is 503 until a runtime is READY, then 200, and 503 when it goes away")
def health_across_loading():
    srv = Server(name="later")
    seen = []
    r = requests.get(srv.url + "/health", timeout=10)
    seen.append(r.status_code)
    expect(r.status_code == 503 and "no runtime" in r.json()["error"]["message"], r.text)
    expect(requests.get(srv.url + "/live", timeout=10).status_code == 200, "/live")
    # The runtime starts after the server: loading the small model takes a while.
    rt = subprocess.Popen([SHMRT, "start", "--model", SMALL, "--name", "later", "--max-seqs", "4"], env=ENV,
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    PROCS.append(rt)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and seen[-1] != 200:
        seen.append(requests.get(srv.url + "/health", timeout=10).status_code)
        time.sleep(0.02)
    expect(seen[0] == 503 and seen[-1] == 200, f"health sequence {seen[:3]}..{seen[-3:]}")
    # Chat on a model without a template: a clear 400.
    r = srv.post("/v1/chat/completions", {"messages": [{"role": "user", "content": "hi"}]})
    expect(r.status_code == 400 and "chat template" in r.json()["error"]["message"], r.text)
    rt.send_signal(signal.SIGTERM)
    rt.wait(timeout=60)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and requests.get(srv.url + "/health", timeout=10).status_code != 503:
        time.sleep(0.05)
    expect(requests.get(srv.url + "/health", timeout=10).status_code == 503, "still 200 after the runtime left")
    # A runtime of that name again: the server attaches to the new one.
    rt = subprocess.Popen([SHMRT, "start", "--model", PLAIN, "--name", "later"], env=ENV,
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    PROCS.append(rt)
    srv.wait_ready(120)
    r = srv.post("/v1/completions", {"prompt": PROMPTS[0], "max_tokens": 12, "temperature": 0})
    expect(r.status_code == 200 and r.json()["choices"][0]["text"] == generate(PLAIN, PROMPTS[0], 12), r.text)
    rt.send_signal(signal.SIGTERM)
    rt.wait(timeout=60)
    expect(srv.stop() == 0, "serve exit status")


MAIN = None


@check("Vertex predict, 1 and 16 instances, equals shmrt generate greedy")
def predict_equals_generate():
    want = [generate(TINY, p, 12) for p in PROMPTS]
    r = MAIN.post("/predict", {"instances": [{"prompt": PROMPTS[0], "raw_response": True}],
                               "parameters": {"max_tokens": 12, "temperature": 0}})
    expect(r.status_code == 200, r.text)
    expect(r.json()["predictions"] == [want[0]], f"{r.json()} != {want[0]!r}")
    r = MAIN.post("/predict", {"instances": [{"prompt": p} for p in PROMPTS],
                               "parameters": {"max_tokens": 12, "temperature": 0, "raw_response": True}})
    expect(r.status_code == 200, r.text)
    expect(r.json()["predictions"] == want, f"{r.json()['predictions']} != {want}")
    # Model Garden's default form, and instance fields over parameters.
    padded = "  " + PROMPTS[1] + "\n"
    r = MAIN.post("/predict", {"instances": [{"prompt": padded, "max_tokens": 12}],
                               "parameters": {"max_tokens": 3, "temperature": 0}})
    want_padded = "Prompt:\n" + PROMPTS[1] + "\nOutput:\n" + generate(TINY, padded, 12).strip("\n")
    expect(r.json()["predictions"] == [want_padded], f"{r.text} != {want_padded!r}")
    # curl, as a user would send it
    body = json.dumps({"instances": [{"prompt": PROMPTS[2], "max_tokens": 12, "temperature": 0,
                                      "raw_response": True}]})
    out = subprocess.run(["curl", "-sS", "-H", "Content-Type: application/json", "-d", body, MAIN.url + "/predict"],
                         capture_output=True, text=True, timeout=120)
    expect(json.loads(out.stdout)["predictions"] == [want[2]], out.stdout + out.stderr)


@check("openai client: completions and chat, streamed text equals the whole reply")
def openai_stream_equals_whole():
    client = openai.OpenAI(base_url=MAIN.url + "/v1", api_key="unused", max_retries=0)
    models = client.models.list()
    model = models.data[0].id
    expect(model == "tiny", f"model id {model}")
    whole = client.completions.create(model=model, prompt=PROMPTS[3], max_tokens=20, temperature=0)
    expect(whole.choices[0].text == generate(TINY, PROMPTS[3], 20), "completion != generate")
    expect(whole.usage.completion_tokens == 20 and whole.usage.prompt_tokens > 0, str(whole.usage))
    expect(whole.choices[0].finish_reason == "length", whole.choices[0].finish_reason)
    parts, finish, usage = [], None, None
    for chunk in client.completions.create(model=model, prompt=PROMPTS[3], max_tokens=20, temperature=0,
                                           stream=True, stream_options={"include_usage": True}):
        if chunk.choices:
            parts.append(chunk.choices[0].text)
            finish = chunk.choices[0].finish_reason or finish
        if chunk.usage:
            usage = chunk.usage
    expect("".join(parts) == whole.choices[0].text, f"{''.join(parts)!r} != {whole.choices[0].text!r}")
    expect(finish == "length" and usage and usage.completion_tokens == 20, f"{finish} {usage}")

    messages = [{"role": "system", "content": "You are terse."}, {"role": "user", "content": "Say hello."}]
    chat = client.chat.completions.create(model=model, messages=messages, max_tokens=24, temperature=0)
    text = chat.choices[0].message.content
    expect(chat.choices[0].message.role == "assistant" and len(text) > 0, str(chat))
    parts, roles = [], []
    for chunk in client.chat.completions.create(model=model, messages=messages, max_tokens=24, temperature=0,
                                                stream=True):
        delta = chunk.choices[0].delta
        if delta.role:
            roles.append(delta.role)
        if delta.content:
            parts.append(delta.content)
    expect(roles == ["assistant"], f"roles {roles}")
    expect("".join(parts) == text, f"{''.join(parts)!r} != {text!r}")
    # The same conversation through Vertex's chatCompletions instance.
    r = MAIN.post("/predict", {"instances": [{"@requestFormat": "chatCompletions", "messages": messages,
                                              "max_tokens": 24, "temperature": 0}]})
    expect(r.json()["predictions"][0]["choices"][0]["message"]["content"] == text, r.text)
    # A model that is not served: 404, as vLLM answers.
    try:
        client.completions.create(model="gpt-4", prompt="x", max_tokens=1)
        raise AssertionError("no error for an unknown model")
    except openai.NotFoundError:
        pass


@check("stop strings cut the text (whole and streamed); seeds repeat; n choices")
def stop_seed_n():
    base = MAIN.post("/v1/completions", {"prompt": PROMPTS[4], "max_tokens": 24, "temperature": 0}).json()
    text = base["choices"][0]["text"]
    stop = text[len(text) // 2: len(text) // 2 + 3]
    cut = text[:text.index(stop)]
    r = MAIN.post("/v1/completions", {"prompt": PROMPTS[4], "max_tokens": 24, "temperature": 0, "stop": [stop]})
    expect(r.json()["choices"][0]["text"] == cut and r.json()["choices"][0]["finish_reason"] == "stop", r.text)
    with requests.post(MAIN.url + "/v1/completions", stream=True, timeout=60,
                       json={"prompt": PROMPTS[4], "max_tokens": 24, "temperature": 0, "stop": stop,
                             "stream": True}) as resp:
        events = list(sse_events(resp))
    expect(events[-1] == "[DONE]", events[-1])
    streamed = "".join(json.loads(e)["choices"][0]["text"] for e in events[:-1])
    expect(streamed == cut, f"{streamed!r} != {cut!r}")
    body = {"prompt": PROMPTS[5], "max_tokens": 16, "temperature": 1.0, "seed": 1234, "n": 3}
    a, b = MAIN.post("/v1/completions", body).json(), MAIN.post("/v1/completions", body).json()
    expect([c["text"] for c in a["choices"]] == [c["text"] for c in b["choices"]], "same seed, other text")
    expect(len({c["text"] for c in a["choices"]}) > 1, "n=3 gave three equal samples")
    # A seed gives the tokens `shmrt generate --seed` gives (choice i: seed + i).
    out = shmrt("generate", "--model", TINY, "--prompt", PROMPTS[5], "--max-tokens", "16", "--temperature", "1",
                "--seed", "1235", "--json")
    expect(json.loads(out.stdout)["text"] == a["choices"][1]["text"], "seed 1235 differs from generate's")
    expect([c["index"] for c in a["choices"]] == [0, 1, 2], str(a))


@check("bad requests get a clear 4xx and the server keeps serving")
def bad_requests():
    cases = [
        (b'{"prompt": ', 400, "not valid JSON"),
        (b'[1, 2]', 400, "JSON object"),
        (b'{"prompt": "x", "max_tokens": "many"}', 400, "'max_tokens' must be an integer"),
        (b'{"prompt": "x", "temperature": -1}', 400, "'temperature' must be between"),
        (b'{"prompt": "x", "stop": [1]}', 400, "'stop'"),
        (b'{"prompt": ""}', 400, "empty"),
        (b'{"prompt": [1, 99999999]}', 400, "not an id"),
        (json.dumps({"prompt": "word " * 600}).encode(), 400, "maximum context length"),
        (b'{"prompt": "\xff\xfe"}', 400, "not valid JSON"),
    ]
    for body, status, words in cases:
        r = requests.post(MAIN.url + "/v1/completions", data=body, timeout=60)
        expect(r.status_code == status and words in r.json()["error"]["message"], f"{body[:40]!r}: {r.status_code} {r.text}")
        expect(r.json()["error"]["code"] == status and r.json()["error"]["type"] == "invalid_request_error", r.text)
        ok = MAIN.post("/v1/completions", {"prompt": "x", "max_tokens": 2})
        expect(ok.status_code == 200, "the next request failed: " + ok.text)
    r = MAIN.post("/predict", {"instances": [{"prompt": "a"}, {"max_tokens": 3}]})
    expect(r.status_code == 400 and "instance 1" in r.text, r.text)
    r = MAIN.post("/predict", {"instance": []})
    expect(r.status_code == 400, r.text)
    big = b'{"prompt": "' + b"a" * 2_000_000 + b'"}'  # over Vertex's 1.5 MB
    r = requests.post(MAIN.url + "/v1/completions", data=big, timeout=60)
    expect(r.status_code == 413, f"{r.status_code} {r.text[:200]}")
    expect(requests.get(MAIN.url + "/nowhere", timeout=10).status_code == 404, "404")
    expect(requests.get(MAIN.url + "/v1/completions", timeout=10).status_code == 405, "405")
    expect(MAIN.post("/v1/completions", {"prompt": "x", "max_tokens": 2}).status_code == 200, "after all")


@check("metrics: Prometheus text with the shmrt_ figures, moving with requests")
def metrics():
    text, before = MAIN.metrics()
    MAIN.post("/v1/completions", {"prompt": "metrics", "max_tokens": 5, "temperature": 0})
    text, after = MAIN.metrics()
    for name in ["shmrt_requests_running", "shmrt_requests_waiting", "shmrt_prompt_tokens_total",
                 "shmrt_generation_tokens_total", "shmrt_kv_blocks_used", "shmrt_kv_blocks_free",
                 "shmrt_restarts_total", "shmrt_shm_arena_bytes", "shmrt_time_to_first_token_seconds_count",
                 "shmrt_inter_token_latency_seconds_count", "shmrt_e2e_request_latency_seconds_count",
                 'shmrt_ring_used_bytes{ring="submit"}', 'shmrt_ring_capacity_bytes{ring="responses"}']:
        expect(name in after, f"{name} missing:\n{text}")
    expect(after["shmrt_generation_tokens_total"] - before["shmrt_generation_tokens_total"] == 5, "tokens")
    expect(after["shmrt_time_to_first_token_seconds_count"] > before["shmrt_time_to_first_token_seconds_count"],
           "ttft count")
    expect(after["shmrt_inter_token_latency_seconds_count"] - before["shmrt_inter_token_latency_seconds_count"] == 4,
           "4 inter-token gaps for 5 tokens")
    arena = os.path.join(SHM, "shmrt-" + MAIN.name)
    expect(after["shmrt_shm_arena_bytes"] == os.path.getsize(arena), "arena bytes != the file's size")
    for line in text.splitlines():
        expect(re.fullmatch(r"(# (HELP|TYPE) \S+ .+|[a-z0-9_]+(\{[^}]*\})? \S+)", line), f"bad line {line!r}")


@check("1,000 idle connections held at once, and each then served")
def idle_connections():
    import resource
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    n = min(1000, hard - 100)
    socks = [socket.create_connection(("127.0.0.1", MAIN.port), timeout=30) for _ in range(n)]
    time.sleep(1)
    expect(MAIN.post("/v1/completions", {"prompt": "x", "max_tokens": 2}).status_code == 200, "busy server")
    for s in socks:
        s.sendall(b"GET /live HTTP/1.1\r\nHost: x\r\n\r\n")
    ok = 0
    for s in socks:
        if s.recv(64).startswith(b"HTTP/1.1 200"):
            ok += 1
        s.close()
    expect(ok == n == 1000, f"{ok} of {n} idle connections answered")
    expect(MAIN.proc.poll() is None, "serve died")


SLOW = None


def stream_some(body, events=3):
    """Opens a stream and reads a few events; returns the open response."""
    resp = requests.post(SLOW.url + "/v1/completions", json=body, stream=True, timeout=300)
    expect(resp.status_code == 200, resp.text if resp.status_code != 200 else "")
    it = sse_events(resp)
    for _ in range(events):
        next(it)
    return resp, it


@check("a client that disconnects mid-stream frees its KV blocks")
def disconnect_frees_blocks():
    base = SLOW.stat()["scheduler"]
    resp, _ = stream_some({"prompt": "A long story", "max_tokens": 2000, "ignore_eos": True, "stream": True})
    st = SLOW.stat()["scheduler"]
    expect(st["running"] == 1 and st["kv_blocks_used"] > base["kv_blocks_used"], f"not running: {st}")
    resp.raw._fp.fp.raw._sock.shutdown(socket.SHUT_RDWR)  # the client goes away
    resp.close()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        st = SLOW.stat()["scheduler"]
        if st["running"] == 0 and st["waiting"] == 0 and st["kv_blocks_used"] == base["kv_blocks_used"]:
            break
        time.sleep(0.1)
    expect(st["running"] == 0 and st["kv_blocks_used"] == base["kv_blocks_used"], f"blocks kept: {st}")
    _, m = SLOW.metrics()
    expect(m['shmrt_request_success_total{finished_reason="abort"}'] >= 1, "no abort counted")


@check("a full queue answers 503 with Retry-After, and serves again after")
def queue_full():
    streams = [stream_some({"prompt": f"s{i}", "max_tokens": 2000, "ignore_eos": True, "stream": True}, 1)
               for i in range(2)]  # --max-pending 2
    r = SLOW.post("/v1/completions", {"prompt": "one more", "max_tokens": 2})
    expect(r.status_code == 503 and r.headers.get("Retry-After") == "1", f"{r.status_code} {r.headers}")
    expect("retry later" in r.json()["error"]["message"], r.text)
    for resp, _ in streams:
        resp.close()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        r = SLOW.post("/v1/completions", {"prompt": "one more", "max_tokens": 2})
        if r.status_code == 200:
            break
        time.sleep(0.2)
    expect(r.status_code == 200, "never served again: " + r.text)


@check("SIGTERM during streams: they end cleanly, serve exits 0, the arena is removed")
def sigterm_during_streams():
    results = []

    def reader(resp, it):
        try:
            rest = list(it)
            results.append(rest[-1] if rest else "nothing")
        except Exception as e:
            results.append(f"broken: {e!r}")

    threads = []
    for i in range(2):  # --max-pending 2
        resp, it = stream_some({"prompt": f"stream {i}", "max_tokens": 2000, "ignore_eos": True, "stream": True}, 2)
        t = threading.Thread(target=reader, args=(resp, it))
        t.start()
        threads.append(t)
    expect(any(f.startswith("shmrt-") for f in os.listdir(SHM)), "no arena")
    status = SLOW.stop(signal.SIGTERM, timeout=120)
    for t in threads:
        t.join(60)
    expect(status == 0, f"serve exit status {status}: {SLOW.output()[-2000:]}")
    expect(results == ["[DONE]"] * 2, f"streams ended as {results}")
    left = [f for f in os.listdir(SHM) if f == "shmrt-" + SLOW.name]
    expect(not left, f"arena left: {left}")


@check("Vertex AI variables: AIP_HTTP_PORT, routes and AIP_STORAGE_URI; gs:// refused clearly")
def vertex_env():
    port = free_port()
    env = dict(ENV, AIP_HTTP_PORT=str(port), AIP_HEALTH_ROUTE="/v1/endpoints/7/deployedModels/9",
               AIP_PREDICT_ROUTE="/v1/endpoints/7/deployedModels/9:predict", AIP_STORAGE_URI=TINY)
    proc = subprocess.Popen([SHMRT, "serve", "--host", "127.0.0.1"], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    PROCS.append(proc)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    code = None
    while time.monotonic() < deadline and code != 200:
        try:
            code = requests.get(url + "/v1/endpoints/7/deployedModels/9", timeout=10).status_code
        except requests.ConnectionError:
            pass
        time.sleep(0.1)
    expect(code == 200, f"health route {code}")
    r = requests.post(url + "/v1/endpoints/7/deployedModels/9:predict", timeout=60,
                      json={"instances": [{"prompt": PROMPTS[0], "max_tokens": 12, "temperature": 0,
                                           "raw_response": True}]})
    expect(r.json()["predictions"] == [generate(TINY, PROMPTS[0], 12)], r.text)
    proc.send_signal(signal.SIGTERM)
    expect(proc.wait(timeout=60) == 0, "exit status")
    out = subprocess.run([SHMRT, "serve"], env=dict(ENV, AIP_STORAGE_URI="gs://bucket/model"),
                         capture_output=True, text=True, timeout=30)
    expect(out.returncode == 2 and "does not fetch" in out.stderr, out.stderr)


@check("shmrt bench serve: its document (C API and HTTP rows, the ratio, idle connections)")
def bench_serve():
    out = shmrt("bench", "serve", "--preset", "tiny", "--streams", "4", "--seconds", "1", "--max-tokens", "8",
                "--rounds", "1", "--idle", "50", "--json")
    expect(out.returncode == 0, out.stderr)
    doc = json.loads(out.stdout)
    rows = {r["path"]: r for r in doc["rows"]}
    for path in ("c-api", "http"):
        r = rows[path]
        expect(r["errors"] == 0 and r["requests"] >= 4 and r["tokens"] == 8 * r["requests"], f"{path}: {r}")
        expect(0 < r["ttft_p50_s"] <= r["ttft_p99_s"], f"{path} ttft: {r}")
    ratio = rows["http"]["tokens_per_s"] / rows["c-api"]["tokens_per_s"]
    expect(abs(doc["http_over_c_api_tokens_per_s"] - ratio) < 1e-9, "the ratio is not of the rows")
    expect(doc["idle"]["opened"] == doc["idle"]["answered"] == 50 and doc["idle"]["load_errors"] == 0, str(doc["idle"]))


def main():
    global MAIN, SLOW
    try:
        health_across_loading()
        MAIN = Server("--model", TINY, "--max-seqs", "32", name="main")
        MAIN.wait_ready()
        predict_equals_generate()
        openai_stream_equals_whole()
        stop_seed_n()
        bad_requests()
        metrics()
        idle_connections()
        expect(MAIN.stop() == 0, "main serve exit status")
        SLOW = Server("--model", SMALL, "--max-seqs", "4", "--max-pending", "2", "--drain-seconds", "1",
                      name="slow")
        SLOW.wait_ready()
        disconnect_frees_blocks()
        queue_full()
        sigterm_during_streams()
        vertex_env()
        bench_serve()
    except Exception:
        traceback.print_exc()
        RESULTS.append(("setup", False))
    finally:
        for p in PROCS:
            if p.poll() is None:
                p.kill()
                p.wait()
        shutil.rmtree(TMP, ignore_errors=True)
        shutil.rmtree(SHM, ignore_errors=True)
    passed = sum(1 for _, ok in RESULTS if ok)
    failed = len(RESULTS) - passed
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
