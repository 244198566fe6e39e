"""Run Starlette's own test suite against starlite, and compare the result with the list of
expected failures.

    python compat/run.py                 every in-scope test file
    python compat/run.py test_routing    only the files whose names contain one of these words

The tests come from Starlette's sdist, pinned by version and sha256 and cached under the temp
dir. They run in a copy of the sdist's tests/ with Starlette's own pytest settings (warnings are
errors), each file in a pytest session of its own, against the working starlite.py through the
forwarding package in compat/shim. A test that fails is run once more before it counts.

The run fails when a test fails that `expected-failures.txt` does not list, or when a listed test
passes (the list is stale): that list is the documented truth of where starlite differs. A test
Starlette marks as a strict xfail (a known bug of its own) counts as passed when starlite passes
it, and is named in the output. What is out of scope (OUT_OF_SCOPE, OUT_OF_SCOPE_TESTS) is not run.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import hashlib
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import xml.etree.ElementTree as ElementTree
from pathlib import Path
from typing import NamedTuple

STARLETTE_VERSION = "1.10.0"
SDIST_SHA256 = "b8399098d4c1e3522734f7235dc79b1fc967f96cf139c81e0fa30479e0685f9b"
SDIST_NAME = f"starlette-{STARLETTE_VERSION}.tar.gz"

COMPAT = Path(__file__).resolve().parent
REPOSITORY = COMPAT.parent
EXPECTED_FAILURES = COMPAT / "expected-failures.txt"

# Test files of what starlite does not carry, with the reason (the README's Compatibility section).
OUT_OF_SCOPE = {
    "tests/middleware/test_wsgi.py": "WSGIMiddleware is not carried (deprecated in Starlette)",
    "tests/middleware/test_opentelemetry.py": "OpenTelemetry integration is not carried",
    "tests/test_schemas.py": "SchemaGenerator (OpenAPI from docstrings) is not carried",
    "tests/test__utils.py": "tests of Starlette's private helper module",
}

# Single tests out of scope, with the reason: each tests one of Starlette's private modules.
OUT_OF_SCOPE_TESTS = {
    "tests/test_exceptions.py::test_http_exception_does_not_use_threadpool": (
        "patches run_in_threadpool in Starlette's private starlette._exception_handler module"
    ),
}

# Per test file: time enough for the slowest file on a loaded two-core machine. A test that hangs
# fails on its own after TEST_TIMEOUT (pytest-timeout), so one hang cannot take its file with it.
FILE_TIMEOUT = 300
TEST_TIMEOUT = 60


class Expected(NamedTuple):
    """One entry of the expected-failures list."""

    reason: str
    flaky: bool


class FileResult(NamedTuple):
    """The outcome of each test of one file, by test id: True for passed."""

    path: str
    outcomes: dict[str, bool]
    flipped: list[str]
    beyond_starlette: list[str]
    crash: str


def sdist() -> Path:
    """Starlette's sdist, downloaded once through pip (which knows the package index)."""
    cache = Path(tempfile.gettempdir()) / "starlite-compat"
    archive = cache / SDIST_NAME
    if not archive.exists() or sha256(archive) != SDIST_SHA256:
        cache.mkdir(exist_ok=True)
        pip = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--no-binary"]
        subprocess.run([*pip, ":all:", f"starlette=={STARLETTE_VERSION}", "-d", cache], check=True)
    if sha256(archive) != SDIST_SHA256:
        sys.exit(f"{archive} does not have the pinned sha256 {SDIST_SHA256}")
    return archive


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# Where Starlette's tests name Starlette's own modules in a way no import sees, they are pointed
# at starlite: (file, text, replacement), each for a reason.
ADAPTATIONS = [
    # blockbuster watches the modules it is given for blocking calls on the event loop: the code
    # under test is starlite's.
    ("tests/conftest.py", 'BlockBuster("starlette")', 'BlockBuster("starlite")'),
    ("tests/conftest.py", 'scanned_modules="starlette"', 'scanned_modules="starlite"'),
    # A warning filter's module field is the module that warns: starlite, not starlette.routing.
    ("tests/test_applications.py", 'r":starlette.routing"', 'r":starlite"'),
]


def unpack_tests(archive: Path, into: Path) -> None:
    """Starlette's tests/ and pyproject.toml (its pytest settings) into `into`, adapted."""
    prefix = f"starlette-{STARLETTE_VERSION}/"
    with tarfile.open(archive) as tar:
        for member in tar.getmembers():
            name = member.name.removeprefix(prefix)
            if name == "pyproject.toml" or name.startswith("tests/"):
                member.name = name
                tar.extract(member, into, filter="data")
    for path, text, replacement in ADAPTATIONS:
        source = into / path
        content = source.read_text()
        if text not in content:
            sys.exit(f"compat/run.py: {path} no longer has {text!r}: update ADAPTATIONS")
        source.write_text(content.replace(text, replacement))


def test_files(work: Path, words: list[str]) -> list[str]:
    """The in-scope test files, as paths relative to `work`, optionally filtered."""
    found = sorted(str(path.relative_to(work)) for path in (work / "tests").rglob("test_*.py"))
    in_scope = [path for path in found if path not in OUT_OF_SCOPE]
    return [path for path in in_scope if not words or any(word in path for word in words)]


def run_pytest(work: Path, arguments: list[str], report: Path) -> str:
    """Run pytest in `work` against the working starlite.py; its output if it crashed."""
    environment = dict(os.environ, PYTHONPATH=f"{COMPAT / 'shim'}{os.pathsep}{REPOSITORY}")
    environment.pop("PYTHONWARNINGS", None)
    command = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "--tb=no"]
    command += ["-o", f"timeout={TEST_TIMEOUT}"]
    command += [f"--deselect={test_id}" for test_id in OUT_OF_SCOPE_TESTS]
    try:
        done = subprocess.run(
            [*command, f"--junitxml={report}", *arguments],
            cwd=work,
            env=environment,
            capture_output=True,
            text=True,
            timeout=FILE_TIMEOUT,
        )
    except subprocess.TimeoutExpired:
        return f"timed out after {FILE_TIMEOUT} s"
    # pytest exits 1 when tests fail and 0 when none do; anything else is a crash.
    return "" if done.returncode in (0, 1) else (done.stdout + done.stderr)[-2000:]


# What a strict xfail that passes says in a junit report: the test asserts behaviour that Starlette
# marks as its own known bug, and that starlite has.
STRICT_XPASS = "[XPASS(strict)]"


def read_report(report: Path, path: str) -> tuple[dict[str, bool], list[str]]:
    """Each test id of a junit report and whether it passed (a skip counts as passed), and the
    tests that pass where Starlette has a known bug (counted as passed)."""
    if not report.exists():
        return {}, []
    outcomes: dict[str, bool] = {}
    beyond_starlette = []
    module = path.removesuffix(".py").replace("/", ".")
    for case in ElementTree.parse(report).iter("testcase"):
        classname = case.get("classname", "")
        inner = classname.removeprefix(module).lstrip(".")
        test_id = "::".join(filter(None, [path, inner.replace(".", "::"), case.get("name")]))
        failure = case.find("failure")
        if failure is not None and failure.get("message", "").startswith(STRICT_XPASS):
            beyond_starlette.append(test_id)
            failure = None
        failed = failure is not None or case.find("error") is not None
        outcomes[test_id] = outcomes.get(test_id, True) and not failed
    return outcomes, beyond_starlette


def run_file(work: Path, path: str) -> FileResult:
    """One test file in its own pytest session; its failures once more in another."""
    reports = work / "reports"
    first = reports / (path.replace("/", "_") + ".xml")
    crash = run_pytest(work, [path], first)
    outcomes, beyond_starlette = read_report(first, path)
    failed = [test_id for test_id, passed in outcomes.items() if not passed]
    flipped = []
    if failed:
        second = reports / (path.replace("/", "_") + ".rerun.xml")
        run_pytest(work, failed, second)
        for test_id, passed in read_report(second, path)[0].items():
            if passed:
                flipped.append(test_id)
                outcomes[test_id] = True
    return FileResult(path, outcomes, flipped, beyond_starlette, crash)


def read_expected() -> dict[str, Expected]:
    """The expected-failures list: `test id  # reason`, a reason starting `flaky:` for a test
    that may pass or fail."""
    expected = {}
    for line in EXPECTED_FAILURES.read_text().splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        test_id, _, reason = line.partition("  # ")
        expected[test_id.strip()] = Expected(reason.strip(), reason.startswith("flaky:"))
    return expected


def print_table(results: list[FileResult]) -> tuple[int, int]:
    """A row per file and the total; returns (passed, tests)."""
    print(f"\n{'file':<42} {'tests':>6} {'passed':>7} {'failed':>7} {'%':>7}")
    total_passed = total_tests = 0
    for result in results:
        tests = len(result.outcomes)
        passed = sum(result.outcomes.values())
        total_passed += passed
        total_tests += tests
        percent = 100 * passed / tests if tests else 0.0
        print(f"{result.path:<42} {tests:>6} {passed:>7} {tests - passed:>7} {percent:>6.1f}%")
    percent = 100 * total_passed / total_tests if total_tests else 0.0
    failed = total_tests - total_passed
    print(f"{'total':<42} {total_tests:>6} {total_passed:>7} {failed:>7} {percent:>6.1f}%")
    return total_passed, total_tests


def compare(results: list[FileResult], expected: dict[str, Expected], whole_run: bool) -> bool:
    """Print where the run and the list disagree; whether they agree."""
    outcomes = {test_id: ok for result in results for test_id, ok in result.outcomes.items()}
    unexpected = [test_id for test_id, ok in outcomes.items() if not ok and test_id not in expected]
    stale = [
        test_id for test_id, entry in expected.items() if outcomes.get(test_id) and not entry.flaky
    ]
    ran_files = {result.path for result in results}
    if whole_run:
        stale += [test_id for test_id in expected if test_id.split("::")[0] not in ran_files]
    stale += [
        test_id
        for test_id in expected
        if test_id.split("::")[0] in ran_files and test_id not in outcomes
    ]
    for result in results:
        if result.crash:
            print(f"\n{result.path}: pytest crashed:\n{result.crash}")
        for test_id in result.flipped:
            print(f"flipped (failed, then passed when run again): {test_id}")
        for test_id in result.beyond_starlette:
            print(f"passes where Starlette marks a known bug of its own (strict xfail): {test_id}")
    for test_id in unexpected:
        print(f"FAILED, not on the expected-failures list: {test_id}")
    for test_id in sorted(set(stale)):
        print(f"STALE, listed but passed or not run: {test_id}")
    crashed = any(result.crash for result in results)
    return not unexpected and not stale and not crashed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("words", nargs="*", help="run only the test files whose paths contain one")
    arguments = parser.parse_args()
    expected = read_expected()
    work = Path(tempfile.mkdtemp(prefix="starlite-compat-"))
    try:
        unpack_tests(sdist(), work)
        (work / "reports").mkdir()
        paths = test_files(work, arguments.words)
        with concurrent.futures.ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
            results = list(pool.map(lambda path: run_file(work, path), paths))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    passed, tests = print_table(results)
    agree = compare(results, expected, whole_run=not arguments.words)
    print(f"\nStarlette {STARLETTE_VERSION}'s tests against starlite: {passed} of {tests} pass.")
    print("The expected-failures list " + ("agrees." if agree else "does NOT agree."))
    sys.exit(0 if agree else 1)


if __name__ == "__main__":
    main()
