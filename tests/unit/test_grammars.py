"""Each role's answer grammar, run through xgrammar (the engine vLLM enforces it with): it accepts the
role's strict answers, rejects malformed ones, and everything it accepts the role's own `is_strict`
and `parse` accept too, so an answer decoded under the grammar is never a format failure."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import pytest

from mapcoder_lite import roles
from mapcoder_lite.prompts import coder, confidence, debugger, direct, planner, retriever, supervisor
from mapcoder_lite.prompts.grammar import UNROLLED_CHARS, at_most, code_block, field
from tests.servers import need


@functools.cache
def _compiled(grammar: str) -> Any:
    import xgrammar

    # No tokenizer: the matcher then checks strings character by character, as decoding does token by token.
    return xgrammar.GrammarCompiler(xgrammar.TokenizerInfo([]), cache_enabled=False).compile_grammar(grammar)


def accepts(grammar: str, text: str) -> bool:
    """Whether `text` is a whole answer of `grammar`: every character accepted, and nothing more owed."""
    import xgrammar

    matcher = xgrammar.GrammarMatcher(_compiled(grammar), terminate_without_stop_token=True)
    return matcher.accept_string(text) and matcher.is_terminated()


@pytest.fixture(autouse=True)
def _xgrammar() -> None:
    need(["xgrammar"])  # installed with vLLM; `make test` fails instead of skipping without it


def agree(module: Any, grammar: str, text: str, language: str = "python", k: int | None = None) -> None:
    """`text` is in the grammar, and so strict and readable for the role."""
    assert accepts(grammar, text), text
    assert module.is_strict(text, language, k), text
    assert module.parse(text, language) is not None, text


def refuse(module: Any, grammar: str, text: str, language: str = "python", k: int | None = None) -> None:
    """`text` is malformed: not in the grammar, and not strict either."""
    assert not accepts(grammar, text), text
    assert not module.is_strict(text, language, k), text


def retrieval(*problems: tuple[str, str, str], algorithm: str = "Brute force: try every pair.") -> str:
    body = "".join(f"<problem>\n<description>{d}</description>\n<code>{c}</code>\n<planning>{p}</planning>\n"
                   "</problem>\n" for d, c, p in problems)
    return f"<root>\n{body}<algorithm>{algorithm}</algorithm>\n</root>"


# A field holds no "<" (it could open or close an element): code in XML writes "&lt;", as XML does.
PAIRS = ("Count pairs with a &lt; b.",
         "\nfor i in range(n):\n    if a[i] &lt; b[i] and a[i] & b[i] == 0:\n        c += 1\n",
         "1. loop over pairs\n2. count")
CPP = ("Sort numbers.", "```cpp\n#include&lt;bits/stdc++.h>\nvector&lt;int> v; cout &lt;&lt; v[0];\n```", "sort; print")
SQUARES = ("Sum of squares.", "print(sum(x * x for x in xs))", "1. square 2. add")


def test_retrieval_grammar_holds_exactly_k_problems_with_every_field() -> None:
    two = retriever.answer_grammar("python", 2)
    agree(retriever, two, retrieval(PAIRS, CPP), k=2)
    agree(retriever, retriever.answer_grammar("python", 3), retrieval(PAIRS, CPP, SQUARES), k=3)
    refuse(retriever, two, retrieval(PAIRS), k=2)  # fewer than k: the measured failure of the 0.5B model
    refuse(retriever, two, retrieval(PAIRS, CPP, SQUARES), k=2)
    refuse(retriever, two, retrieval(PAIRS, ("Sorting", "", "sort")), k=2)  # an empty field
    refuse(retriever, two, retrieval(PAIRS, CPP, algorithm=" \n "), k=2)
    refuse(retriever, two, retrieval(PAIRS, CPP).removesuffix("\n</root>"), k=2)  # cut short
    refuse(retriever, two, "Here you are:\n" + retrieval(PAIRS, CPP), k=2)  # prose around it
    refuse(retriever, two, "```xml\n" + retrieval(PAIRS, CPP) + "\n```", k=2)


def test_retrieval_fields_cannot_hold_tags_or_run_on() -> None:
    # Stricter than is_strict, which reads these: a field holding a tag of the answer would be read as
    # that element by the tolerant reader, and a field past its bound is a model that loops.
    two = retriever.answer_grammar("python", 2)
    code = retriever.parse(retrieval(PAIRS, CPP)).examples[0]["code"]
    assert code.startswith("for i in range(n):\n    if a[i] < b[i]")  # "&lt;" reads as "<"
    for text in ("See <code>x</code> here.", "A <Problem attr> tag.", "A </b> closing tag.", "if a < b:"):
        assert not accepts(two, retrieval(PAIRS, (text, "x = 1", "plan"))), text
    bound = retriever.FIELD_CHARS["description"]
    assert accepts(two, retrieval(PAIRS, ("d" * (bound + 1), "x = 1", "plan")))
    assert not accepts(two, retrieval(PAIRS, ("d" * (bound + 2), "x = 1", "plan")))
    assert not accepts(two, retrieval(PAIRS, ("two sum " * bound, "x = 1", "plan")))


def test_confidence_grammar_is_an_explanation_then_a_score_from_0_to_100() -> None:
    grammar = confidence.answer_grammar()

    def answer(score: str, explanation: str = "It handles the empty list and duplicates.") -> str:
        return f"<root>\n<explanation>{explanation}</explanation>\n<confidence>{score}</confidence>\n</root>"

    for score in ("0", "7", "85", "100"):
        agree(confidence, grammar, answer(score))
    for score in ("101", "250", "85%", "-5", "high", "", "YOUR SCORE: ONE WHOLE NUMBER"):
        refuse(confidence, grammar, answer(score))
    refuse(confidence, grammar, answer("90", explanation=""))
    # Stricter than is_strict: the score comes after the explanation, as the prompt asks (reasoning first).
    assert not accepts(grammar, "<root>\n<confidence>90</confidence>\n<explanation>ok</explanation>\n</root>")
    assert not accepts(grammar, answer("90", explanation="fine <confidence>10</confidence>"))
    assert not accepts(grammar, answer("90", explanation="fine " * confidence.EXPLANATION_CHARS))
    assert accepts(grammar, answer("90", explanation="x" * (confidence.EXPLANATION_CHARS + 1)))


def test_plan_grammar_is_bounded_text_without_code() -> None:
    grammar = planner.answer_grammar()
    agree(planner, grammar, "1. Read n and the list.\n2. Sort it with sorted(xs).\n3. Print the middle element.\n")
    agree(planner, grammar, "Plan: read the two numbers and print their sum.\n")
    for malformed in ("", "  \n", "1. Read.\n```python\nx = 1\n```\n"):
        refuse(planner, grammar, malformed)
    # It ends with a newline (what keeps its token masks cheap: answer_grammar); parse strips it.
    assert not accepts(grammar, "Plan: read the two numbers and print their sum.")
    assert planner.parse("1. Add them.\n") == "1. Add them."
    # Stricter than is_strict (which takes any text without a fence): no backtick at all (what keeps a
    # fence out is cheap to enforce only that way), and bounded.
    assert not accepts(grammar, "1. Return `a + b`\n")
    assert accepts(grammar, "1. " + "x" * (planner.PLAN_CHARS - 3) + "\n")
    assert not accepts(grammar, "1. " + "again " * planner.PLAN_CHARS)


@pytest.mark.parametrize("language", ["python", "cpp"])
def test_coder_grammar_is_one_code_block_and_nothing_else(language: str) -> None:
    grammar = coder.answer_grammar(language)
    program = "def f(a, b):\n    return a < b  # <b> is fine in code\n" if language == "python" else "int main() {}"
    agree(coder, grammar, f"```{language}\n{program}\n```", language)
    refuse(coder, grammar, f"```{language}\nx = 1\n```\n```{language}\ny = 2\n```", language)
    refuse(coder, grammar, f"```{language}\n\n```", language)
    # Stricter than is_strict: the fence closed (is_strict reads an answer cut at max_tokens to its end),
    # no prose around the block, the language's own fence, no backtick in the code, a bounded program.
    assert not accepts(grammar, f"```{language}\ndef f():\n    return 1\n")
    assert not accepts(grammar, f"```{language}\nx = '`'\n```")
    assert accepts(grammar, f"```{language}\n" + "x" * (coder.CODE_CHARS + 1) + "\n```")
    assert not accepts(grammar, f"Here is the code:\n```{language}\n{program}\n```")
    assert not accepts(grammar, f"```{language}\n{program}\n```\nIt compares a and b.")
    assert not accepts(grammar, f"```\n{program}\n```")  # untagged: the prompt asks for the language's fence
    assert not accepts(grammar, f"```{language}\n" + "x = 1\n" * coder.CODE_CHARS + "```")


def test_debugger_grammar_is_the_plan_then_one_code_block() -> None:
    grammar = debugger.answer_grammar()
    code = "```python\ndef f(xs):\n    return sorted(xs)[len(xs) // 2]\n```"
    agree(debugger, grammar, f"1. The middle index was off by one.\n2. Use len(xs) // 2.\n{code}")
    agree(debugger, grammar, f"1. Sort first.\n\n{code}")
    agree(debugger, grammar, f"The fix: sort first.\n{code}")
    refuse(debugger, grammar, code)  # no plan
    refuse(debugger, grammar, "1. Sort first.\n")  # no code
    refuse(debugger, grammar, f"1. Sort first.\n{code}\n{code}")
    assert not accepts(grammar, "1. " + "again " * planner.PLAN_CHARS + code)  # a plan without end


def test_supervisor_grammar_blames_exactly_one_agent_with_feedback_and_no_code() -> None:
    grammar = supervisor.answer_grammar()

    def answer(agent: str, feedback: str = "Handle the empty input before indexing.") -> str:
        return (f"<root>\n<analysis>The program indexes an empty list.</analysis>\n<agent>{agent}</agent>\n"
                f"<feedback>{feedback}</feedback>\n</root>")

    agree(supervisor, grammar, answer("planner"))
    agree(supervisor, grammar, answer("coder", "Check that i is below n before reading a[i]."))
    for agent in ("tester", "Planner", "the coder", "planner or coder", ""):
        refuse(supervisor, grammar, answer(agent))
    refuse(supervisor, grammar, answer("coder", "Write:\n```python\nif not xs: return 0\n```"))
    refuse(supervisor, grammar, answer("coder", ""))
    assert not accepts(grammar, answer("coder", "Use `len(xs)`."))  # stricter: no backtick in feedback


def test_direct_and_cot_grammars_end_with_the_code_block_the_coder_parser_reads() -> None:
    code = "```python\ndef add(a, b):\n    return a + b\n```"
    assert direct.answer_grammar("python") == coder.answer_grammar("python")
    cot = direct.answer_grammar("python", cot=True)
    reasoning = "We add two numbers. Sample: add(2, 3) gives 5.\n1. Return a + b."
    agree(coder, cot, f"{reasoning}\n\n{code}")
    assert not accepts(cot, code)  # the reasoning comes first
    assert not accepts(cot, f"{reasoning}\n\n{code}\nDone.")
    assert not accepts(cot, f"{reasoning}\n```python\nx\n```\nmore\n\n{code}")  # two blocks


def test_every_role_with_a_format_registers_its_grammar() -> None:
    grammars: dict[str, Callable[[str, int], str] | None] = {n: spec.grammar for n, spec in roles.REGISTRY.items()}
    assert grammars == {
        "retriever": retriever.answer_grammar,
        "planner": planner.answer_grammar,
        "confidence": confidence.answer_grammar,
        "coder": coder.answer_grammar,
        "debugger": debugger.answer_grammar,
        "supervisor": supervisor.answer_grammar,
    }
    for grammar in grammars.values():
        assert grammar is not None
        _compiled(grammar("python", 3))  # xgrammar takes it; a bad rule raises here, with its name


@pytest.mark.parametrize("bound", [7, UNROLLED_CHARS, UNROLLED_CHARS + 1, 2 * UNROLLED_CHARS, 2 * UNROLLED_CHARS + 5])
def test_a_bound_written_in_chunks_takes_every_length_up_to_it_and_no_more(bound: int) -> None:
    grammar = f'root ::= "[" {at_most("[^<]", bound)} "]"\n'
    for length in (0, 1, bound - 1, bound, *range(UNROLLED_CHARS - 2, UNROLLED_CHARS + 3)):
        if 0 <= length <= bound:
            assert accepts(grammar, "[" + "x" * length + "]"), length
    assert not accepts(grammar, "[" + "x" * (bound + 1) + "]")
    assert not accepts(grammar, "[" + "x" * (bound // 2) + "<]")


def test_grammar_pieces_refuse_what_they_cannot_write() -> None:
    with pytest.raises(ValueError, match="exclude holds"):
        field("]", 10)
    with pytest.raises(ValueError, match="code-fence grammar"):
        code_block('py"thon', 100)
    with pytest.raises(ValueError, match="at least one"):
        retriever.answer_grammar("python", 0)
