"""Study material, built on the layers below it (engine, attention, nn, pictures, verify):

* ``derivations/`` — the literate derivation documents, one module each (prose and
  proofs together); ``derivations.run(name, out_dir)`` builds one.
* ``claims.py`` — six claims about attention as code; ``claim_pictures.py`` draws them.
* the toy translation task: ``data.py`` (the tasks), ``models.py`` (RNNsearch and a
  transformer with a key/value cache for decoding), ``train.py`` (training, saving, the
  ``train`` command), ``plots.py`` (alignment heat maps).
* ``exercises.py`` — the exercises the tool checks (``exercise_check.py`` decides an
  answer and diagnoses a wrong one); ``solutions.py`` their solutions, for teachers.
* ``demo.py`` — ``tinygrad-attn demo``: everything checked, derived and drawn into one
  report; ``units.py`` runs its units of work in one process per core, ``cache.py``
  keeps their results keyed by the content they depend on; ``pages.py`` renders the
  derivations as HTML pages that read right offline.

Nothing here is imported by ``import tinygrad_attn`` (``ta.claims`` loads on first use).
"""
