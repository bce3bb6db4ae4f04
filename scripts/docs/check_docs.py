#!/usr/bin/env python3
"""Checks that the documents name only things that exist.

In README.md, ARCHITECTURE.md and docs/*.md:
1. links: every relative Markdown link points at a file or directory of the repository,
   and its #fragment at a heading of the document it opens;
2. paths: every repository path they name (inline code, code blocks, prose, link targets:
   `services/service-a/src/outbox.rs`, `scripts/dev-stack.sh up`) exists; a bare file name
   in inline code (`producer.rs`) exists somewhere in the repository;
3. variables: every environment variable in README's "Configuration" tables is read
   somewhere: in Rust as a string literal passed to a call (`env.or("PORT", ..)`,
   `non_empty("RUST_LOG")`; setters such as `.env("X", ..)` do not count, nor tests), in
   shell as `$VAR`/`${VAR`, in YAML and compose as `${VAR`/`${env:VAR`, in k6 as
   `__ENV.VAR`, in Python through `environ`/`getenv`; or by the OpenTelemetry SDK itself
   (SDK_READ below).

    python3 scripts/docs/check_docs.py              # exit 1 and one line per broken reference
    python3 scripts/docs/check_docs.py --self-test  # breaks a copy once per rule, expects a failure

Standard library only.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SKIP_DIRS = {".git", "target", "node_modules", "__pycache__"}

# Variables the OpenTelemetry Rust SDK and OTLP exporter read themselves, so our code never
# names them. Each is also looked up in the locked SDK's source when cargo has downloaded it
# (sdk_sources), so this list cannot claim a name the SDK does not read.
SDK_READ = {
    "OTEL_SERVICE_NAME", "OTEL_RESOURCE_ATTRIBUTES",
    "OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
    "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT", "OTEL_EXPORTER_OTLP_LOGS_ENDPOINT",
    "OTEL_TRACES_SAMPLER", "OTEL_TRACES_SAMPLER_ARG",
    "OTEL_BSP_SCHEDULE_DELAY", "OTEL_BSP_MAX_QUEUE_SIZE", "OTEL_BSP_MAX_EXPORT_BATCH_SIZE",
    "OTEL_BSP_EXPORT_TIMEOUT",
    "OTEL_BLRP_SCHEDULE_DELAY", "OTEL_BLRP_MAX_QUEUE_SIZE", "OTEL_BLRP_MAX_EXPORT_BATCH_SIZE",
    "OTEL_BLRP_EXPORT_TIMEOUT",
    "OTEL_METRIC_EXPORT_INTERVAL",
}
SDK_CRATES = ("opentelemetry_sdk", "opentelemetry-otlp")

# Rust calls that set a variable rather than read it.
RUST_SETTERS = {"env", "env_remove", "set_var", "remove_var", "insert", "push"}
# A bare file name in inline code that is checked (others, like `notifications.jsonl`, are
# files the running stack writes).
SOURCE_NAME = re.compile(r"[\w.-]+\.(rs|py|sh|go|js|toml|ya?ml|md|sql)")


def docs_of(root: Path) -> list[Path]:
    return [p for p in [root / "README.md", root / "ARCHITECTURE.md",
                        *sorted((root / "docs").glob("*.md"))] if p.is_file()]


def repo_files(root: Path) -> list[Path]:
    out = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if d not in SKIP_DIRS]
        out += [Path(dirpath) / f for f in filenames]
    return out


def expand_braces(token: str) -> list[str]:
    """`a/{b,c}.rs` -> [`a/b.rs`, `a/c.rs`], as the shell does."""
    m = re.search(r"\{([^{}]*,[^{}]*)\}", token)
    if not m:
        return [token]
    return [x for alt in m.group(1).split(",")
            for x in expand_braces(token[:m.start()] + alt + token[m.end():])]


# --------------------------------------------------------------------------- Markdown


def markdown_parts(text: str):
    """Yields (line number, kind, text): kind is "code" (inline code or a code block's line),
    "link" (a link target) or "prose" (the rest of a line); mermaid blocks are skipped."""
    fence = None
    for no, line in enumerate(text.splitlines(), 1):
        m = re.match(r"\s*(```|~~~)\s*(\w*)", line)
        if m:
            fence = None if fence else (m.group(2) or "text")
            continue
        if fence:
            if fence != "mermaid":
                yield no, "code", line
            continue
        for code in re.findall(r"`([^`]+)`", line):
            yield no, "code", code
        rest = re.sub(r"`[^`]+`", " ", line)
        for target in re.findall(r"\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)", rest):
            yield no, "link", target
        for target in re.findall(r"^\s*\[[^\]]+\]:\s*(\S+)", rest):
            yield no, "link", target
        yield no, "prose", re.sub(r"\]\([^)]*\)", "]", rest)


def heading_slugs(text: str) -> set[str]:
    """GitHub's anchors: lower case, punctuation dropped, spaces to hyphens, -1 for repeats."""
    slugs: set[str] = set()
    fence = False
    for line in text.splitlines():
        if re.match(r"\s*(```|~~~)", line):
            fence = not fence
        m = None if fence else re.match(r"#{1,6}\s+(.*?)\s*#*\s*$", line)
        if m:
            base = re.sub(r"[^\w\- ]", "", m.group(1).replace("`", "").lower()).replace(" ", "-")
            slug, n = base, 0
            while slug in slugs:
                n += 1
                slug = f"{base}-{n}"
            slugs.add(slug)
    return slugs


def check_link(root: Path, doc: Path, target: str) -> str | None:
    if re.match(r"[a-z][a-z0-9+.-]*:", target, re.I):  # http:, mailto:, ...
        return None
    path_part, _, fragment = target.partition("#")
    dest = (doc.parent / path_part).resolve() if path_part else doc
    if not dest.is_relative_to(root.resolve()):
        return f"link {target} leaves the repository"
    if not dest.exists():
        return f"link {target}: {dest.relative_to(root.resolve())} does not exist"
    if fragment and dest.suffix == ".md" and fragment not in heading_slugs(dest.read_text()):
        return f"link {target}: no heading #{fragment} in {dest.name}"
    return None


def path_tokens(text: str):
    for token in re.split(r"[\s`'\"()\[\]=;|]+", text):
        token = re.sub(r"(:\d+(-\d+)?)?[.,:;!?]*$", "", token)  # trailing line numbers, punctuation
        if token and not re.search(r"[<>*$~]|\.\.\.", token):
            yield token


def check_paths(root: Path, roots: set[str], names: set[str], kind: str, text: str):
    for token in path_tokens(text):
        first = token.split("/", 1)[0]
        if "/" in token and first in roots:
            for path in expand_braces(token.split("#", 1)[0]):
                if not (root / path).exists():
                    yield f"path {path} does not exist"
        elif kind == "code" and "/" not in token and SOURCE_NAME.fullmatch(token):
            if token not in names:
                yield f"file {token} exists nowhere in the repository"


# --------------------------------------------------------------------------- variables


def readme_variables(readme: Path) -> list[tuple[int, str]]:
    """Backticked names in the first column of the tables under README's "## Configuration"."""
    out, inside = [], False
    for no, line in enumerate(readme.read_text().splitlines(), 1):
        if line.startswith("## "):
            inside = line.strip() == "## Configuration"
        if inside and line.startswith("|") and not re.match(r"\|\s*-", line):
            first_cell = line.split("|")[1]
            for name in re.findall(r"`([A-Z][A-Z0-9_{},*]*)`", first_cell):
                out += [(no, n) for n in expand_braces(name)]
    return out


def code_reads(root: Path) -> dict[str, str]:
    """Every environment variable the repository's code, scripts and configs read, with the
    first file that reads it (found by the patterns in the module docstring)."""
    reads: dict[str, str] = {}
    for f in sorted(repo_files(root)):
        rel = f.relative_to(root).as_posix()
        try:
            text = f.read_text(encoding="utf-8")
        except (UnicodeDecodeError, OSError):
            continue
        names: list[str] = []
        if f.suffix == ".rs":
            if re.search(r"(^|/)(tests|benches)/", rel):
                continue
            text = text.split("#[cfg(test)]", 1)[0]
            names = [name for callee, name in re.findall(
                r"(\w+)\s*\(\s*(?:[&\w.]+\s*,\s*)?\"([A-Z][A-Z0-9_]+)\"", text)
                if callee not in RUST_SETTERS]
        elif f.suffix in (".sh", ".yml", ".yaml") or f.name == "Dockerfile":
            names = re.findall(r"\$\{?(?:env:)?([A-Z][A-Z0-9_]+)", text)
        elif f.suffix == ".js":
            names = re.findall(r"__ENV\.([A-Z][A-Z0-9_]+)", text)
        elif f.suffix == ".py":
            names = re.findall(
                r"(?:environ(?:\.get)?\s*[\[(]|getenv\()\s*[\"']([A-Z][A-Z0-9_]+)", text)
        for name in names:
            reads.setdefault(name, rel)
    return reads


def sdk_sources(root: Path) -> list[Path]:
    """The locked opentelemetry_sdk and opentelemetry-otlp sources in cargo's registry."""
    lock = (root / "Cargo.lock").read_text() if (root / "Cargo.lock").is_file() else ""
    registry = Path(os.environ.get("CARGO_HOME") or Path.home() / ".cargo") / "registry" / "src"
    out = []
    for crate in SDK_CRATES:
        m = re.search(rf'name = "{re.escape(crate)}"\nversion = "([^"]+)"', lock)
        if m:
            out += [p / "src" for p in registry.glob(f"*/{crate}-{m.group(1)}") if p.is_dir()]
    return out


def sdk_reads(sources: list[Path]) -> set[str]:
    found = set()
    for src in sources:
        for f in src.rglob("*.rs"):
            found.update(n for n in SDK_READ if f'"{n}"' in f.read_text(encoding="utf-8"))
    return found


# --------------------------------------------------------------------------- driver


def run_checks(root: Path, sdk_src: list[Path] | None = None) -> tuple[list[str], list[str]]:
    problems, notes = [], []
    files = repo_files(root)
    names = {f.name for f in files}
    roots = {p.name for p in root.iterdir() if p.is_dir() and p.name not in SKIP_DIRS}
    docs = docs_of(root)
    for doc in docs:
        rel = doc.relative_to(root)
        for no, kind, text in markdown_parts(doc.read_text(encoding="utf-8")):
            found = [check_link(root, doc, text)] if kind == "link" else list(
                check_paths(root, roots, names, kind, text))
            problems += [f"{rel}:{no}: {p}" for p in found if p]

    readme = root / "README.md"
    variables = readme_variables(readme) if readme.is_file() else []
    reads = code_reads(root)
    sources = sdk_sources(root) if sdk_src is None else sdk_src
    if sources:
        for name in sorted(SDK_READ - sdk_reads(sources)):
            problems.append(f"SDK_READ: {name} is not read by the SDK sources in "
                            f"{', '.join(str(s.parent.name) for s in sources)}")
    else:
        notes.append("the locked OpenTelemetry SDK sources are not in cargo's registry: "
                     "SDK_READ taken as written")
    for no, name in variables:
        if name.endswith("*"):
            ok = any(n.startswith(name[:-1]) for n in SDK_READ | set(reads))
        else:
            ok = name in reads or name in SDK_READ
        if not ok:
            problems.append(f"README.md:{no}: variable {name} is read nowhere in the code, "
                            f"scripts or configs (nor by the OpenTelemetry SDK)")
    notes.append(f"{len(docs)} documents, {len(variables)} README variables")
    return problems, notes


def copy_repo(dest: Path) -> Path:
    shutil.copytree(ROOT, dest, ignore=shutil.ignore_patterns(*SKIP_DIRS))
    return dest


def self_test() -> int:
    """Breaks a copy of the repository once per rule; each break must be reported."""
    cases = [
        ("relative link to a missing file", "README.md",
         lambda s: s + "\nSee [the guide](docs/NO_GUIDE.md).\n",
         "link docs/NO_GUIDE.md: docs/NO_GUIDE.md does not exist"),
        ("relative link out of the repository", "ARCHITECTURE.md",
         lambda s: s + "\nSee [the design](../shared/DESIGN.md).\n", "leaves the repository"),
        ("link to a missing heading", "README.md",
         lambda s: s + "\nSee [tests](#no-such-heading).\n", "no heading #no-such-heading"),
        ("path in inline code", "README.md",
         lambda s: s + "\nThe relay: `services/service-a/src/no_such.rs`.\n",
         "path services/service-a/src/no_such.rs does not exist"),
        ("path in a code block", "README.md",
         lambda s: s + "\n```sh\nscripts/no-such-stack.sh up\n```\n",
         "path scripts/no-such-stack.sh does not exist"),
        ("path in prose", "ARCHITECTURE.md",
         lambda s: s + "\nSee docs/NO_SUCH.md for more.\n", "path docs/NO_SUCH.md does not exist"),
        ("bare file name", "README.md",
         lambda s: s + "\nIn `no_such_module.rs`.\n", "file no_such_module.rs exists nowhere"),
        ("variable read nowhere", "README.md",
         lambda s: s.replace("| `WORK_LATENCY_MS` |", "| `WORK_LATENCY_MS`, `NO_SUCH_VAR` |", 1),
         "variable NO_SUCH_VAR is read nowhere"),
    ]
    failures = 0
    with tempfile.TemporaryDirectory(prefix="check-docs-") as tmp:
        root = copy_repo(Path(tmp) / "repo")
        base, _ = run_checks(root)
        if base:
            print("self-test: the unmodified copy already has problems:", *base, sep="\n  ")
            return 1
        for name, doc, mutate, expect in cases:
            path = root / doc
            original = path.read_text(encoding="utf-8")
            changed = mutate(original)
            if changed == original:
                print(f"self-test FAIL {name}: the mutation did not apply", file=sys.stderr)
                failures += 1
                continue
            path.write_text(changed, encoding="utf-8")
            failures += expect_problem(name, run_checks(root)[0], expect)
            path.write_text(original, encoding="utf-8")
        # The variable rule's other half: a read removed from the code fails too.
        cfg = root / "services/service-d/src/lib.rs"
        original = cfg.read_text(encoding="utf-8")
        cfg.write_text(original.replace('"WORK_LATENCY_MS"', '"WORK_LATENCY"'), encoding="utf-8")
        failures += expect_problem("read removed from the code", run_checks(root)[0],
                                   "variable WORK_LATENCY_MS is read nowhere")
        cfg.write_text(original, encoding="utf-8")
        # An SDK allow-list entry the SDK does not read is refused (with an empty fake SDK).
        fake = Path(tmp) / "fake-sdk" / "src"
        fake.mkdir(parents=True)
        (fake / "lib.rs").write_text('const X: &str = "OTEL_SERVICE_NAME";\n', encoding="utf-8")
        failures += expect_problem("SDK_READ name the SDK does not read",
                                   run_checks(root, [fake])[0],
                                   "SDK_READ: OTEL_TRACES_SAMPLER is not read")
    total = len(cases) + 2
    print(f"self-test: {total - failures} of {total} broken copies rejected as expected")
    return 1 if failures else 0


def expect_problem(name: str, problems: list[str], expect: str) -> int:
    hit = [p for p in problems if expect in p]
    if hit:
        print(f"self-test ok   {name}: {hit[0]}")
        return 0
    print(f"self-test FAIL {name}: expected a problem containing {expect!r}, got "
          f"{problems or 'none'}", file=sys.stderr)
    return 1


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--self-test", action="store_true",
                    help="break a copy of the repository once per rule and expect a failure")
    args = ap.parse_args()
    if args.self_test:
        return self_test()
    problems, notes = run_checks(ROOT)
    for n in notes:
        print(n)
    if problems:
        print(f"\n{len(problems)} broken reference(s) in the documents:", file=sys.stderr)
        for p in problems:
            print(f"  - {p}", file=sys.stderr)
        return 1
    print("documents: every link, path and variable exists")
    return 0


if __name__ == "__main__":
    sys.exit(main())
