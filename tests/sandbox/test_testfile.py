from __future__ import annotations

import pytest

from grpo_env.sandbox.testfile import TestFileError, suite_from_test_source


def test_each_top_level_assert_is_one_case_with_the_setup_before_it():
    source = (
        "import math\n"
        "def helper(x):\n"
        "    assert x  # a helper's assert is not a test\n"
        "    return x\n"
        "assert f(1) == 1\n"
        "r = f(2)\n"
        "assert r == 2\n"
        "for i in range(3):\n"
        "    assert f(i) == i\n"
        "print('trailing')\n"
    )
    suite = suite_from_test_source(source)
    assert [c.name.split(":")[0] for c in suite.cases] == ["line 5", "line 7", "line 8"]
    assert suite.cases[0].code.startswith("import math\ndef helper(x):")
    assert suite.cases[1].code == "r = f(2)\nassert r == 2"
    assert "trailing" not in "".join(c.code for c in suite.cases)


def test_no_asserts_is_an_error():
    with pytest.raises(TestFileError, match="no assert"):
        suite_from_test_source("x = 1\n", "t.py")


def test_syntax_error_names_file_and_line():
    with pytest.raises(TestFileError, match=r"t\.py:2: invalid syntax"):
        suite_from_test_source("assert 1\nassert (\n", "t.py")
