"""Golden test of serve/chat_template.c: every template of chat_templates.py
renders a set of conversations with python3-jinja2, set up as Hugging Face's
transformers does (trim_blocks, lstrip_blocks, raise_exception), and the
C renderer (chat_render) must print the same bytes, or refuse the same
conversations. Usage: chat_template_golden.py CHAT_RENDER"""
import json
import os
import subprocess
import sys
import tempfile

try:
    import jinja2
    from jinja2.sandbox import ImmutableSandboxedEnvironment
except ImportError:
    print("SKIP: python3-jinja2 is not installed (scripts/dev.sh installs it)")
    sys.exit(77)

sys.path.insert(0, os.path.dirname(__file__))
from chat_templates import TEMPLATES  # noqa: E402

CONVERSATIONS = [
    [{"role": "user", "content": "Hello!"}],
    [{"role": "system", "content": "You are terse."}, {"role": "user", "content": "What is 2+2?"}],
    [{"role": "user", "content": "  padded  \n"}, {"role": "assistant", "content": " Four. "},
     {"role": "user", "content": "And 3+3?"}],
    [{"role": "system", "content": "Be kind."}, {"role": "user", "content": "Hi"},
     {"role": "assistant", "content": "Hello, how can I help?"}, {"role": "user", "content": "Tell me a joke"}],
    [{"role": "user", "content": "日本語 and emoji 🎉, <b>tags</b>, {{ braces }}"}],
    [{"role": "user", "content": "first"}, {"role": "user", "content": "second"}],  # not alternating
    [{"role": "assistant", "content": "I start"}],
    [{"role": "user", "content": [{"type": "text", "text": "part one"}, {"type": "text", "text": "part two"}]}],
]


class TemplateError(Exception):
    pass


def jinja_render(template, bos, eos, messages):
    def raise_exception(message):
        raise TemplateError(message)

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)
    env.globals["raise_exception"] = raise_exception
    return env.from_string(template).render(messages=messages, add_generation_prompt=True,
                                            bos_token=bos or "", eos_token=eos or "")


def flatten(messages):
    """OpenAI content parts joined by newlines, as the server does before rendering."""
    out = []
    for m in messages:
        c = m["content"]
        if isinstance(c, list):
            c = "\n".join(p["text"] for p in c)
        out.append({"role": m["role"], "content": c})
    return out


def main():
    render = sys.argv[1]
    failures = checked = 0
    with tempfile.TemporaryDirectory() as tmp:
        for name, (template, bos, eos) in TEMPLATES.items():
            cfg = {"chat_template": template, "eos_token": eos}
            if bos is not None:
                cfg["bos_token"] = {"content": bos, "lstrip": False}  # the object form some files use
            with open(os.path.join(tmp, "tokenizer_config.json"), "w") as f:
                json.dump(cfg, f)
            for i, conv in enumerate(CONVERSATIONS):
                path = os.path.join(tmp, "messages.json")
                with open(path, "w") as f:
                    json.dump(conv, f)
                try:
                    want = jinja_render(template, bos, eos, flatten(conv))
                except TemplateError as e:
                    want = e
                got = subprocess.run([render, tmp, path], capture_output=True)
                checked += 1
                if isinstance(want, TemplateError):
                    ok = got.returncode == 3 and str(want) in got.stderr.decode()
                else:
                    ok = got.returncode == 0 and got.stdout.decode() == want
                if not ok:
                    failures += 1
                    print(f"FAIL {name} conversation {i}:\n  jinja2: {want!r}\n  shmrt:  rc={got.returncode} "
                          f"{got.stdout.decode()!r} {got.stderr.decode()!r}")
    # A template shmrt does not render is refused with a clear message.
    with tempfile.TemporaryDirectory() as tmp:
        with open(os.path.join(tmp, "tokenizer_config.json"), "w") as f:
            json.dump({"chat_template": "{{ messages[0]['content'] }}"}, f)
        path = os.path.join(tmp, "messages.json")
        with open(path, "w") as f:
            json.dump(CONVERSATIONS[0], f)
        got = subprocess.run([render, tmp, path], capture_output=True)
        checked += 1
        if got.returncode != 3 or b"not one shmrt renders" not in got.stderr:
            failures += 1
            print("FAIL: an unknown template was not refused:", got)
    print(f"{checked - failures} passed, {failures} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
