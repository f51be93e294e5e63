#!/usr/bin/env python3
"""Printcap benchmark: how long reading a big printcap and a one-printer lookup take.

Run it with the interpreter lpfilter is installed in (its ``lpfilter`` command is timed).
Every figure comes from a fresh subprocess, so imports cost where a user pays them; the
subprocesses run without PYTHONDONTWRITEBYTECODE, after a warm-up round, so modules load
from .pyc files as for an installed lpfilter. Per cache state (off, cold, warm), in
interleaved rounds: (a) load() of the big printcap and peak RSS; (b) lookup() of every
printer; (c) and (d) wall time of ``lpfilter printcap -P NAME`` on the big and the
20-entry printcap; (e) for reference, ``python -c pass`` and ``import pyparsing``.

A missed target prints MISS and still exits 0: this is a benchmark, not a test. Exit
status 2 means it could not run (a command failed, or a printcap read back wrong).
"""
from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from benchkit import (BenchError, clean_env, header, lpfilter_command, machine_info, print_info,
                      row, spread, verdict)

BIG_ENTRIES = 10_000
#: (figure, target, limit in s, the only --entries it is judged at, if any).
TARGETS = [("load", "10,000-entry load() < 1 s", 1.0, BIG_ENTRIES),
           ("small_cmd", "20-entry lookup command < 150 ms wall", 0.150, None)]
SMALL_PRINTERS = 20
SPOOL = "/var/spool/lpd"

# --- generating the printcaps -------------------------------------------------------

#: tc= targets: .color -> .laser -> .common is three levels deep; .site stands alone.
TEMPLATES = f"""\
# Templates (tc= targets). A name starting with '.' is not a printer.

.common|.defaults:\\
\t:sh:mx#0:\\
\t:sd={SPOOL}/%P:\\
\t:lf=/var/log/lpd/%P.log:af={SPOOL}/%P/acct:\\
\t:connect_timeout#10:send_try#3

# lasers: the ifhp filter, longer timeouts
.laser:tc=.common
    :if=/usr/libexec/filters/ifhp
    :of=/usr/libexec/filters/ofhp
    :connect_timeout=30:send_job_rw_timeout=6000

.color|.colour
    :tc=.laser
    :ps=status:fx=flp
    :translate_format=mf
.site:ab@:rw:force_localhost@
"""

#: Per layout (i % 4): keys only the deepest template of its tc chain sets, so a lookup
#: that shows them proves the chain was followed.
KIND_EXPECT = {0: ["fx", "if", "lf"], 1: ["if", "lf"], 2: ["lf", "rw"], 3: ["fx", "if", "lf"]}


def entry_text(i: int, names: str) -> str:
    """Printer number ``i`` in one of four layouts, so every syntax path gets exercised."""
    host = f"printer{i}.example"
    kind = i % 4
    if kind == 0:  # backslash continuations, host%port, 3 levels of tc
        return (f"{names}:\\\n\t:lp={host}%9100:\\\n\t:sd={SPOOL}/%P:\\\n"
                f"\t:mx#52428800:br#9600:sh@:\\\n\t:cm=Room {i}, floor {i % 7}:\\\n"
                f"\t:pl#66:pw=80:\\\n\t:tc=.color\n")
    if kind == 1:  # ':'-led continuation lines without backslashes, 2 levels of tc
        return (f"{names}\n    :lp=raw@{host}\n    :sd={SPOOL}/%P\n    :mx=10240\n"
                f"    :fifo\n    :connect_timeout=15:mc#5\n    :tc=.laser\n")
    if kind == 2:  # one line, rm/rp, a tc list
        return (f"{names}:rm={host}:rp=queue{i}:sd={SPOOL}/%P:mc#5:sf:sh@"
                f":spool_dir_perms=0700:tc=.common,.site\n")
    # both continuation styles mixed, an escaped ':' in a value, a hex number
    return (f"{names}:\\\n  :lp={host}%9100\n  :sd={SPOOL}/%P:cm=Room {i}\\: floor {i % 7}\n"
            f"  :pl#0x42:pw#80:px#0:py#0\n  :ab:hl@\n  :tc=.color\n")


def block_text(numbers: Sequence[int], name: dict[int, str]) -> str:
    """Entries with aliases, and the comments and blank lines of a real printcap."""
    out: list[str] = []
    for i in numbers:
        if i % 50 == 0:
            out.append(f"\n# ===== printers {i}-{i + 49} =====\n\n")
        elif i % 5 == 0:
            out.append(f"# printer {i}: managed by the benchmark generator\n")
        elif i % 3 == 0:
            out.append("\n")
        aliases = [f"p{i}", f"room{i}"] if i % 2 else [f"p{i}"]
        out.append(entry_text(i, "|".join([name[i], *aliases])))
    return "".join(out)


@dataclass(frozen=True)
class Generated:
    """A generated printcap, and what reading it must give."""

    path: Path
    files: tuple[Path, ...]
    printers: int
    probe: str  # the printer the command looks up; always layout 0 (host%9100)
    probe_host: str
    checks: dict[str, list[str]]  # printer -> keys its tc chain must supply

    def describe(self) -> str:
        lines = sum(f.read_text().count("\n") for f in self.files)
        size = sum(f.stat().st_size for f in self.files)
        return f"{self.printers:,} printers, {lines:,} lines, {size / 1024:,.0f} KiB"


def generate_big(directory: Path, entries: int) -> Generated:
    """``entries`` printers; the middle 40% sit in a second file read by ``include``."""
    name = {i: f"printer{i}" for i in range(1, entries + 1)}
    first, last = int(entries * 0.3) + 1, int(entries * 0.7)
    part = directory / "printcap.d" / "part2"
    part.parent.mkdir()
    part.write_text("# Included from printcap.big.\n\n" + block_text(range(first, last + 1), name))
    main = directory / "printcap.big"
    main.write_text(f"# Benchmark printcap: {entries} printers; hosts are never contacted.\n\n"
                    + TEMPLATES + block_text(range(1, first), name)
                    + f"\n# the middle of the list\ninclude {part}\n\n"
                    + block_text(range(last + 1, entries + 1), name))
    probe = max((i for i in range(first, last + 1) if i % 4 == 0), default=4)
    checks = {name[i]: KIND_EXPECT[i % 4] for i in (1, 2, 3, 4, first, probe, last, entries)}
    return Generated(main, (main, part), entries, name[probe], f"printer{probe}.example", checks)


def generate_small(directory: Path) -> Generated:
    """A normal site printcap: ``lp`` (the default queue) first, then 19 more printers."""
    name = {i: f"printer{i}" for i in range(1, SMALL_PRINTERS)} | {SMALL_PRINTERS: "lp"}
    path = directory / "printcap.small"
    path.write_text("# A small site printcap.\n\n" + TEMPLATES + "\n"
                    + block_text([SMALL_PRINTERS, *range(1, SMALL_PRINTERS)], name))
    return Generated(path, (path,), SMALL_PRINTERS, "lp", f"printer{SMALL_PRINTERS}.example",
                     {"lp": KIND_EXPECT[SMALL_PRINTERS % 4], "printer1": KIND_EXPECT[1]})


# --- the measured subprocess -------------------------------------------------------

#: argv: printcap, checks (JSON), printers expected. load() gets the cache directory the
#: CLI would use (None when LPFILTER_NO_CACHE is set), so it follows the variant's env.
WORKER = f"""
import json, os, resource, sys, time
path, checks, expected = sys.argv[1], json.loads(sys.argv[2]), int(sys.argv[3])
rss = lambda: resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux
t0 = time.perf_counter()
import lpfilter.printcap as lpc
from lpfilter.commands.environment import cache_dir
t1 = time.perf_counter()
rss_before, t2 = rss(), time.perf_counter()
pc = lpc.load([path], cache_dir=cache_dir(os.environ))
t3 = time.perf_counter()
rss_after, pyparsing = rss(), "pyparsing" in sys.modules
names = pc.printer_names()
t4 = time.perf_counter()
for name in names:
    pc.lookup(name)
t5 = time.perf_counter()
bad = [str(p) for p in pc.problems]
if len(names) != expected:
    bad.append(f"{{len(names)}} printers read, {{expected}} generated")
for name, keys in checks.items():
    entry = pc.lookup(name)
    if entry.string("sd") != "{SPOOL}/" + name:
        bad.append(f"{{name}}: sd is {{entry.string('sd')!r}}")
    bad += [f"{{name}}: no {{k}} (tc chain not followed)" for k in keys if not entry.has(k)]
print(json.dumps({{"import": t1 - t0, "load": t3 - t2, "lookup": t5 - t4,
                  "rss_before": rss_before, "rss_after": rss_after, "pyparsing": pyparsing,
                  "no_pyc": sys.flags.dont_write_bytecode, "bad": bad[:10],
                  "package": os.path.dirname(os.path.dirname(lpc.__file__))}}))
"""

#: (key, label, unit) of each per-variant figure, in report order.
FIGURES = [("import", "import lpfilter.printcap", "s"),
           ("load", "(a) load() {entries} entries", "s"),
           ("rss_before", "peak RSS before load()", "B"),
           ("rss_after", "peak RSS after load()", "B"),
           ("lookup", "(b) lookup() of every printer", "s"),
           ("big_cmd", "(c) lpfilter printcap -P {probe} [BIG]", "s"),
           ("small_cmd", "(d) lpfilter printcap -P lp [SMALL]", "s")]
#: (e): code run with ``python -c`` -> label.
REFERENCE = {"pass": "python -c pass", "import pyparsing": 'python -c "import pyparsing"'}


@dataclass
class Variant:
    """A cache state: its environment, and a directory emptied before each run (cold)."""

    name: str
    env: dict[str, str]
    empty: Path | None = None

    def reset(self) -> None:
        if self.empty is not None:
            shutil.rmtree(self.empty, ignore_errors=True)


def make_variants(env: dict[str, str], tmp: Path) -> list[Variant]:
    """off: no cache; cold: parse, then write the cache; warm: read what warm-up wrote."""
    return [Variant("off", env | {"LPFILTER_NO_CACHE": "1"}),
            Variant("cold", env | {"LPFILTER_CACHE_DIR": str(tmp / "cold")}, tmp / "cold"),
            Variant("warm", env | {"LPFILTER_CACHE_DIR": str(tmp / "warm")})]


def run(argv: Sequence[str], env: dict[str, str], cwd: Path) -> tuple[float, str]:
    """Run ``argv``: (wall seconds, stdout). A failed command stops the benchmark."""
    start = time.perf_counter()
    proc = subprocess.run(list(argv), env=env, cwd=cwd, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise BenchError(f"{' '.join(argv)}: exit status {proc.returncode}\n{proc.stderr[-2000:]}")
    return wall, proc.stdout


class Bench:
    """Runs every measurement once per round and keeps the samples."""

    def __init__(self, big: Generated, small: Generated, variants: list[Variant], cwd: Path):
        self.big, self.small, self.variants, self.cwd = big, small, variants, cwd
        self.lpfilter = lpfilter_command()
        self.samples: dict[str, dict[str, list[float]]] = {
            v.name: {key: [] for key, _, _ in FIGURES} for v in variants}
        self.reference: dict[str, list[float]] = {key: [] for key in REFERENCE}
        self.pyparsing: dict[str, bool] = {}
        self.package = ""  # where the measured lpfilter package was imported from

    def load(self, variant: Variant) -> dict[str, float]:
        """(a) and (b) in one fresh process; checks the printcap read back as generated."""
        variant.reset()
        _, out = run([sys.executable, "-c", WORKER, str(self.big.path),
                      json.dumps(self.big.checks), str(self.big.printers)], variant.env, self.cwd)
        data = json.loads(out)
        if data["bad"]:
            raise BenchError("the big printcap did not read back as generated:\n  "
                             + "\n  ".join(data["bad"]))
        if data["no_pyc"]:
            raise BenchError("subprocesses still run with PYTHONDONTWRITEBYTECODE")
        self.pyparsing[variant.name], self.package = data["pyparsing"], data["package"]
        return data

    def command(self, variant: Variant, printcap: Generated) -> float:
        """(c) or (d): wall time of the lookup command; its output must show the entry."""
        variant.reset()
        wall, out = run([*self.lpfilter, "--printcap", str(printcap.path), "printcap",
                         "-P", printcap.probe], variant.env, self.cwd)
        if not out.startswith(printcap.probe) or f":lp={printcap.probe_host}%9100" not in out:
            raise BenchError(f"-P {printcap.probe}: unexpected output {out[:200]!r}")
        return wall

    def round(self, number: int | None) -> None:
        """One run of everything, variants in rotating order. ``None``: warm-up, discarded
        (it writes the .pyc files and fills the warm cache)."""
        shift = (number or 0) % len(self.variants)
        for variant in self.variants[shift:] + self.variants[:shift]:
            got = dict(self.load(variant))
            got["big_cmd"] = self.command(variant, self.big)
            got["small_cmd"] = self.command(variant, self.small)
            if number is not None:
                for key, samples in self.samples[variant.name].items():
                    samples.append(float(got[key]))
        for code, samples in self.reference.items():
            wall = run([sys.executable, "-c", code], self.variants[0].env, self.cwd)[0]
            if number is not None:
                samples.append(wall)


# --- reporting ----------------------------------------------------------------------

def stats(samples: list[float]) -> dict[str, object]:
    return {"median": statistics.median(samples), "min": min(samples), "max": max(samples),
            "samples": samples}


def cell(samples: list[float], unit: str) -> str:
    """``median (min–max)`` in ms or MiB."""
    scale, suffix = (2**-20, "MiB") if unit == "B" else (1000, "ms")
    med, low, high = (x * scale for x in spread(samples))
    digits = 1 if unit == "B" or med < 100 else 0
    return f"{med:.{digits}f} {suffix} ({low:.{digits}f}–{high:.{digits}f})"


def verdicts(bench: Bench) -> list[dict[str, object]]:
    """PASS/MISS per target and variant, on the medians (N/A at another --entries)."""
    out: list[dict[str, object]] = []
    for name, samples in bench.samples.items():
        for key, target, limit, entries in TARGETS:
            median = statistics.median(samples[key])
            status = verdict(median, limit, judged=entries in (None, bench.big.printers))
            out.append({"variant": name, "target": target, "median_s": median, "status": status})
    return out


def print_report(bench: Bench, info: dict[str, object], runs: int) -> None:
    """Markdown tables, ready to paste into bench/README.md."""
    print_info(info)
    print(f"{runs} rounds after one warm-up round, interleaved; median (min–max)\n")
    names = [v.name for v in bench.variants]
    header("figure", *names)
    for key, label, unit in FIGURES:
        label = label.format(entries=f"{bench.big.printers:,}", probe=bench.big.probe)
        row(label, *(cell(bench.samples[n][key], unit) for n in names))
    row("pyparsing imported", *("yes" if bench.pyparsing[n] else "no" for n in names))
    print(), header("reference (wall)", "time")
    for code, label in REFERENCE.items():
        row(f"`{label}`", cell(bench.reference[code], "s"))
    print(), header("target", *names)
    checks = verdicts(bench)
    for target in dict.fromkeys(c["target"] for c in checks):
        row(target, *(f"{c['status']}, {c['median_s'] * 1000:.0f} ms" for c in checks
                      if c["target"] == target))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=BIG_ENTRIES, metavar="N",
                        help="printers in the big printcap (default %(default)s)")
    parser.add_argument("--runs", type=int, default=5, metavar="R",
                        help="measured rounds after the warm-up round (default %(default)s)")
    parser.add_argument("--json", action="store_true", help="print the results as JSON only")
    args = parser.parse_args(argv)
    if args.entries < 20 or args.runs < 1:
        parser.error("--entries must be at least 20 and --runs at least 1")
    tmp = Path(tempfile.mkdtemp(prefix="lpfilter-bench-"))
    try:
        return measure(args, tmp)
    except BenchError as exc:
        print(f"printcap_bench: cannot benchmark: {exc}", file=sys.stderr)
        return 2
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def measure(args: argparse.Namespace, tmp: Path) -> int:
    """Generate, warm up, measure ``args.runs`` rounds, report."""
    env = clean_env(tmp, locks=False)
    cwd = tmp / "cwd"  # empty, so '' on sys.path finds nothing
    cwd.mkdir()
    bench = Bench(generate_big(tmp, args.entries), generate_small(tmp), make_variants(env, tmp),
                  cwd)
    for n in [None, *range(args.runs)]:
        if not args.json:
            print("warm-up round" if n is None else f"round {n + 1}/{args.runs}", file=sys.stderr)
        bench.round(n)
    versions = run([sys.executable, "-c", "import sys, pyparsing; print(sys.version.split()[0],"
                    " pyparsing.__version__)"], env, cwd)[1].split()
    info = {**machine_info(),
            "python": f"{versions[0]} ({sys.executable}), pyparsing {versions[1]}",
            "lpfilter": f"{' '.join(bench.lpfilter)}, package from {bench.package}",
            "big": f"{bench.big.describe()}, probe {bench.big.probe} (3 levels of tc, included)",
            "small": bench.small.describe()}
    if args.json:
        print(json.dumps({
            "info": info, "runs": args.runs, "targets": verdicts(bench),
            "figures": {name: {key: stats(samples) for key, samples in figures.items()}
                        for name, figures in bench.samples.items()},
            "pyparsing_imported": bench.pyparsing,
            "reference": {code: stats(s) for code, s in bench.reference.items()},
        }, indent=2))
    else:
        print_report(bench, info, args.runs)
    return 0


if __name__ == "__main__":
    sys.exit(main())
