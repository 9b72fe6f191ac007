#!/usr/bin/python3
"""The GPT-2 test fixture (spec/fixtures/gpt2/) and the PyTorch Sequential
fixture (spec/fixtures/torch_sequential*), built with Hugging Face's own
packages so that Ember reads files laid out exactly as published ones.

Regenerate (from the repository root) in a throwaway virtual environment
that sees the system's torch 1.13; the tests never import Python:

    /usr/bin/python3 -m venv --system-site-packages /tmp/venv-gpt2
    /tmp/venv-gpt2/bin/pip install tokenizers transformers==4.38.2 safetensors
    OPENBLAS_CORETYPE=Haswell /tmp/venv-gpt2/bin/python \
        spec/reference/make_gpt2_fixture.py

It needs the Debian package "fortunes" (/usr/share/games/fortunes/).

What it writes, in spec/fixtures/gpt2/:
  vocab.json, merges.txt   a byte-level BPE tokenizer in GPT-2's format:
                           ByteLevelBPETokenizer (GPT-2's pattern and byte
                           mapping, no prefix space) trained to 1,000
                           tokens (the 256 bytes and the merges) on the
                           text of TRAIN_FILES, read in that order and
                           given to the trainer as ONE string (what
                           ember.data.BPE.train(text, 1000) is given), then
                           <|endoftext|> appended as id 1000, as GPT-2 puts
                           its special token last (id 50256)
  config.json,             GPT2LMHeadModel(GPT2Config(n_layer=2, n_embd=64,
  model.safetensors        n_head=4, n_positions=128, vocab_size=1001,
                           initializer_range=0.2)), torch.manual_seed(19),
                           saved by save_pretrained(safe_serialization=True):
                           Hugging Face's names, Conv1D weights stored
                           input-major (in, out), lm_head left out as tied
                           to transformer.wte.weight
  texts.json               a JSON array of 1,000 strings: lines of the
                           fortune files TEST_FILES (none of them trained
                           on), every seventh one joined to the next with a
                           newline, followed by EXTRA (unicode, digits,
                           contractions, runs of spaces, tabs, newlines)
  ids_reference.txt        GPT-2's 0-based ids of each text, one line of
                           space-separated ids per text (Ember's are one
                           more); the slow GPT2Tokenizer (the regex
                           package, GPT-2's reference code) and the fast
                           one (Rust) agree on every text, checked here
  reference.lua            PROMPTS, their ids (0-based), the float32 logits
                           of the last position of each (model.eval()),
                           and the logits at every position of PROMPTS[3] (all_logits, row-major),
                           each the shortest decimal that reads back as the
                           same float32
  train_files.txt          the names of TRAIN_FILES, one a line
In spec/fixtures/:
  torch_sequential.safetensors   state_dict() of nn.Sequential(Linear(4, 8),
                                 ReLU(), Linear(8, 3)), torch.manual_seed(7):
                                 PyTorch's 0-based names 0.weight ... 2.bias
  torch_sequential_values.lua    an input x (5 x 4) and the model's output
"""
import json
import os
import sys

import numpy
import torch
from safetensors.torch import save_file
from tokenizers import ByteLevelBPETokenizer
from transformers import (GPT2Config, GPT2LMHeadModel, GPT2Tokenizer,
                          GPT2TokenizerFast)

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import luavalues  # noqa: E402

FORTUNES = "/usr/share/games/fortunes"
TRAIN_FILES = ["computers", "science"]
TEST_FILES = ["wisdom", "law", "linux", "knghtbrd", "pets", "tao",
              "startrek", "humorists"]
OUT = "spec/fixtures/gpt2"
N_TEXTS = 1000
VOCAB = 1000
EOT = "<|endoftext|>"
VENV_NOTE = ["(in the venv of the script's docstring: it needs transformers)"]

# Lines the fortune files lack: other scripts, digits of other systems,
# contractions in every spelling, whitespace of every kind.
EXTRA = [
    "Ελληνικά: η γρήγορη καφέ αλεπού πηδά πάνω από τον τεμπέλη σκύλο.",
    "Русский текст: съешь же ещё этих мягких французских булок, да выпей чаю.",
    "日本語のテキストと中文文本混在。漢字かな交じり文！",
    "한국어 문장도 있습니다: 안녕하세요 세계",
    "Crème brûlée, naïve café, façade, Ångström, Øresund, Łódź, Dvořák.",
    "Straße, Ärger, Öl, Übermut — «guillemets» and „Anführungszeichen“.",
    "Emoji 😀🎉👍🏽 and symbols ™ © ® ° ± × ÷ € £ ¥ §.",
    "Arabic-Indic digits ٠١٢٣٤٥٦٧٨٩, superscripts x² y³, fractions ½ ¾, Ⅻ o'clock.",
    "Fullwidth ＡＢＣ１２３ and math 𝐀𝐁𝐂 𝟏𝟐𝟑.",
    "עברית ושלום, العربية مرحبا, हिन्दी नमस्ते, ไทย สวัสดี",
    "Combining: e\u0301 a\u0308 n\u0303 and precomposed é ä ñ.",
    "it's don't we're they've I'm you'll he'd IT'S DON'T 's 't 're 've 'm 'll 'd",
    "'s'''t rock'n'roll o'clock ''quoted'' 'tis y'all ma'am",
    "Numbers: 3.14159, 2,718,281, 1e10, -42, +7, 0x1F, 100%, 12:30, 2024-01-19",
    "1234567890123456789 a1b2c3 v2.0.1 ~/.bashrc C:\\Windows\\System32",
    "two  spaces,   three,    four,          ten.",
    "   leading spaces and trailing spaces   ",
    "\tleading tab, inner\ttab, trailing tab\t",
    "line one\nline two\n\nafter a blank line\n",
    "\n\n\nthree newlines first",
    "mixed \t \n \r\n whitespace \u000b\u000c runs",
    "carriage\rreturn and crlf\r\nend",
    "no-break\u00a0space, thin\u2009space, ideographic\u3000space",
    "punctuation!!! ??? ... --- *** ### @@@ $$$ ^^^ &&& ((())) [[]] {{}}",
    "<|endoftext|> is just text here, not a special token",
    "email@example.com https://example.org/path?q=1&r=2#frag",
    "ALL CAPS SHOUTING AND MiXeD cAsE wOrDs",
    "tabs\t\t\tand spaces   \t  mixed",
    " ",
    "a",
    "",
    "Ωμέγα Ж ж Ѣ ѣ Ґ ґ Ї ї — Latin Extended: ŉ ſ ƒ Ǆ ǅ ǆ ȸ ɐ ʃ",
    "Vietnamese: Tiếng Việt có dấu, Hà Nội, Thành phố Hồ Chí Minh",
    "CJK extension 𠀀𠀁 and kana ｶﾀｶﾅ, hangul jamo ᄀᄁ",
    "Devanagari digits ०१२३ and Thai digits ๑๒๓",
    "trailing newline\n",
    "  \n  ",
    "zero\u200bwidth space and soft\u00adhyphen",
]


def fortune_lines(name):
    with open(os.path.join(FORTUNES, name), encoding="utf-8") as f:
        text = f.read()
    return [ln for ln in text.split("\n") if ln.strip() and ln != "%"]


def make_texts():
    texts = []
    for name in TEST_FILES:
        lines = fortune_lines(name)
        i = 0
        while i < len(lines):
            if len(texts) % 7 == 6 and i + 1 < len(lines):
                texts.append(lines[i] + "\n" + lines[i + 1])
                i += 2
            else:
                texts.append(lines[i])
                i += 1
            if len(texts) == N_TEXTS - len(EXTRA):
                return texts + EXTRA
    raise SystemExit("not enough test lines")


def train_tokenizer():
    corpus = ""
    for name in TRAIN_FILES:
        with open(os.path.join(FORTUNES, name), encoding="utf-8") as f:
            corpus += f.read()
    tok = ByteLevelBPETokenizer()  # GPT-2's regex and byte mapping
    tok.train_from_iterator([corpus], vocab_size=VOCAB, min_frequency=2,
                            show_progress=False)
    tok.save_model(OUT)
    # GPT-2's layout: the special token last
    with open(os.path.join(OUT, "vocab.json"), encoding="utf-8") as f:
        vocab = json.load(f)
    assert len(vocab) == VOCAB and EOT not in vocab
    vocab[EOT] = VOCAB
    with open(os.path.join(OUT, "vocab.json"), "w", encoding="utf-8") as f:
        json.dump(vocab, f, ensure_ascii=False)
    with open(os.path.join(OUT, "train_files.txt"), "w") as f:
        f.write("".join(n + "\n" for n in TRAIN_FILES))


def make_ids(texts):
    slow = GPT2Tokenizer(os.path.join(OUT, "vocab.json"),
                         os.path.join(OUT, "merges.txt"))
    fast = GPT2TokenizerFast.from_pretrained(OUT)
    ids = []
    for t in texts:
        a = slow.encode(t)
        b = fast.encode(t)
        assert a == b, ("slow and fast tokenizers differ", t, a, b)
        assert slow.decode(a, clean_up_tokenization_spaces=False) == t, t
        ids.append(a)
    with open(os.path.join(OUT, "ids_reference.txt"), "w") as f:
        f.write("".join(" ".join(map(str, a)) + "\n" for a in ids))
    with open(os.path.join(OUT, "texts.json"), "w", encoding="utf-8") as f:
        json.dump(texts, f, ensure_ascii=False, indent=0)
        f.write("\n")
    return slow


PROMPTS = [
    "The quick brown fox jumps over the lazy dog.",
    "Hello, world! It's 2024 and we're testing GPT-2.",
    "A computer is a machine",
    "Ελληνικά and Русский, 日本語",
    "x",
]


def short(t):
    """The float32 values of t as the shortest decimals that read back to
    the same float32 (9 significant digits at most), to keep the file small."""
    return [luavalues.Lua(repr(numpy.float32(v)))
            for v in t.reshape(-1).tolist()]


def make_model(tok):
    torch.manual_seed(19)
    config = GPT2Config(vocab_size=VOCAB + 1, n_positions=128, n_embd=64,
                        n_layer=2, n_head=4, initializer_range=0.2,
                        bos_token_id=VOCAB, eos_token_id=VOCAB)
    model = GPT2LMHeadModel(config).eval()
    model.save_pretrained(OUT, safe_serialization=True)
    ref = {"prompts": [], "ids": [], "last_logits": []}
    with torch.no_grad():
        for i, p in enumerate(PROMPTS):
            ids = tok.encode(p)
            logits = model(torch.tensor([ids])).logits[0]
            ref["prompts"].append(p)
            ref["ids"].append(ids)
            ref["last_logits"].append(short(logits[-1]))
            if i == 2:
                ref["all_logits"] = {"shape": list(logits.shape),
                                     "data": short(logits)}
    luavalues.write(
        os.path.join(OUT, "reference.lua"), ref, "make_gpt2_fixture.py",
        torch.__version__,
        notes=VENV_NOTE + [
            "ids are GPT-2's (0-based); logits are float32, model.eval()"],
        lines=1)


def make_sequential():
    torch.manual_seed(7)
    m = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(),
                            torch.nn.Linear(8, 3))
    save_file({k: v.contiguous() for k, v in m.state_dict().items()},
              "spec/fixtures/torch_sequential.safetensors")
    x = torch.linspace(-2, 2, 20).reshape(5, 4)
    with torch.no_grad():
        y = m(x)
    luavalues.write("spec/fixtures/torch_sequential_values.lua",
                    {"x": luavalues.tensor(x), "y": luavalues.tensor(y),
                     "keys": sorted(m.state_dict().keys())},
                    "make_gpt2_fixture.py", torch.__version__, notes=VENV_NOTE)


def main():
    os.makedirs(OUT, exist_ok=True)
    train_tokenizer()
    texts = make_texts()
    tok = make_ids(texts)
    make_model(tok)
    make_sequential()
    for name in sorted(os.listdir(OUT)):
        print(name, os.path.getsize(os.path.join(OUT, name)))


if __name__ == "__main__":
    main()
