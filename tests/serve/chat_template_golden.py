"""Golden test of serve/chat_template.c: every template of chat_templates.py
renders a set of conversations with python3-jinja2, set up as Hugging Face's
transformers does (trim_blocks, lstrip_blocks, raise_exception), and the
C renderer (chat_render) must print the same bytes, or refuse the same
conversations. Each template is also read from a GGUF file's
tokenizer.chat_template (written with the gguf package, when it is
installed), as shmrt serve reads a .gguf model's; SmolLM2's as its GGUF
carries it too, with real newlines inside the Jinja strings.
Usage: chat_template_golden.py CHAT_RENDER"""
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


def write_gguf(path, template, bos, eos):
    """A GGUF vocabulary with the template and BOS/EOS tokens; False
    without the gguf package."""
    try:
        import gguf
    except ImportError:
        return False
    specials = [t for t in (bos, eos) if t]
    tokens = specials + [chr(c) for c in range(ord("!"), ord("~") + 1)] + ["!!"]
    w = gguf.GGUFWriter(path, "llama")
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre("gpt-2")
    w.add_token_list(tokens)
    w.add_token_types([3] * len(specials) + [1] * (len(tokens) - len(specials)))
    w.add_token_merges(["! !"])
    if bos:
        w.add_bos_token_id(0)
    w.add_add_bos_token(bool(bos))
    if eos:
        w.add_eos_token_id(len(specials) - 1)
    w.add_chat_template(template)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return True


def main():
    render = sys.argv[1]
    failures = checked = 0
    cases = [(name, t, False) for name, t in TEMPLATES.items()]
    cases += [(name + " (GGUF)", t, True) for name, t in TEMPLATES.items()]
    smol = TEMPLATES["smollm2"]
    cases.append(("smollm2 (its GGUF's newlines)", (smol[0].replace("\\n", "\n"), smol[1], smol[2]), True))
    with tempfile.TemporaryDirectory() as tmp:
        for name, (template, bos, eos), is_gguf in cases:
            model = tmp
            if is_gguf:
                model = os.path.join(tmp, "model.gguf")
                if not write_gguf(model, template, bos, eos):
                    print(f"note: no gguf package, {name} left out")
                    continue
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
                got = subprocess.run([render, model, path], capture_output=True)
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
