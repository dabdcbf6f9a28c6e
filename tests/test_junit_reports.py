"""The JUnit reports of `make test` cost no warning.

`make bench` and `make test-loaded` run `make test` with JUNIT_DIR set, and
each pytest run then writes a JUnit report (tests/conftest.py). pytest
writes them in its default `xunit2` family, and the fixtures that add
a property or attribute to one test's entry, `record_property` and
`record_xml_attribute`, warn under it ("incompatible with junit_family
'xunit2'"). A figure for the report goes on the test suite's entry instead,
with `record_testsuite_property`, which xunit2 allows.
"""

from __future__ import annotations

import ast

from tests.harness import ROOT

TESTS = ROOT / "tests"
WARN_UNDER_XUNIT2 = {"record_property", "record_xml_attribute"}


def test_no_test_asks_for_a_fixture_that_warns_under_xunit2() -> None:
    found = []
    for path in sorted(TESTS.rglob("*.py")):
        if "node_modules" in path.parts:
            continue
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                arguments = node.args.posonlyargs + node.args.args + node.args.kwonlyargs
                found += [
                    f"{path.relative_to(ROOT)}:{argument.lineno}: {node.name}() asks for "
                    f"{argument.arg}, which warns when a JUnit report is written; use "
                    "record_testsuite_property"
                    for argument in arguments
                    if argument.arg in WARN_UNDER_XUNIT2
                ]
    assert not found, "\n".join(found)
