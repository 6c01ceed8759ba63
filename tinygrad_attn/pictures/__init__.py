"""Pictures: the recorded graph as a ``graphviz.Digraph`` (``ta.draw``), rendering with the
system ``dot`` or the embedded WebAssembly Graphviz (``ta.render``), the built-in figures,
and the package's own layers read from its imports (``architecture``).
"""
