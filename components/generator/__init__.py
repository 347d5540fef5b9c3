"""Kefu's response generator in plain PyTorch: tokenizer, Seq2Seq and Transformer models,
training, decoding and metrics. Nothing here imports Rasa."""
