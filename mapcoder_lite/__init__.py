"""MapCoder-Lite as a LangGraph graph: retriever, planner, confidence, coder and debugger agents."""

__version__ = "0.1.0"
