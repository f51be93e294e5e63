"""The real-world printcap corpus (shared/printcaps) read as LPRng 3.8.B reads it.

Every expected value below was derived by hand from the file text and
shared/reference/lprng-printcap.md (section numbers in the comments), never copied from
lpfilter's output. SOURCES.md says what real LPRng 3.8.B does with the notable files.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

import pytest
from sharedkit import CORPUS, SHARED, require_shared

from lpfilter import printcap
from lpfilter.cli import main
from lpfilter.errors import NoSuchPrinter
from lpfilter.printcap.destination import Destination, Device, Invalid, Lpd, Socket

MISSING = "<shared/printcaps is missing>"

Value = bool | int | str | None


@dataclass(frozen=True)
class Expect:
    """What LPRng 3.8.B makes of one corpus file."""

    printers: list[str]                                   # `all` order (§4, §2.2)
    names: dict[str, str] = field(default_factory=dict)   # lookup name -> queue (§2.2)
    unknown: tuple[str, ...] = ()                         # names that find nothing
    values: dict[str, dict[str, Value]] = field(default_factory=dict)  # typed (§2.3, §6)
    texts: dict[str, dict[str, str]] = field(default_factory=dict)     # stored option text
    aliases: dict[str, list[str]] = field(default_factory=dict)        # queue -> e.names
    origins: dict[str, dict[str, int]] = field(default_factory=dict)   # queue -> key -> line
    dest: dict[str, Destination | type] = field(default_factory=dict)  # §5


RICOH = "RICOH_Aficio_MP_C3502_(002673406F9B)"
OLD_LPD = {"lp": "/dev/lp0", "sd": "/usr/spool/lpd", "lf": "/usr/spool/lpd/errs",
           "af": "/usr/spool/lpd/acct", "pw": 132, "pl": 66, "tr": None}

EXPECTED: dict[str, Expect] = {
    # §2.2: a primary name with a blank drops the entry *and* its aliases.
    "0penrc__Photosmart-C4580-LPR__printcap.printcap": Expect(
        [], unknown=("hp", "lp", "LP", "hp-bnw", "HP Photosmart C4580", "HP")),
    "386bsd__386bsd__etc__printcap.printcap": Expect(
        ["lp"], {"lp": "lp", "LP": "lp"}, ("local line printer", "local"),
        {"lp": {"lp": "/dev/lpt", "sd": "/var/spool/lpd", "if": "/usr/libexec/lpr/lpf",
                "lf": "/var/log/lpd-errs", "pw": 80, "mc": 1, "sh": False, "af": "acct"}},
        aliases={"lp": ["lp", "local line printer"]}, origins={"lp": {"lp": 4, "lf": 4}},
        dest={"lp": Device("/dev/lpt")}),
    "BroncoBilly__dotfiles__printcap.printcap": Expect(
        ["lp"], {"lp": "lp"}, ("rp", "local line printer"),
        {"lp": {"lp": "/dev/lpt0", "sd": "/var/spool/output/lpd", "lf": "/var/log/lpd-errs",
                "sh": True, "if": "/usr/local/libexec/hpif", "mx": 0, "pl": 66}}),
    # §1.5: indented ':' lines continue the entry; `HP4200 ` names the printer HP4200.
    "Distrotech__distrotech-core__etc__printcap.printcap": Expect(
        ["HP4200"], {"HP4200": "HP4200", "hp4200": "HP4200"}, (),
        {"HP4200": {"lp": "192.168.25.144%9100", "sd": "/var/spool/lpd/HP4200",
                    "if": "/var/spool/lpd/lpd_filter.HP4200", "pw": 80, "mc": 1, "sh": False}},
        origins={"HP4200": {"lp": 2, "sd": 3, "if": 4}},
        dest={"HP4200": Socket("192.168.25.144", 9100)}),
    # No sd: the default /var/spool/lpd/%P with %P expanded (§2.5, §6).
    "Distrotech__lprng__TESTSUPPORT__LPD__t1__printcap.printcap": Expect(
        ["t1"], {"T1": "t1"}, (),
        {"t1": {"lf": "log", "af": "accnt", "sd": "/var/spool/lpd/t1", "mc": 1, "pw": 80}},
        origins={"t1": {"af": 1}}, dest={"t1": Lpd("t1", "localhost")}),
    "Distrotech__lprng__TESTSUPPORT__lpd_printcap.proto.printcap": Expect(
        ["t3"], {"t3": "t3"}, ("t2",),
        {"t3": {"lp": "t2@_HOST_", "sd": "_TMP_LPD/t3", "if": "_TMP_LPD/bqfilter",
                "db": None, "mc": 1}},
        texts={"t3": {"bqfilter": "bqfilter"}}, origins={"t3": {"lp": 18, "sd": 19, "if": 20}},
        dest={"t3": Lpd("t2", "_HOST_")}),
    # `t1` alone on a line, then ':' lines with comments between (§1.3, §1.5); `\n` kept
    # verbatim in ld/tr/ff (§2.4); `_TMP_/t1_lp` is no lp form LPRng knows (§5).
    "Distrotech__lprng__TESTSUPPORT__printcap.proto.printcap": Expect(
        ["t1", "t2", "t3", "t4", "t5", "t6"], {"T2": "t2", "t6": "t6"},
        ("Test Printer 2", "all"),
        {"t1": {"sd": "_TMP_LPD/t1", "cm": "Test Printer 1", "rw": True, "lf": "log",
                "lp": "_TMP_/t1_lp", "ld": "leader\\n", "tr": "trailer\\n",
                "of": "_TMP_LPD/lpf -D10", "filter": "_TMP_LPD/filter -D10 -delay5",
                "ff": "formfeed\\n", "ah": False, "db": None},
         "t2": {"sd": "_TMP_LPD/t2", "lp": "t1@_HOST_", "lf": "log"},
         "t3": {"lp": "t3@_HOST_", "sd": "/var/spool/lpd/t3"},
         "t4": {"sd": "_TMP_LPD/t4", "sv": "t5,t6"},
         "t5": {"sd": "_TMP_LPD/t5", "ss": "t4", "lp": "_TMP_/t5_lp"},
         "t6": {"sd": "_TMP_LPD/t6", "ss": "t4", "lp": "_TMP_/t6_lp"}},
        aliases={"t2": ["t2", "Test Printer 2"]},
        origins={"t1": {"sd": 25, "ld": 31, "ff": 35}, "t2": {"lp": 41}},
        dest={"t1": Invalid, "t2": Lpd("t1", "_HOST_"), "t3": Lpd("t3", "_HOST_")}),
    # §4: `.common` is not in the list but can be looked up; %P is `.common`.
    "Distrotech__lprng__conf__printcap.printcap": Expect(
        [], {".common": ".common", ".COMMON": ".common"}, ("lp", "common"),
        {".common": {"sd": "/var/spool/lpd/.common", "sh": True, "mx": 0, "mc": 0, "pw": 80}},
        origins={".common": {"sd": 10, "mc": 11}}),
    "Godzil__lpstyl__printcap.printcap": Expect(
        ["lp", "stylps", "cstylps"], {"STYLPS": "stylps", "cstylps": "cstylps"},
        ("Apple Stylewriter for ASCII, using gs for rasterization",),
        {"lp": {"lp": "/dev/stylewriter", "sd": "/var/spool/stylps", "px": 3060, "py": 3960,
                "sh": True, "sf": True, "rw": True, "if": "/usr/local/sbin/stylascii",
                "lf": "/var/log/lpd-errs", "pw": 80},
         "stylps": {"if": "/usr/local/sbin/stylps", "sd": "/var/spool/stylps", "px": 3060},
         "cstylps": {"if": "/usr/local/sbin/stylps-color", "sd": "/var/spool/stylps"}},
        origins={"stylps": {"px": 9}, "cstylps": {"if": 16}}),
    # Last line `:pl#66` has no trailing ':' (harmless, §2.1); BSD tty keys kept, unused.
    "MattX__2BSD__etc__printcap.printcap": Expect(
        ["lp"], {"lp": "lp", "B300": "lp", "b300": "lp"}, (),
        {"lp": {**OLD_LPD, "lp": "/dev/ttyS5", "of": "/usr/lib/lpf", "if": "/usr/lib/lpf",
                "br": 9600, "mc": 1}},
        texts={"lp": {"xc": "xc#0", "xs": "xs#040040", "fc": "fc#077777", "fs": "fs#06320"}},
        aliases={"lp": ["lp", "B300"]}, origins={"lp": {"br": 18, "pw": 19, "pl": 20}}),
    "NetBSD__src__etc__printcap.printcap": Expect(
        [], unknown=("lp", "hp", "decwriter", "remote", "varian", "vp", "versatec")),
    # §2.1 empty aliases dropped; §2.2 blank aliases inert, later entry owns `Downstairs`.
    "OpenPrinting__foomatic-db-engine__etc__printcap.printcap": Expect(
        ["lp", "laser", "canon", "z32", "z32-outfiles", "queue34", "queue39", "new1",
         "queue18"],
        {"optra": "lp", "UPSTAIRS": "lp", "oki": "laser", "okidata": "laser",
         "canon": "canon", "downstairs": "new1", "Downstairs": "new1", "DOWNSTAIRS": "new1",
         "raw": "z32-outfiles", "Z32": "z32", "queue18": "queue18"},
        ("Lexmark Optra 40", "OkiPage 8z", "Canon BJC-4100", "Lexmark Z-32",
         "This *was* is a printer name", "Somewhere Over There", "Canon S4500", "New One",
         "Canon BJC-4400", "HP DeskJet 1120C"),
        {"lp": {"rp": "lp1", "sd": "/var/spool/lpd/lp", "rm": "color-printer.picante.com",
                "sh": True, "mx": 0, "lp": None, "af": "acct"},
         "laser": {"lp": "/dev/oki4drv", "af": "/usr/local/etc/oki8z.lom",
                   "if": "/usr/local/sbin/lpdomatic", "sd": "/var/spool/lpd/oki8z"},
         "canon": {"lp": "/dev/lp0", "af": "/usr/local/etc/bjc4100.lom",
                   "sd": "/var/spool/lpd/canon"},
         "z32": {"if": "/usr/local/lexmark/z32/z32.sh", "sd": "/var/spool/lpd/z32", "mx": 0},
         "z32-outfiles": {"lp": "/dev/lp0", "sd": "/var/spool/lpd/lp0", "sh": True},
         "queue34": {"lf": "/var/log/lp-errs", "lp": "/dev/null",
                     "sd": "/var/spool/lpd/queue34", "af": "./etc/queue34.lpd"},
         "queue39": {"sd": "/var/spool/lpd/queue39", "af": "./etc/queue39.lpd"},
         "new1": {"af": "./etc/lpd/new1.lpd", "sd": "/var/spool/lpd/new1",
                  "if": "/usr/local/bin/lpdomatic", "sh": True},
         "queue18": {"af": "./etc/lpd/queue18.lom", "sd": "/var/spool/lpd/queue18", "mc": 1,
                     "pw": 80, "mx": 0}},
        aliases={"lp": ["lp", "optra", "upstairs", "Lexmark Optra 40"],
                 "canon": ["canon", "downstairs", "Canon BJC-4100"],
                 "new1": ["new1", "New One", "Canon BJC-4400", "Downstairs"],
                 "queue18": ["queue18", "HP DeskJet 1120C"]},
        origins={"new1": {"sd": 72}, "queue18": {"mx": 91}, "z32": {"mx": 30}},
        dest={"lp": Lpd("lp1", "color-printer.picante.com"), "new1": Device("/dev/null")}),
    "bsdimp__2.11bsd__etc__printcap.printcap": Expect(
        ["lp"], {"lp": "lp"}, ("Line Printer", "ps0", "lz0", "d630", "HP4MX", "Home"),
        {"lp": {**OLD_LPD, "of": "/usr/libexec/lpr/lpf", "if": "/usr/libexec/lpr/lpf",
                "br": 0, "rm": None}},
        origins={"lp": {"lp": 12, "pl": 19}}),
    "calmsacibis995__bsdi-20-src__etc__printcap.printcap": Expect(
        ["lp", "lj", "ps"], {"LJ": "lj", "postscript": "ps", "PostScript": "ps"},
        ("local line printer", "HP LaserJet II", "PostScript serial printer", "rp"),
        {"lp": {"lp": "/dev/lp0", "sd": "/var/spool/lpd", "lf": "/var/log/lpd-errs",
                "if": "/usr/libexec/lpr/lpf", "sh": False, "br": 0},
         "lj": {"sh": True, "lp": "/dev/lp0", "if": "/usr/libexec/lpr/txt2jep-filter",
                "df": "/usr/libexec/lpr/dvi2jep-filter", "vf": "/usr/libexec/lpr/ps2jep-filter"},
         "ps": {"lp": "/dev/tty01", "br": 9600, "sb": True, "sf": True, "rw": True, "mx": 0,
                "af": "/dev/null", "if": "/usr/contrib/lib/lprps/psif", "sh": False,
                "of": "/usr/contrib/lib/lprps/psof", "df": "/usr/libexec/lpr/dvi2ps-filter",
                "stty": None}},
        texts={"ps": {"ms": "ms=raw,opost,onlcr,ixon,igncr,cstopb,-echok", "hw": "hw"}},
        origins={"lj": {"vf": 50}, "ps": {"hw": 63, "ms": 65, "df": 68}}),
    "deadloko__gentoo-work-configs__printcap.printcap": Expect(
        ["Kyocera_FS-1030MFP"], {"kyocera_fs-1030mfp": "Kyocera_FS-1030MFP"},
        ("Kyocera FS-1030MFP",),
        {"Kyocera_FS-1030MFP": {"rm": "gentoo-work", "rp": "Kyocera_FS-1030MFP", "lp": None,
                                "sd": "/var/spool/lpd/Kyocera_FS-1030MFP"}},
        dest={"Kyocera_FS-1030MFP": Lpd("Kyocera_FS-1030MFP", "gentoo-work")}),
    "nilus__bastard-etc__printcap.printcap": Expect(
        ["EPSON_Stylus_CX4100"], {"epson_stylus_cx4100": "EPSON_Stylus_CX4100"}, (),
        {"EPSON_Stylus_CX4100": {"rm": "Bastard", "rp": "EPSON_Stylus_CX4100",
                                 "sd": "/var/spool/lpd/EPSON_Stylus_CX4100"}},
        aliases={"EPSON_Stylus_CX4100": ["EPSON_Stylus_CX4100"]},
        dest={"EPSON_Stylus_CX4100": Lpd("EPSON_Stylus_CX4100", "Bastard")}),
    "openbsd__src__etc__printcap.printcap": Expect([], unknown=("lp", "rp")),
    # §2.1: the first ':' ends the names; `1` and `1|RICOH ...` become options.
    "optionalg__centos_local__printcap.printcap": Expect(
        [RICOH], {RICOH.lower(): RICOH}, (RICOH + ":1", "RICOH Aficio MP C3502 [002673406F9B]"),
        {RICOH: {"rm": "localhost.localdomain", "rp": RICOH, "sd": "/var/spool/lpd/" + RICOH}},
        texts={RICOH: {"1": "1", "1|ricoh": "1|RICOH Aficio MP C3502 [002673406F9B]"}},
        aliases={RICOH: [RICOH]}, dest={RICOH: Lpd(RICOH, "localhost.localdomain")}),
    # `$HOME` is no %-code: stored as written (§2.5).
    "rcslab__MusicPrinter__printcap.printcap": Expect(
        ["music"], {"MUSIC": "music"}, (),
        {"music": {"lp": "/dev/null", "sh": True, "mx": 0, "sd": "/tmp/spool",
                   "if": "$HOME/MusicPrinter/filter/play", "lf": "/var/log/music.err",
                   "pw": 80, "mc": 1}},
        origins={"music": {"if": 6}}, dest={"music": Device("/dev/null")}),
    "rdebath__SLS-1.02__etc__printcap.printcap": Expect(
        ["lp"], {"lp": "lp"}, ("ap", "arpa", "ucbvax", "varian", "versatec", "panasonic"),
        {"lp": {"lp": "/dev/lp1", "sd": "/usr/spool/lp1", "sh": True, "of": None,
                "lf": "log", "br": 0}},
        origins={"lp": {"sh": 18}}),
    # §2.2: LX300 goes to the later owner; primary lx300 (seen before) is not listed.
    "vcatafesta__conf__etc__printcap.printcap": Expect(
        ["LPT1-2", "LPT2-2", "SAMSUNG2020", "LPT1", "LPT2", "lx-r", "p1", "p2", "p3", "rlp"],
        {"LX300": "lx300", "lx300": "lx300", "Lx300": "lx300", "lpt1-2": "LPT1-2",
         "lpt1": "LPT1", "samsung2020": "SAMSUNG2020", "RLP": "rlp"},
        ("SAMSUNG 2020", "Epson Lx300 em Atendimento", "Impressora Remota",
         "Remote printer entry         #", "Remote printer entry", "lp"),
        {"LPT1-2": {"rm": "localhost", "rp": "LPT1", "sd": "/var/spool/lpd/LPT1-2",
                    "sh": False},
         "LPT2-2": {"rm": "localhost", "rp": "LPT2"},
         "SAMSUNG2020": {"rm": "localhost", "rp": "SAMSUNG2020"},
         "LPT1": {"sd": "/var/spool/lpd/LPT1", "rm": "10.0.0.99", "rp": "p1", "sh": True},
         "LPT2": {"rm": "ubuntu.sybernet.com.br", "rp": "lp"},
         "lx300": {"sd": "/var/spool/lpd/lx300", "rm": "10.0.0.99", "rp": "p1", "sh": True},
         "p2": {"rp": "p2", "sd": "/var/spool/lpd/p2"},
         "p3": {"sd": "/var/spool/lpd/p3", "rp": "p3"},
         "rlp": {"sd": "/var/spool/lpd/rlp", "rm": "10.0.0.99", "rp": "p1", "mx": 0,
                 "sh": True}},
        aliases={"LPT1-2": ["LPT1-2", "LX300"], "LPT2-2": ["LPT2-2", "LX300"],
                 "lx300": ["lx300", "Epson Lx300 em Atendimento"],
                 "rlp": ["rlp", "Remote printer entry         #"]},
        origins={"lx300": {"rm": 43}, "rlp": {"mx": 75}},
        dest={"LPT1": Lpd("p1", "10.0.0.99")}),
    "weiss__original-bsd__etc__printcap.printcap": Expect(
        ["lp"], {"lp": "lp"}, ("decwriter", "remote", "varian", "vp", "versatec"),
        {"lp": {"lp": "/dev/lp", "sd": "/var/spool/output/lpd", "lf": "/var/log/lpd-errs",
                "tr": None, "sh": False}}),
}

# checkpc traps: (file, lines the finding may be reported on, words the line must hold).
TRAPS: list[tuple[str, frozenset[int], tuple[str, ...]]] = [
    ("0penrc__Photosmart-C4580-LPR__printcap.printcap", frozenset({3}),
     ("HP Photosmart C4580",)),
    ("0penrc__Photosmart-C4580-LPR__printcap.printcap", frozenset({14}),
     ("HP Photosmart C4580 (Black and White)",)),
    ("optionalg__centos_local__printcap.printcap", frozenset({4}), ("RICOH", "':'")),
    ("rcslab__MusicPrinter__printcap.printcap", frozenset({6}), ("if", "$HOME")),
    ("vcatafesta__conf__etc__printcap.printcap", frozenset({41}), ("lx300", "printer list")),
    ("vcatafesta__conf__etc__printcap.printcap", frozenset({25, 26}), ("LX300",)),
    ("OpenPrinting__foomatic-db-engine__etc__printcap.printcap", frozenset({17, 68}),
     ("Downstairs", "new1")),
    *[("MattX__2BSD__etc__printcap.printcap", frozenset({18}), (key,))
      for key in ("xc", "xs", "fc", "fs")],
    ("calmsacibis995__bsdi-20-src__etc__printcap.printcap", frozenset({65}), ("ms",)),
    ("calmsacibis995__bsdi-20-src__etc__printcap.printcap", frozenset({63}), ("hw",)),
    ("Godzil__lpstyl__printcap.printcap", frozenset({8}), ("stylps", "/var/spool/stylps")),
    ("Godzil__lpstyl__printcap.printcap", frozenset({14}), ("cstylps", "/var/spool/stylps")),
]


def corpus_files() -> list[str]:
    """The *.printcap names in shared/printcaps, or a sentinel that makes tests skip (fail
    under CI)."""
    if not CORPUS.is_dir():
        return [MISSING]
    return sorted(p.name for p in CORPUS.glob("*.printcap"))


def path_of(name: str) -> str:
    """The path of a corpus file; skips (fails when CI is set) when shared/ is missing."""
    require_shared(SHARED)
    return str(CORPUS / name)


def expect_for(name: str) -> tuple[str, Expect]:
    """The file's path and its hand-derived expectations (missing ones fail the test)."""
    path = path_of(name)
    if name not in EXPECTED:
        pytest.fail(f"{name} has no hand-derived expectations in EXPECTED; add them")
    return path, EXPECTED[name]


def same(got: object, want: object) -> bool:
    """Equal and of the same type (True is not 1, '0' is not 0)."""
    return type(got) is type(want) and got == want


FILES = corpus_files()


def test_corpus_folder_present() -> None:
    """The corpus is found beside the repository (a skip without it, a failure in CI)."""
    path_of(FILES[0])
    assert FILES, f"no *.printcap files in {CORPUS}"


def test_listing_holds_every_file_of_sources_md() -> None:
    """Every file SOURCES.md describes is in the listing, and has expectations here."""
    path_of(FILES[0])
    text = (CORPUS / "SOURCES.md").read_text(encoding="utf-8")
    named = set(re.findall(r"^\| *([^|\s]+\.printcap) *\|", text, re.M))
    assert len(named) >= 20, f"SOURCES.md table not recognised ({sorted(named)})"
    assert not named - set(FILES), f"in SOURCES.md but not in the folder: {named - set(FILES)}"
    assert not set(FILES) - set(EXPECTED), f"no expectations: {set(FILES) - set(EXPECTED)}"
    assert not set(EXPECTED) - set(FILES), f"expected but absent: {set(EXPECTED) - set(FILES)}"


@pytest.mark.parametrize("name", FILES)
def test_printer_list(name: str) -> None:
    """LPRng's `all` order: first-seen primaries, minus punctuation-led and already-seen names."""
    path, want = expect_for(name)
    pc = printcap.load([path])
    assert pc.printer_names() == want.printers
    assert pc.default_printer() == (want.printers[0] if want.printers else None)
    assert not [str(p) for p in pc.problems if p.fatal]


@pytest.mark.parametrize("name", FILES)
def test_name_lookup(name: str) -> None:
    """Case-insensitive names and aliases; later entry owns a shared one; blank names inert."""
    path, want = expect_for(name)
    pc = printcap.load([path])
    errors: list[str] = []
    for asked, queue in {**{p: p for p in want.printers}, **want.names}.items():
        try:
            got = pc.lookup(asked).name
        except NoSuchPrinter as exc:
            got = f"NoSuchPrinter({exc})"
        if got != queue:
            errors.append(f"lookup({asked!r}): expected {queue!r}, got {got!r}")
    for asked in want.unknown:
        try:
            errors.append(f"lookup({asked!r}): expected NoSuchPrinter, got"
                          f" {pc.lookup(asked).name!r}")
        except NoSuchPrinter:
            pass
    for queue, names in want.aliases.items():
        if pc.lookup(queue).names != names:
            errors.append(f"{queue}.names: expected {names!r}, got {pc.lookup(queue).names!r}")
    assert not errors, "\n".join(errors)


@pytest.mark.parametrize("name", FILES)
def test_key_values(name: str) -> None:
    """Typed values (flag bool, number int, string str), %P expanded, LPRng defaults if absent."""
    path, want = expect_for(name)
    pc = printcap.load([path])
    errors: list[str] = []
    for queue, keys in want.values.items():
        entry = pc.lookup(queue)
        for key, value in keys.items():
            got = entry.get(key)
            if not same(got, value):
                errors.append(f"{queue}.{key}: expected {value!r}, got {got!r}")
    for queue, texts in want.texts.items():
        options = pc.lookup(queue).options
        for key, text in texts.items():
            got_text = options[key].text if key in options else None
            if got_text != text:
                errors.append(f"{queue} option {key!r}: expected text {text!r}, got {got_text!r}")
    for queue, lines in want.origins.items():
        entry = pc.lookup(queue)
        for key, line in lines.items():
            if str(entry.origin(key)) != f"{path}:{line}":
                errors.append(f"{queue}.{key}: expected at line {line}, got {entry.origin(key)}")
    for queue, dest in want.dest.items():
        got_dest = pc.lookup(queue).destination()
        ok = isinstance(got_dest, dest) if isinstance(dest, type) else got_dest == dest
        if not ok:
            errors.append(f"{queue} destination: expected {dest!r}, got {got_dest!r}")
    assert not errors, "\n".join(errors)


@pytest.mark.parametrize(("name", "lines", "words"), TRAPS,
                         ids=[f"{t[0].split('__')[0]}-{min(t[1])}-{t[2][0]}" for t in TRAPS])
def test_checkpc_reports_trap(name: str, lines: frozenset[int], words: tuple[str, ...],
                              capsys: pytest.CaptureFixture[str]) -> None:
    """checkpc names the file:LINE of each trap LPRng falls into with this real file."""
    path = path_of(name)
    status = main(["checkpc", "--printcap", path])
    out = capsys.readouterr().out.splitlines()
    assert status != 0, "checkpc must fail on a printcap with traps"
    prefixes = tuple(f"{path}:{line}: " for line in sorted(lines))
    hits = [line for line in out if line.startswith(prefixes)
            and all(re.search(rf"(?<!\w){re.escape(w.lower())}(?!\w)", line.lower())
                    for w in words)]
    assert hits, (f"no checkpc line at {' or '.join(prefixes)} mentioning {words};"
                  " got:\n" + "\n".join(out))
