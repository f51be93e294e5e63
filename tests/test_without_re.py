"""Text read by hand reads as the regular expressions it replaced read it.

``strtol``, ``split_list`` and ``expand_percent`` run in every quick command (a
``print`` to ``lp=host%port`` expands and parses its value), a queue's first journal
looks for older tickets and data files by name, lpd's filter cuts ``PRINTCAP_ENTRY``
and writes a PJL job name at every job's start, and a client's ``status`` of a forwarded
queue loads the LPD protocol's module: none of them imports ``re`` any more. The oracles
below are the old code's patterns: they are what the new code is compared with, for any
text.
"""
from __future__ import annotations

import re
from collections.abc import Callable

from hypothesis import example, given, settings
from hypothesis import strategies as st

from lpfilter.printcap import datatypes, grammar
from lpfilter.protocols import lpd, pjl
from lpfilter.spool.tickets import numbered

PROPERTY = settings(max_examples=2000, deadline=None)
#: What steers a number or a list: signs, bases, digits of each kind, C's and other blanks.
NUMBERISH = st.text(alphabet=" \t\n\v\f\r\xa0+-0123456789xXabcdefABCDEFgG8,;%\u0661.",
                    max_size=12)
_STRTOL = r"[ \t\n\v\f\r]*([+-]?)(0[xX][0-9a-fA-F]+|0[0-7]*|[1-9][0-9]*)"


def _strtol_by_re(text: str) -> int:
    match = re.match(_STRTOL, text)
    if match is None:
        return 0
    sign, digits = match.groups()
    if digits[:2] in ("0x", "0X"):
        value = int(digits[2:], 16)
    elif digits.startswith("0"):
        value = int(digits, 8) if len(digits) > 1 else 0
    else:
        value = int(digits)
    return -value if sign == "-" else value


def _leftover_by_re(text: str) -> str:
    match = re.match(_STRTOL, text)
    return text[match.end():] if match else text


def _is_number_word_by_re(text: str) -> bool:
    word = datatypes.c_strip(text).lower()
    return word in ("yes", "true", "all", "allow", "no", "false", "none", "deny") or (
        re.match(_STRTOL, word) is not None and _leftover_by_re(word) == "")


@PROPERTY
@given(NUMBERISH)
@example("0x")
@example(" -0X1fz")
@example("0789")
@example("+")
@example("\v+012")
@example("\u0661")
def test_strtol_reads_what_the_pattern_read(text: str) -> None:
    assert datatypes.strtol(text) == _strtol_by_re(text)
    assert datatypes.strtol_leftover(text) == _leftover_by_re(text)
    assert datatypes.is_number_word(text) == _is_number_word_by_re(text)


@PROPERTY
@given(st.text(alphabet=" \t,;\n\xa0ab", max_size=12))
def test_split_list_splits_where_the_pattern_split(text: str) -> None:
    assert datatypes.split_list(text) == [item for item in re.split(r"[ \t,;]+", text)
                                          if item]


@PROPERTY
@given(st.text(alphabet="%PQhH\n%x", max_size=12),
       st.dictionaries(st.sampled_from("PQh%\n"), st.text(alphabet="%Pab", max_size=3)))
@example("100%", {})
@example("%%P", {"P": "lp", "%": "!"})
def test_expand_percent_expands_what_the_pattern_expanded(text: str,
                                                          codes: dict[str, str]) -> None:
    expected = re.sub(r"(?s)%(.)", lambda m: codes.get(m.group(1), m.group(0)), text)
    assert datatypes.expand_percent(text, codes) == expected


def test_a_quick_command_s_conversions_import_no_re(fresh_python: Callable[[str], str]) -> None:
    code = ("import sys; from lpfilter.printcap import datatypes as d; "
            "assert d.expand_percent('127.0.0.1%9100', {'P': 'lp'}) == '127.0.0.1%9100'; "
            "assert d.strtol('0x10') == 16 and d.split_list('a, b') == ['a', 'b']; "
            "print('re' in sys.modules)")
    assert fresh_python(code) == "False"


@PROPERTY
@given(st.text(alphabet="0123456789\u0661\u00b2.jobcancelx\n", max_size=14),
       st.sampled_from([(".job", None), (".cancel", None), (".data", 12)]))
@example("000001.job", (".job", None))
@example("1234567890123.data", (".data", 12))
@example("12.job\n", (".job", None))
def test_a_spool_file_name_is_told_as_the_pattern_told_it(
        name: str, form: tuple[str, int | None]) -> None:
    """``tickets.numbered`` against ``^\\d+SUFFIX$`` (``\\d{1,12}`` for data files), but
    for a name ending in a newline, which ``$`` let through (no file lpfilter writes)."""
    suffix, most = form
    digits = r"\d+" if most is None else r"\d{1,%d}" % most
    expected = re.match(rf"^{digits}{re.escape(suffix)}$", name) is not None
    assert numbered(name, suffix, most) == (expected and not name.endswith("\n"))


# --- PRINTCAP_ENTRY, as lpd's filter reads it (printcap/grammar.py) ----------------------

#: What steers the entry's cuts: colons, backslashes, blanks, the line ends, key stops.
ENTRYISH = st.text(alphabet=":\\ \t\n\f\x04\x14=#@|,;ab", max_size=24)


@PROPERTY
@given(ENTRYISH)
@example(r"lp|x:\:a=b\\:c\:")
@example("\\:a:b")
@example("a\\:")
def test_options_are_cut_where_the_pattern_cut_them(text: str) -> None:
    expected = [(m.start(), m.group()) for m in re.finditer(grammar.OPTION, text)]
    assert grammar.cut_options(text) == expected
    assert grammar.option_key(text) == re.match(r"[^ \t=#@]*", text).group()
    names, options = re.fullmatch(f"([^:]*)((?:{grammar.OPTION})*)", text).group(1, 2)
    assert grammar.parse_entry(text, fast=True).names == [
        n.strip(datatypes.C_SPACE) for n in names.split("|") if n.strip(datatypes.C_SPACE)]
    assert (names + options) == text


@PROPERTY
@given(ENTRYISH)
def test_lines_and_includes_are_cut_where_the_patterns_cut_them(text: str) -> None:
    pieces = [piece for line in text.split("\n") for piece in re.split("[\f\x04\x14]", line)]
    kept = [p.strip(datatypes.C_SPACE) for p in pieces]
    assert [line.text for line in grammar.physical_lines(text)] == [
        p for p in kept if p and p[0] != "#"]
    line = "include " + text.replace("\n", " ")
    files = grammar.include_files(line)
    assert files is not None
    rest = re.match(r"(?i)include(?=[ \t]|$)(.*)", line, re.S).group(1)
    assert files == [name for name in re.split(r"[ \t,;:]+", rest) if name]


def test_a_filter_s_entry_and_pjl_import_no_re(fresh_python: Callable[[str], str]) -> None:
    code = ("import sys; from lpfilter.printcap import entrytext; from lpfilter.protocols "
            "import pjl; e = entrytext.entry_from_text('lp|x:\\n :lp=h%9100:\\n :sh@:\\n'); "
            "assert e.name == 'lp', e.name; pjl.job_start('a\\x1b\"b', enter='post-script'); "
            "pjl.ReplyParser().feed(b'@PJL USTATUS JOB\\r\\nCODE=10023\\r\\n\\x0c'); "
            "print('re' in sys.modules)")
    assert fresh_python(code) == "False"


# --- PJL (protocols/pjl.py): a filter's job name, language and a status code -------------

@PROPERTY
@given(st.text(max_size=80), st.integers(min_value=0, max_value=90))
@example('a"b\\c\x1b\n d', 64)
@example("  x  ", 3)
def test_a_pjl_name_is_made_safe_as_the_pattern_made_it(text: str, limit: int) -> None:
    expected = re.sub(r"[^\x20-\x7e]|[\"\\]", "_", text)[:limit].strip() or "job"
    assert pjl.safe_name(text, limit) == expected


@PROPERTY
@given(st.text(alphabet="PCLpostscript-_ 5\u00e9\u0661", max_size=12),
       st.text(alphabet="CODE0123456789\u0661x", max_size=8))
@example("PCL-XL", "CODE")
@example("x", "CODE\u0661")
def test_pjl_language_and_code_are_read_as_the_patterns_read_them(enter: str,
                                                                  key: str) -> None:
    language = re.sub(r"[^A-Za-z0-9]", "", enter).upper()
    expected = pjl.UEL + b"@PJL" + pjl.EOL + pjl.command('JOB NAME="n"') + (
        pjl.command(f"ENTER LANGUAGE={language}") if language else b"")
    assert pjl.job_start("n", ustatus=False, enter=enter) == expected
    reply = pjl.Reply("status", "", {key: "42"})
    assert reply.code == (42 if re.fullmatch(r"CODE\d*", key) else None)


# --- LPD (protocols/lpd.py): job file names, a file name's host part, a request's words --

_FILE_NAME = r"(cf|df)([A-Za-z])(\d{3,6})([A-Za-z0-9._-]*)"


#: A start that is often a job file name's (``cf``/``df``, a letter, digits), then anything.
FILE_NAMEISH = st.builds(
    "".join, st.lists(st.sampled_from(["cf", "df", "cF", "A", "\u00e9", "1", "23", "4567",
                                       "\u0661", ".", "..", "_", "-", "/", "h", "x"]),
                      max_size=8))


@PROPERTY
@given(FILE_NAMEISH)
@example("cfA123host")
@example("dfB1234567890")
@example("cfA12")
@example("cf\u00e9123x")
@example("cfA123\u0661")
@example("cfA12345678.host")
def test_a_job_file_name_is_read_as_the_pattern_read_it(name: str) -> None:
    found = re.fullmatch(_FILE_NAME, name, re.ASCII)
    good = found is not None and len(name) <= lpd.MAX_FILE_NAME and ".." not in name
    try:
        lpd.check_file_name(name)
        checked = True
    except lpd.LpdProtocolError:
        checked = False
    assert checked == good
    if good:
        assert found is not None
        assert lpd.file_job(name) == (int(found.group(3)), found.group(4))


@PROPERTY
@given(st.text(alphabet="ab.-_/ \u00e9\u0661\n9", max_size=24),
       st.integers(min_value=0, max_value=40))
@example("..a...b..", 31)
@example("h\u00e9st.example.org", 15)
def test_a_file_name_s_host_is_made_as_the_patterns_made_it(host: str, limit: int) -> None:
    expected = re.sub(r"\.\.+", ".", re.sub(r"[^A-Za-z0-9.-]", "_", host)[:limit])
    assert lpd.name_host(host, limit) == (expected.strip(".") or "localhost")


@PROPERTY
@given(st.integers(min_value=1, max_value=5), st.lists(st.sampled_from(
    [b" ", b"\t", b"\x0b", b"\x0c", b"\x1c", b"\x85", b"lp", b"bob", b"7", b"\xe9"]),
    max_size=8).map(b"".join))
@example(3, b"lp  bob\t\x0b\x0c7")
@example(5, b"q\x1croot")
def test_a_request_s_words_are_cut_where_the_pattern_cut_them(code: int, body: bytes) -> None:
    """RFC 1179's separators (SP, HT, VT, FF); a line never holds NUL, CR or LF here
    (``_text_line`` refuses them first)."""
    line = bytes([code]) + body
    words = [w.decode("utf-8", "surrogateescape")
             for w in re.split(rb"[ \t\v\f]+", line[1:]) if w]
    refused = (any(not w.isprintable() for w in words) or not words
               or (code == lpd.Request.REMOVE and len(words) < 2))
    try:
        parsed = lpd.parse_request(line)
    except lpd.LpdProtocolError:
        assert refused
        return
    assert not refused
    assert (parsed.queue, *parsed.operands) == tuple(words)


def test_a_forwarded_queue_s_status_imports_no_re_nor_dataclasses(
        fresh_python: Callable[[str], str]) -> None:
    """What ``lpfilter status`` of an ``lp=queue@host`` queue uses of the protocol: the
    request, a reply's lines, an acknowledgement and a job's file names."""
    code = ("import sys; from lpfilter.protocols import lpd; "
            "assert lpd.status('lp', ('bob',), long=True) == b'\\x04lp bob\\n'; "
            "assert lpd.status_lines(b'a\\x1bb\\n') == ['a\\\\x1bb']; "
            "assert lpd.parse_ack(b'\\x01no').permanent; "
            "assert lpd.job_names('000042', 'h..x').control == 'cfA042h.x'; "
            "print(sorted({'re', 'dataclasses', 'zlib'} & set(sys.modules)))")
    assert fresh_python(code) == "[]"


# --- a pass's names and numbers (issue 16, round 20: a cron pass imports no re) -----------
_LPRNG_FILES = re.compile(r"^(?:[hcdt]f[A-Za-z]\d{3}|lpd\.lock\.)")


@PROPERTY
@given(st.text(alphabet="hcdtfAzZ09\u0661\u00e9.lpdock_ \n", max_size=12))
@example("cfA123host")
@example("dfZ\u0661\u0662\u0663")
@example("lpd.lock.host")
@example("hfa12")
def test_lprngs_own_spool_files_are_told_as_the_pattern_told_them(name: str) -> None:
    from lpfilter.spool.hotfolder import lprng_file
    assert lprng_file(name) == bool(_LPRNG_FILES.match(name))


@PROPERTY
@given(st.one_of(st.none(), st.text(alphabet="0123456789\u0661\u00b2 x-", max_size=6)))
def test_a_numeric_letter_is_plain_digits_as_the_pattern_said(value: str | None) -> None:
    from lpfilter.filters.command import _number_only
    expected = (None if value is None or not re.fullmatch(r"[0-9]+", value)
                else value.lstrip("0") or "0")
    assert _number_only(value) == expected


def test_a_lazy_pattern_is_the_pattern(fresh_python: Callable[[str], str]) -> None:
    """``memo.Pattern`` compiles at its first use, and is the compiled pattern from then
    on; importing the modules that keep one imports no re."""
    from lpfilter.memo import Pattern
    from lpfilter.programs import TOKEN
    lazy = Pattern(r"\$([0 \t\-']*)(\{[^}]*\}|[A-Za-z*])")
    assert [m.group(0) for m in lazy.finditer("a $0P ${x} $-J $' b")] == [
        m.group(0) for m in re.finditer(lazy.pattern, "a $0P ${x} $-J $' b")]
    assert TOKEN.sub("*", "x$Py${a}") == "x*y*" and lazy.match("$P").end() == 2
    code = ("import sys; import lpfilter.programs, lpfilter.filters.dollars,"
            " lpfilter.filters.command, lpfilter.spool.hotfolder; print('re' in sys.modules)")
    assert fresh_python(code) == "False"
