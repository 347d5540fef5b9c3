"""The generator's GPU path, measured: bf16 training throughput, peak memory and model FLOPs
utilisation on CUDA, and whether CUDA decoding gives the same replies as the CPU.

    bash benchmarks/gpu_check.sh                      # on a machine with an NVIDIA GPU
    .venv/bin/python benchmarks/gpu_check.py --steps 300 --peak-tflops 989

Steps: build the Bitext corpus (as generation_bitext.py does), train the transformer of
benchmarks/configs/bitext_transformer.yml for a fixed number of steps with bf16 autocast,
then decode 200 test questions greedily on CUDA and on the CPU from the same weights.
MFU counts 6 x parameters FLOPs per trained token (source and target), against the GPU's
dense bf16 peak given by --peak-tflops (H100/H200 SXM: 989).
Results: benchmarks/results/gpu_check.{md,json}.
"""

from __future__ import annotations

import argparse
import json
import random
import time
from dataclasses import replace
from datetime import datetime, timezone

import reproduce  # a sibling module
import torch
import yaml
from generation_bitext import BITEXT, RESULTS, ROOT, WORK

from components.corpus import BuildConfig, build_corpus
from components.generator.data import encode_dialogues, length_bucketed_batches, read_split
from components.generator.generator import ResponseGenerator, build_model
from components.generator.tokenizer import PAD_ID, SubwordTokenizer
from components.generator.training import GeneratorConfig, set_seed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=300, help="training steps timed (after 20 warm-up steps)")
    parser.add_argument("--peak-tflops", type=float, default=989.0, help="the GPU's dense bf16 peak")
    parser.add_argument("--replies", type=int, default=200)
    parser.add_argument("--device", default="cuda", help="cpu only checks the script (nothing is saved)")
    args = parser.parse_args()
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit("gpu_check: no CUDA device here; run it where `nvidia-smi` shows a GPU")
    synchronize = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    command = reproduce.command(__file__)
    corpus = WORK / "bitext_corpus"
    if not (corpus / "train.jsonl").exists():
        build_corpus([BITEXT], corpus, BuildConfig(seed=13))
    path = ROOT / "benchmarks" / "configs" / "bitext_transformer.yml"
    config = GeneratorConfig.from_dict(yaml.safe_load(path.read_text()), str(path))
    train, test = read_split(corpus, "train"), read_split(corpus, "test")
    set_seed(config.training.seed)
    tokenizer = SubwordTokenizer.train([t for d in train for t in (d.question, d.answer)], config.tokenizer)
    model = build_model(config.architecture, tokenizer.vocab_size, config.model).to(device).train()
    parameters = sum(p.numel() for p in model.parameters())
    examples = encode_dialogues(train, tokenizer, context_turns=0, max_source_tokens=config.inputs.max_source_tokens,
                                max_target_tokens=config.inputs.max_target_tokens)
    optimiser = torch.optim.AdamW(model.parameters(), lr=config.training.learning_rate)
    loss_function = torch.nn.CrossEntropyLoss(ignore_index=PAD_ID)
    rng = random.Random(0)
    batches = []
    while len(batches) < args.steps + 20:
        batches += list(length_bucketed_batches(examples, config.training.batch_size, config.training.batch_tokens,
                                                rng))
    tokens = 0
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    for step, batch in enumerate(batches[: args.steps + 20]):
        if step == 20:  # warm-up done: kernels chosen, memory pools grown
            synchronize()
            start, tokens = time.perf_counter(), 0
        batch = batch.to(device)
        with torch.autocast(device.type, dtype=torch.bfloat16):
            logits = model(batch.source, batch.source_mask, batch.target_input)
        loss = loss_function(logits.float().flatten(0, 1), batch.target_output.flatten())
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        optimiser.step()
        tokens += int(batch.source_mask.sum()) + batch.target_tokens
    synchronize()
    seconds = time.perf_counter() - start
    tokens_per_second = tokens / seconds
    mfu = 6 * parameters * tokens_per_second / (args.peak_tflops * 1e12)
    model.eval()
    questions = [d.question for d in test[: args.replies]]
    gpu = ResponseGenerator(model, tokenizer, config.inputs, replace(config.decoding, strategy="greedy"),
                            device=device)
    gpu_start = time.perf_counter()
    gpu_replies = [r.text for r in gpu.replies(questions)]
    gpu_seconds = time.perf_counter() - gpu_start
    cpu = ResponseGenerator(model.float().cpu(), tokenizer, config.inputs, replace(config.decoding, strategy="greedy"),
                            device=torch.device("cpu"))
    cpu_replies = [r.text for r in cpu.replies(questions)]
    same = sum(a == b for a, b in zip(gpu_replies, cpu_replies, strict=True))
    result = {"command": command, "date": datetime.now(timezone.utc).strftime("%Y-%m-%d"),
              "commit": reproduce.commit(),
              "gpu": torch.cuda.get_device_name() if device.type == "cuda" else "cpu",
              "parameters": parameters, "steps": args.steps,
              "tokens_per_second": round(tokens_per_second), "peak_memory_gb": round(
                  torch.cuda.max_memory_allocated() / 2**30 if device.type == "cuda" else 0, 2),
              "mfu_percent": round(100 * mfu, 2), "peak_tflops": args.peak_tflops,
              "replies": len(questions), "same_replies_cpu_gpu": same, "gpu_decode_seconds": round(gpu_seconds, 1)}
    lines = [*reproduce.lines(command), "", "# Generator on the GPU", "",
             f"{result['date']}, commit {result['commit']}, {result['gpu']}; transformer of "
             f"`benchmarks/configs/bitext_transformer.yml`, {parameters:,} parameters, bf16 autocast.", "",
             "| tokens/s | peak memory | MFU | greedy replies equal to the CPU's |", "|---|---|---|---|",
             f"| {result['tokens_per_second']:,} | {result['peak_memory_gb']} GiB | {result['mfu_percent']}% "
             f"(of {args.peak_tflops:g} TFLOPS) | {same} of {len(questions)} |"]
    print("\n".join(lines))
    if device.type != "cuda":
        return
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "gpu_check.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    (RESULTS / "gpu_check.json").write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
