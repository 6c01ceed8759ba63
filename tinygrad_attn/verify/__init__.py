"""Verifiers: ``ta.gradcheck`` (engine vs finite differences vs SymPy), the symbolic
derivation and equivalence of gradients, the index-notation prover and its every-size
proofs, and the pytest helper.
"""
