#!/usr/bin/env python3
"""Writes io/wordpiece_tables.cpp: the Unicode data BERT's basic tokenizer needs.

Hugging Face `tokenizers` (BertNormalizer + BertPreTokenizer) asks, per code point:
  remove   NUL, U+FFFD, and "control": general category Cc, Cf, Co or Cs, except \\t \\n \\r
           (unassigned Cn code points are kept). Removal wins over white space: U+000B,
           U+000C, U+0085 are Cc and vanish.
  space    \\t \\n \\r and the White_Space property (Rust's char::is_whitespace):
           U+0009..U+000D, U+0020, U+0085, Zs, Zl, Zp (after removal: \\t \\n \\r and Z*)
  cjk      the CJK ideograph blocks HF's is_chinese_char lists (note 0x2B920, not BERT's
           0x2B820: HF's table, which is the reference here)
  punct    ASCII 33-47, 58-64, 91-96, 123-126, or general category P*
and maps characters with
  strip    NFD, then the non-spacing marks (Mn) dropped (Hangul syllables decompose
           algorithmically in C++ and are not listed)
  lower    Rust's char::to_lowercase, which is Python's str.lower() on one character (no
           final-sigma context: each character alone)

The tables come from the running Python's unicodedata (kBertUnicodeVersion names its
version). HF's Rust crates carry their own, older Unicode data (unicode_categories: marks,
format characters and punctuation assigned since are "unassigned" there, so HF keeps them
as letters). --derive-overrides asks HF about every code point alone (class, strip,
lower) and writes where it disagrees into scripts/wordpiece_hf_overrides.json (504 code
points with Python 3.11 / Unicode 14.0.0 and tokenizers 0.20.3); the tables take HF's
answer there. --check-hf then runs every code point between two letters through HF's
BertNormalizer + BertPreTokenizer, cased and uncased, against a model of loom's basic
tokenizer over the tables: 0 code points differ.

    python3 scripts/gen_wordpiece_tables.py --derive-overrides   # needs tokenizers
    python3 scripts/gen_wordpiece_tables.py > io/wordpiece_tables.cpp
    python3 scripts/gen_wordpiece_tables.py --check-hf
"""
import json
import os
import sys
import unicodedata

OTHER, REMOVE, SPACE, PUNCT, CJK = 0, 1, 2, 3, 4
NAMES = {OTHER: "other", REMOVE: "R", SPACE: "S", PUNCT: "P", CJK: "C"}

CJK_RANGES = [(0x4E00, 0x9FFF), (0x3400, 0x4DBF), (0x20000, 0x2A6DF), (0x2A700, 0x2B73F),
              (0x2B740, 0x2B81F), (0x2B920, 0x2CEAF), (0xF900, 0xFAFF), (0x2F800, 0x2FA1F)]
WHITE_SPACE_CC = {0x09, 0x0A, 0x0B, 0x0C, 0x0D, 0x85}

# Code points where HF's Rust Unicode data disagrees with this Python's: cp -> (class,
# strip mapping or None, lower mapping or None), from scripts/wordpiece_hf_overrides.json
# (written by --derive-overrides, which asks HF about every code point).
OVERRIDES_FILE = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                              "wordpiece_hf_overrides.json")
OVERRIDES = {}
if os.path.exists(OVERRIDES_FILE) and "--derive-overrides" not in sys.argv:
    with open(OVERRIDES_FILE, encoding="utf-8") as f:
        OVERRIDES = {int(k, 16): tuple(v) for k, v in json.load(f)["overrides"].items()}


def is_cjk(cp):
    return any(lo <= cp <= hi for lo, hi in CJK_RANGES)


def is_hangul_syllable(cp):
    return 0xAC00 <= cp <= 0xD7A3


def bert_class(cp):
    if cp in OVERRIDES:
        return OVERRIDES[cp][0]
    if cp in (0x09, 0x0A, 0x0D, 0x20):
        return SPACE
    cat = unicodedata.category(chr(cp))
    if cp == 0 or cp == 0xFFFD or cat in ("Cc", "Cf", "Co", "Cs"):
        return REMOVE
    if cat in ("Zs", "Zl", "Zp") or cp in WHITE_SPACE_CC:
        return SPACE
    if is_cjk(cp):
        return CJK
    if (33 <= cp <= 47) or (58 <= cp <= 64) or (91 <= cp <= 96) or (123 <= cp <= 126):
        return PUNCT
    if cat[0] == "P":
        return PUNCT
    return OTHER


def strip_map(cp):
    """NFD without Mn, or None when it is the character itself."""
    if cp in OVERRIDES:   # None: HF keeps the character
        return OVERRIDES[cp][1]
    c = chr(cp)
    out = "".join(x for x in unicodedata.normalize("NFD", c)
                  if unicodedata.category(x) != "Mn")
    return None if out == c else out


def lower_map(cp):
    if cp in OVERRIDES:
        return OVERRIDES[cp][2]
    c = chr(cp)
    out = c.lower()
    return None if out == c else out


def scalar_values():
    for cp in range(0x110000):
        if not (0xD800 <= cp <= 0xDFFF):
            yield cp


def ranges():
    out = []
    start, cls = 0, bert_class(0)
    for cp in range(1, 0x110001):
        c = (bert_class(cp) if not (0xD800 <= cp <= 0xDFFF) else REMOVE) if cp < 0x110000 else -1
        if c != cls:
            if cls != OTHER:
                out.append((start, cp - 1, cls))
            start, cls = cp, c
    return out


def c_string(s):
    return '"' + "".join("\\x%02X" % b for b in s.encode("utf-8")) + '"'


def emit():
    rs = ranges()
    strips = [(cp, strip_map(cp)) for cp in scalar_values()
              if not is_hangul_syllable(cp) and bert_class(cp) not in (REMOVE, SPACE)]
    strips = [(cp, s) for cp, s in strips if s is not None]
    lowers = [(cp, lower_map(cp)) for cp in scalar_values() if bert_class(cp) not in (REMOVE, SPACE)]
    lowers = [(cp, s) for cp, s in lowers if s is not None]
    # The C++ side applies strip then lower, and classifies the mapped characters again:
    # mapped characters are never removed or white space, and CJK stays CJK.
    for cp, s in strips + lowers:
        for x in s:
            assert bert_class(ord(x)) not in (REMOVE, SPACE), hex(cp)
        if is_cjk(cp):
            assert all(is_cjk(ord(x)) for x in s), hex(cp)
    w = sys.stdout.write
    w("// Generated by scripts/gen_wordpiece_tables.py - do not edit; run the script again.\n")
    w("// Source: Python's unicodedata, Unicode %s; checked against Hugging Face `tokenizers`\n"
      % unicodedata.unidata_version)
    w("// (--check-hf). %d class ranges, %d strip-accent maps, %d lower-case maps.\n"
      % (len(rs), len(strips), len(lowers)))
    w('#include "io/wordpiece_tables.h"\n\n')
    w("namespace loom::unicode {\n\n")
    w('const char kBertUnicodeVersion[] = "%s";\n\n' % unicodedata.unidata_version)
    w("// {first, last, class}: sorted, disjoint; code points in no range are kOther.\n")
    w("const BertClassRange kBertClassRanges[] = {\n")
    line = []
    for first, last, cls in rs:
        line.append("{0x%X, 0x%X, B%s}," % (first, last, NAMES[cls]))
        if len(line) == 4:
            w("    " + " ".join(line) + "\n")
            line = []
    if line:
        w("    " + " ".join(line) + "\n")
    w("};\n")
    w("const size_t kBertClassRangeCount = sizeof(kBertClassRanges) / sizeof(kBertClassRanges[0]);\n\n")
    for name, table, what in (("kStripAccentMaps", strips, "NFD without Mn (UTF-8; may be empty)"),
                              ("kLowerMaps", lowers, "the lower-case form (UTF-8)")):
        w("// {code point, %s}: sorted by code point.\n" % what)
        w("const CodePointMap %s[] = {\n" % name)
        for cp, s in table:
            w("    {0x%X, %s},\n" % (cp, c_string(s)))
        w("};\n")
        w("const size_t %sCount = sizeof(%s) / sizeof(%s[0]);\n\n" % (name, name, name))
    w("}  // namespace loom::unicode\n")


# ---- the model of loom's basic tokenizer, for --check-hf -----------------------------------

def hangul_nfd(cp):
    return unicodedata.normalize("NFD", chr(cp))


def loom_words(text, lowercase, strip):
    """BERT's basic tokenizer as io/wordpiece.cpp runs it, from the tables above."""
    words, cur = [], []

    def boundary():
        if cur:
            words.append("".join(cur))
            cur.clear()

    for c in text:
        cp = ord(c)
        cls = bert_class(cp)
        if cls == REMOVE:
            continue
        if cls == SPACE:
            boundary()
            continue
        out = c
        if strip:
            out = hangul_nfd(cp) if is_hangul_syllable(cp) else (strip_map(cp) or c)
            if strip_map(cp) == "":
                out = ""
        if lowercase:
            out = "".join(lower_map(ord(x)) or x for x in out)
        if cls == CJK:
            boundary()
            words.append(out)
            continue
        for x in out:
            xc = bert_class(ord(x))
            if xc == SPACE:
                boundary()
            elif xc == PUNCT:
                boundary()
                words.append(x)
            else:
                cur.append(x)
    boundary()
    return [w for w in words if w]


def check_hf():
    from tokenizers import normalizers, pre_tokenizers
    pre = pre_tokenizers.BertPreTokenizer()
    diff = 0
    for lowercase in (True, False):
        norm = normalizers.BertNormalizer(clean_text=True, handle_chinese_chars=True,
                                          strip_accents=None, lowercase=lowercase)
        for cp in scalar_values():
            text = "a" + chr(cp) + "b"
            hf = [p for p, _ in pre.pre_tokenize_str(norm.normalize_str(text))]
            ours = loom_words(text, lowercase, lowercase)
            if hf != ours:
                diff += 1
                if diff <= 50:
                    print("U+%04X %s lowercase=%s: HF %r, tables %r" % (
                        cp, unicodedata.category(chr(cp)), lowercase, hf, ours))
    print("%d code points differ (Unicode %s)" % (diff, unicodedata.unidata_version))
    return diff


def derive_overrides():
    """Asks HF about each code point alone (class, strip accents, lower case) and writes the
    code points where its answer differs from unicodedata's into OVERRIDES_FILE."""
    from tokenizers import normalizers, pre_tokenizers
    pre = pre_tokenizers.BertPreTokenizer()
    cased = normalizers.BertNormalizer(lowercase=False, strip_accents=False)
    strip = normalizers.BertNormalizer(lowercase=False, strip_accents=True,
                                       handle_chinese_chars=False)
    lower = normalizers.BertNormalizer(lowercase=True, strip_accents=False,
                                       handle_chinese_chars=False)
    out = {}
    for cp in scalar_values():
        c = chr(cp)
        words = [p for p, _ in pre.pre_tokenize_str(cased.normalize_str("a" + c + "b"))]
        if words == ["ab"]:
            cls = REMOVE
        elif words == ["a", "b"]:
            cls = SPACE
        elif words == ["a", c, "b"]:
            cls = CJK if cased.normalize_str(c) == " " + c + " " else PUNCT
        else:
            cls = OTHER
        s = strip.normalize_str(c)
        s = None if s == c else s
        l = lower.normalize_str(c)
        l = None if l == c else l
        if cls in (REMOVE, SPACE):
            s = l = None
        mine = (bert_class(cp), None if cls in (REMOVE, SPACE) else strip_map(cp),
                None if cls in (REMOVE, SPACE) else lower_map(cp))
        if is_hangul_syllable(cp):
            mine = (mine[0], s, mine[2])
        if (cls, s, l) != mine:
            out["%04X" % cp] = [cls, s, l]
    import tokenizers
    with open(OVERRIDES_FILE, "w", encoding="utf-8") as f:
        f.write('{"tokenizers": "%s", "unicode": "%s", "overrides": {\n' % (
            tokenizers.__version__, unicodedata.unidata_version))
        f.write(",\n".join('"%s": %s' % (k, json.dumps(v)) for k, v in sorted(out.items())))
        f.write("\n}}\n")
    print("%d overrides written to %s" % (len(out), OVERRIDES_FILE))


if __name__ == "__main__":
    if "--derive-overrides" in sys.argv:
        derive_overrides()
        sys.exit(0)
    if "--check-hf" in sys.argv:
        sys.exit(1 if check_hf() else 0)
    emit()
