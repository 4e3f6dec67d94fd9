"""Each role's prompt text beside the parser of its answer."""

from mapcoder_lite.prompts import coder, confidence, debugger, planner, retriever

__all__ = ["coder", "confidence", "debugger", "planner", "retriever"]
