"""`kefu explain`: why the assistant answered a message as it did.

attribution.py  which words made the intent (LIME-style and occlusion; numpy, no Rasa)
report.py       the explanation as data, rendered as text or one offline HTML file
assistant.py    the Rasa adapter: a trained model's NLU, policies and generator, explained
"""
