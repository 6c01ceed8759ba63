"""Study material: the claims about attention and their pictures, the derivation
documents, the toy translation task (data, models, training) and the demo report.
"""
