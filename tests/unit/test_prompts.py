"""Tolerant parsing of each role's answer, and the strict checks used for training data."""

from __future__ import annotations

from mapcoder_lite.prompts import coder, confidence, debugger, planner, retriever
from mapcoder_lite.prompts.parsing import extract_code, xml_tag, xml_tags

STRICT_RETRIEVAL = """<root>
<problem>
<description>Count pairs with a < b and a & b == 0.</description>
<code>
for i in range(n):
    if a[i] < b[i] and a[i] & b[i] == 0:
        count += 1
</code>
<planning>1. loop 2. count</planning>
</problem>
<algorithm>Brute force: try every pair.</algorithm>
</root>"""


def test_retrieval_with_unescaped_code_parses_and_is_strict() -> None:
    parsed = retriever.parse(STRICT_RETRIEVAL)
    assert parsed is not None
    assert parsed.examples[0]["code"].strip().startswith("for i in range(n):")
    assert "a[i] < b[i] and a[i] & b[i] == 0" in parsed.examples[0]["code"]
    assert parsed.algorithm == "Brute force: try every pair."
    assert retriever.is_strict(STRICT_RETRIEVAL, k=1)
    assert not retriever.is_strict(STRICT_RETRIEVAL, k=3)


def test_retrieval_in_a_fence_with_prose_and_no_root_still_parses_but_is_not_strict() -> None:
    answer = (
        "Sure! Here are the problems:\n```xml\n"
        "<problem><description>Two sum</description><code>```python\nprint(1)\n```</code>"
        "<planning>hash map</planning></problem>\n"
        "<problem><description>Three sum</description><code>x &lt; y</code><planning>sort</planning></problem>\n"
        "<algorithm>Hashing</algorithm>\n```\nHope this helps."
    )
    parsed = retriever.parse(answer)
    assert parsed is not None
    assert [e["description"] for e in parsed.examples] == ["Two sum", "Three sum"]
    assert parsed.examples[0]["code"] == "print(1)"  # the fence inside <code> is dropped
    assert parsed.examples[1]["code"] == "x < y"  # entities are unescaped
    assert parsed.algorithm == "Hashing"
    assert not retriever.is_strict(answer)


def test_retrieval_without_examples_is_a_failure() -> None:
    assert retriever.parse("<root><algorithm>Greedy</algorithm></root>") is None
    assert retriever.parse("I don't know.") is None


def test_answer_cut_at_max_tokens_reads_the_unclosed_element() -> None:
    assert xml_tags("<root><problem><description>A</description><planning>1. do", "planning") == ["1. do"]


def test_confidence_forms() -> None:
    assert confidence.parse("<root><explanation>ok</explanation><confidence>85</confidence></root>").confidence == 85
    assert confidence.parse("```xml\n<confidence> 70% </confidence>\n```").confidence == 70
    assert confidence.parse("<confidence>250</confidence>").confidence == 100
    assert confidence.parse("<confidence>high</confidence>") is None
    assert confidence.parse("<confidence>85/100</confidence>").confidence == 85
    # Seen from the 0.5B model: the placeholder copied back is a format failure, not a score of 0.
    assert (
        confidence.parse("<root><explanation>no</explanation><confidence>an integer from 0 to 100</confidence></root>")
        is None
    )
    assert confidence.parse("Confidence: 90") is None
    assert confidence.is_strict("<root><explanation>fine</explanation><confidence>90</confidence></root>")
    assert not confidence.is_strict("<root><explanation>fine</explanation><confidence>90%</confidence></root>")


def test_code_extraction_prefers_the_last_block_in_the_language() -> None:
    answer = "Plan\n```\nnot this\n```\nthen\n```python\nfirst\n```\nand\n```py\nsecond\n```\n```text\nlog\n```"
    assert extract_code(answer) == "second"
    assert extract_code("```\nuntagged\n```") == "untagged"
    assert extract_code("```python\nunclosed = 1\n") == "unclosed = 1"
    assert extract_code("no code here") is None


def test_coder_fallback_uses_compiling_text_only() -> None:
    assert coder.parse("def f():\n    return 1\n") == "def f():\n    return 1"
    assert coder.parse("Here is how you would do it in words.") is None
    assert coder.is_strict("```python\nprint(1)\n```")
    assert not coder.is_strict("```python\nprint(1)\n```\n```python\nprint(2)\n```")


def test_debugger_splits_plan_and_code() -> None:
    revision = debugger.parse("1. fix the off-by-one\n2. return\n```python\nprint(2)\n```")
    assert revision is not None
    assert revision.plan == "1. fix the off-by-one\n2. return" and revision.code == "print(2)"
    assert debugger.is_strict("1. fix\n```python\nprint(2)\n```")
    assert not debugger.is_strict("```python\nprint(2)\n```")
    assert debugger.parse("I could not find the bug.") is None


def test_planner_strips_a_heading() -> None:
    assert planner.parse("## Planning:\n1. read\n2. print") == "1. read\n2. print"
    assert planner.parse("   \n") is None
    assert not planner.is_strict("1. read\n```python\nx\n```")


def test_prompts_keep_the_language_a_field() -> None:
    messages = coder.build_messages("Print 1.", [{"input": "", "output": "1"}], "cpp", "1. print", "", None)
    assert "C++17" in messages[1]["content"] and "```cpp" in messages[1]["content"]
    assert xml_tag("<root><a>1</a></root>", "a") == "1"
