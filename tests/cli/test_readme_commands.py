"""The commands the README shows exist: every ``segforget`` subcommand and option, and every
option passed to a ``benchmarks/*.py`` script (read from its ``--help``).

The README is parsed, not trusted: shell lines of fenced blocks (``bash``, ``sh`` or no
language; backslash continuations joined) and inline code spans (nested spans of ````...````
messages included) are tokenised with shlex, and a command is recognised where a shell command
starts (after ``$``, ``do``, ``VAR=x``, ``nice -n 19``; also ``python -m segforget`` and
``torchrun ... -m segforget``). Lines shlex cannot read are counted, and the count must stay
small, so a broken parser cannot pass by finding nothing."""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import pytest
import typer.main

from segforget.cli._app import app

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
# The README and the measurement logs it links to (docs/experiments/*.md) show commands.
DOCUMENTS = (README, *sorted((ROOT / "docs").rglob("*.md")))

SHELL_LANGUAGES = {"", "bash", "sh", "shell", "console", "shell-session"}
EXPECTED_SUBCOMMANDS = {
    "train",
    "analyze",
    "report",
    "select",
    "al-sim",
    "label-issues",
    "benchmark",
    "synth",
    "demo",
}
MIN_CLI_INVOCATIONS = 20
MAX_UNPARSABLE = 3

FENCE = re.compile(r"^\s*(`{3,}|~{3,})\s*([\w+-]*)")
SCRIPT = re.compile(r"^(?:\./)?benchmarks/[\w-]+\.py$")
PYTHON = re.compile(r"^(?:\S*/)?python(?:\d+(?:\.\d+)?)?$")
ASSIGNMENT = re.compile(r"^[A-Za-z_]\w*=")
# a text worth tokenising: it names the CLI followed by a word, or a benchmark script
CANDIDATE = re.compile(r"(?:^|[\s/])segforget\s+[\w-]|benchmarks/[\w-]+\.py")
SEPARATORS = {";", "&&", "||", "|", "&", "(", ")", "((", "))", ";;", "|&"}
PREFIX_WORDS = {"$", "do", "then", "else", "time", "exec", "env", "sudo", "command"}


@dataclass(frozen=True)
class Invocation:
    """One command of the README: ``segforget ARGS`` or ``python benchmarks/X.py ARGS``."""

    document: str  # the Markdown file, relative to the repository root
    line: int
    program: str  # "segforget" or the script's path relative to the repository root
    args: tuple[str, ...]
    text: str


@dataclass(frozen=True)
class ReadmeCommands:
    """What the parser found: the invocations and the candidate texts shlex could not read."""

    invocations: tuple[Invocation, ...]
    unparsable: tuple[tuple[str, int, str], ...]


def _strip_comment(text: str) -> str:
    """Drop a shell comment: ``#`` at the start of a word, outside quotes."""
    quote = ""
    escaped = False
    for i, char in enumerate(text):
        if escaped:
            escaped = False
        elif char == "\\" and quote != "'":
            escaped = True
        elif quote:
            quote = "" if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char == "#" and (i == 0 or text[i - 1].isspace()):
            return text[:i]
    return text


def _tokens(text: str) -> list[str]:
    """Shell words of ``text``, with ``;``, ``&&``, ``|`` ... as separate tokens."""
    lexer = shlex.shlex(_strip_comment(text), posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    lexer.commenters = ""
    return list(lexer)


def _segments(tokens: list[str]) -> Iterator[list[str]]:
    """Simple commands of a token list, split at shell separators."""
    segment: list[str] = []
    for token in tokens:
        if token in SEPARATORS:
            yield segment
            segment = []
        else:
            segment.append(token)
    yield segment


def _command(segment: list[str]) -> tuple[str, list[str]] | None:
    """``(program, args)`` when the simple command runs segforget or a benchmark script."""
    words = list(segment)
    while words:  # prompts, loop keywords, assignments, `nice -n 19`, `timeout 60`
        head = words[0]
        if head in PREFIX_WORDS or ASSIGNMENT.match(head):
            words = words[1:]
        elif head == "nice":
            words = words[3:] if words[1:2] == ["-n"] else words[1:]
        elif head == "timeout":
            words = words[2:]
        else:
            break
    if not words:
        return None
    head, rest = words[0], words[1:]
    if head == "segforget" or head.endswith("/bin/segforget"):
        return "segforget", rest
    if SCRIPT.match(head):
        return head.removeprefix("./"), rest
    if PYTHON.match(head) or Path(head).name == "torchrun":
        for i, word in enumerate(rest):
            if word == "-m":
                if rest[i + 1 : i + 2] in (["segforget"], ["segforget.cli"]):
                    return "segforget", rest[i + 2 :]
                return None
            if SCRIPT.match(word):
                return word.removeprefix("./"), rest[i + 1 :]
            if not word.startswith("-"):
                return None
    return None


def _code_spans(text: str) -> Iterator[tuple[int, str, int]]:
    """``(offset, content, backticks)`` of the inline code spans of a markdown paragraph."""
    i = 0
    while i < len(text):
        if text.startswith("\\`", i):
            i += 2
            continue
        if text[i] != "`":
            i += 1
            continue
        run = len(text[i:]) - len(text[i:].lstrip("`"))
        closer = re.compile(rf"(?<!`)`{{{run}}}(?!`)")
        found = closer.search(text, i + run)
        if found is None:  # an unmatched run is literal text
            i += run
            continue
        content = text[i + run : found.start()].replace("\n", " ")
        if len(content) > 2 and content.startswith(" ") and content.endswith(" "):
            content = content[1:-1]
        yield i, content, run
        i = found.end()


def _inline_texts(text: str, offset: int = 0) -> Iterator[tuple[int, str]]:
    """Command candidates of a paragraph: its single-backtick spans, also those nested in
    ````...```` spans (quoted messages that name a command)."""
    for start, content, run in _code_spans(text):
        if run == 1:
            yield offset + start, content
        else:
            inner_offset = offset + start + run
            yield from _inline_texts(content, inner_offset)


def _open_quote(text: str) -> bool:
    """Whether a shell line ends inside a quoted string (so the next line continues it)."""
    try:
        shlex.split(_strip_comment(text))
    except ValueError as error:
        return "closing quotation" in str(error)
    return False


def _blocks(lines: list[str]) -> Iterator[tuple[str, int, str]]:
    """``("shell" | "prose", first line number, text)`` chunks of the README.

    Shell chunks are the logical lines of shell fences (continuations and quoted arguments that
    span lines joined); prose chunks are
    paragraphs, and each table row on its own, as GitHub renders them.
    """
    fence = ""
    language = ""
    paragraph: list[str] = []
    paragraph_start = 0
    pending: list[str] = []
    pending_start = 0

    def flush() -> Iterator[tuple[str, int, str]]:
        nonlocal paragraph
        if paragraph:
            yield "prose", paragraph_start, "\n".join(paragraph)
        paragraph = []

    for number, line in enumerate(lines, start=1):
        opened = FENCE.match(line)
        if fence:
            if opened and opened.group(1).startswith(fence) and not opened.group(2):
                if pending:
                    yield "shell", pending_start, " ".join(pending)
                fence, pending = "", []
            elif language in SHELL_LANGUAGES:
                stripped = line.strip()
                if not pending:
                    pending_start = number
                if stripped.endswith("\\"):
                    pending.append(stripped[:-1])
                elif _open_quote(" ".join([*pending, stripped])):
                    pending.append(stripped)  # a quoted argument (JSON) spans lines
                else:
                    yield "shell", pending_start, " ".join([*pending, stripped])
                    pending = []
            continue
        if opened:
            yield from flush()
            fence, language = opened.group(1), opened.group(2).lower()
        elif not line.strip() or line.lstrip().startswith("|"):
            yield from flush()
            if line.strip():
                yield "prose", number, line
        else:
            if not paragraph:
                paragraph_start = number
            paragraph.append(line)
    yield from flush()


@cache
def readme_commands() -> ReadmeCommands:
    """Every ``segforget`` and benchmark-script invocation the documents show, with lines."""
    invocations: list[Invocation] = []
    unparsable: list[tuple[str, int, str]] = []
    for path in DOCUMENTS:
        found = _document_commands(path)
        invocations += found.invocations
        unparsable += found.unparsable
    return ReadmeCommands(tuple(invocations), tuple(unparsable))


def _document_commands(path: Path) -> ReadmeCommands:
    document = path.relative_to(ROOT).as_posix()
    invocations: list[Invocation] = []
    unparsable: list[tuple[str, int, str]] = []
    lines = path.read_text(encoding="utf-8").splitlines()
    candidates: list[tuple[int, str]] = []
    for kind, start, text in _blocks(lines):
        if kind == "shell":
            candidates.append((start, text))
            continue
        for offset, content in _inline_texts(text):
            candidates.append((start + text.count("\n", 0, offset), content))
    for line, text in candidates:
        if not CANDIDATE.search(text):
            continue
        try:
            tokens = _tokens(text)
        except ValueError:
            unparsable.append((document, line, text))
            continue
        for segment in _segments(tokens):
            found = _command(segment)
            if found is not None:
                invocations.append(
                    Invocation(document, line, found[0], tuple(found[1]), text.strip())
                )
    return ReadmeCommands(tuple(invocations), tuple(unparsable))


def _option_names(args: tuple[str, ...]) -> list[str]:
    """The options among README arguments, usage notation stripped: ``[--out DIR]`` -> --out."""
    names = []
    for arg in args:
        if arg == "--":
            break
        word = arg.lstrip("[({").rstrip("])},").split("=", 1)[0]
        if re.fullmatch(r"--[A-Za-z0-9][\w-]*|-[A-Za-z]", word):
            names.append(word)
    return names


def _click_options(command, ctx) -> set[str]:
    """All option strings of a click command, its help option included."""
    opts = {opt for p in command.get_params(ctx) for opt in (*p.opts, *p.secondary_opts)}
    return {opt for opt in opts if opt.startswith("-")}


def _cli_mismatches(invocation: Invocation, root) -> tuple[str, list[str]]:
    """The subcommand path an invocation resolves to, and what in it the CLI does not have."""
    command, ctx, path, problems = root, root.context_class(root, info_name="segforget"), [], []
    args = list(invocation.args)
    while hasattr(command, "list_commands") and args:
        word = args[0]
        if word.startswith("-"):
            break
        sub = command.get_command(ctx, word)
        if sub is None:
            known = ", ".join(command.list_commands(ctx))
            group = " ".join(["segforget", *path])
            problems.append(f"no command {word!r} in `{group}` (has: {known})")
            return " ".join([*path, word]), problems
        path.append(word)
        command, ctx = sub, sub.context_class(sub, info_name=word, parent=ctx)
        args = args[1:]
    options = _click_options(command, ctx)
    for name in _option_names(tuple(args)):
        if name not in options:
            problems.append(f"no option {name} (has: {' '.join(sorted(options))})")
    return " ".join(path), problems


def _where(invocation: Invocation) -> str:
    """Where a README command is, for the failure message."""
    return f"{invocation.document}:{invocation.line}: `{invocation.text}`"


def _help_options(help_text: str) -> set[str]:
    """Options an argparse ``--help`` shows: in the usage block and in the options' left column."""
    usage = help_text.split("\n\n", 1)[0]
    columns = [
        re.split(r"\s{2,}", line.strip())[0]
        for line in help_text.splitlines()
        if re.match(r"^\s{1,8}-", line)
    ]
    words = re.findall(r"(?<![\w-])(--[A-Za-z0-9][\w-]*|-[A-Za-z])\b", " ".join([usage, *columns]))
    return {*words, "-h", "--help"}


# One interpreter runs every script's `--help` (``runpy``, as ``__main__``): torch is imported
# once instead of once per script, which keeps the test at a few seconds on a busy machine.
HELP_DRIVER = """
import contextlib, io, json, runpy, sys, traceback
results = {}
for script in sys.argv[1:]:
    out, err, code = io.StringIO(), io.StringIO(), 0
    sys.argv = [script, "--help"]
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            runpy.run_path(script, run_name="__main__")
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        except BaseException:
            code = 1
            traceback.print_exc()
    results[script] = [code, out.getvalue(), err.getvalue()]
print("\\n" + json.dumps(results))
"""


@dataclass(frozen=True)
class ScriptHelp:
    """What ``python benchmarks/X.py --help`` did."""

    code: int
    stdout: str
    stderr: str


@cache
def script_helps(scripts: tuple[str, ...]) -> dict[str, ScriptHelp]:
    """``--help`` of each script (paths relative to the repository root), each run once."""
    done = subprocess.run(
        [sys.executable, "-c", HELP_DRIVER, *scripts],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
    )
    assert done.returncode == 0 and done.stdout.strip(), done.stderr
    results = json.loads(done.stdout.strip().splitlines()[-1])
    return {script: ScriptHelp(*results[script]) for script in scripts}


def test_readme_parser_finds_the_commands():
    """The parser sees the README's commands: enough of them, every main subcommand, and it
    reads (almost) every candidate line."""
    found = readme_commands()
    readme = [inv for inv in found.invocations if inv.document == "README.md"]
    cli = [inv for inv in readme if inv.program == "segforget"]
    covered = {inv.args[0] for inv in cli if inv.args}
    assert len(cli) >= MIN_CLI_INVOCATIONS, [_where(inv) for inv in cli]
    assert EXPECTED_SUBCOMMANDS <= covered, sorted(EXPECTED_SUBCOMMANDS - covered)
    assert any(inv.program != "segforget" for inv in readme)
    assert any(inv.document.startswith("docs/") for inv in found.invocations)
    assert len(found.unparsable) <= MAX_UNPARSABLE, found.unparsable


def test_readme_segforget_commands_exist():
    """Every ``segforget SUBCOMMAND --option`` of the README exists in the CLI."""
    root = typer.main.get_command(app)
    mismatches = []
    for inv in readme_commands().invocations:
        if inv.program != "segforget":
            continue
        path, problems = _cli_mismatches(inv, root)
        mismatches += [f"{_where(inv)}: segforget {path}: {problem}" for problem in problems]
    assert not mismatches, "README commands the CLI does not have:\n" + "\n".join(mismatches)


def test_readme_benchmark_script_options_exist():
    """Every ``benchmarks/X.py --option`` of the README: the script exists, its ``--help`` runs
    and lists the option."""
    invocations = [inv for inv in readme_commands().invocations if inv.program != "segforget"]
    scripts = sorted({inv.program for inv in invocations if (ROOT / inv.program).is_file()})
    helps = script_helps(tuple(scripts))
    mismatches = []
    for inv in invocations:
        done = helps.get(inv.program)
        if done is None:
            mismatches.append(f"{_where(inv)}: no such script {inv.program}")
            continue
        if done.code != 0 or "usage:" not in done.stdout:
            tail = done.stderr.strip().splitlines()[-1:] or ["(no stderr)"]
            mismatches.append(f"{_where(inv)}: `{inv.program} --help` failed: {tail[0]}")
            continue
        options = _help_options(done.stdout)
        for name in _option_names(inv.args):
            if name not in options:
                have = " ".join(sorted(options))
                mismatches.append(f"{_where(inv)}: {inv.program}: no option {name} (has: {have})")
    assert not mismatches, "README benchmark commands the scripts do not take:\n" + "\n".join(
        mismatches
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "segforget train --out r  # a comment's apostrophe",
            ("segforget", ("train", "--out", "r")),
        ),
        ("$ python benchmarks/bench_x.py --k 1", ("benchmarks/bench_x.py", ("--k", "1"))),
        ("nice -n 19 .venv/bin/python benchmarks/b.py", ("benchmarks/b.py", ())),
        ("torchrun --nproc_per_node=N -m segforget train ...", ("segforget", ("train", "..."))),
        ("for s in 1 2; do .venv/bin/segforget env; done", ("segforget", ("env",))),
        ("make demo  # = segforget demo --out runs/demo", None),
        ("pip install cleanlab", None),
    ],
)
def test_command_recognition(text, expected):
    """The parser's own cases: prompts, prefixes, loops, launchers; comments and other tools
    are not commands."""
    found = [c for seg in _segments(_tokens(text)) if (c := _command(seg)) is not None]
    assert [(p, tuple(a)) for p, a in found] == ([expected] if expected else [])


def test_code_spans_and_options():
    """Spans pair by backtick count, nested spans in ````..```` messages are found, and usage
    notation around options is stripped."""
    text = "a `x` b ``Expected `segforget analyze RUN` here`` c ` lone"
    assert [content for _, content in _inline_texts(text)] == ["x", "segforget analyze RUN"]
    assert _option_names(("[--out", "DIR]", "[--method", "A|b]", "--k=3", "-o", "-1")) == [
        "--out",
        "--method",
        "--k",
        "-o",
    ]
