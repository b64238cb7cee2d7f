"""Weight averaging (``train.ema``): the averaged model is an exact EMA of the trained weights,
it is the model every evaluation uses, and a resumed run ends like an uninterrupted one."""

from __future__ import annotations

import pytest
import torch

from helpers import train_interrupted_and_resumed
from segforget.train import Callback, Trainer, load_run, train


class RecordWeights(Callback):
    """Keep a copy of the trained (not averaged) weights after every optimizer step."""

    def __init__(self) -> None:
        self.steps: list[dict[str, torch.Tensor]] = []
        self.trainer: Trainer | None = None

    def on_batch_end(self, trainer, batch, logits, loss) -> None:
        self.trainer = trainer
        self.steps.append({k: v.detach().clone() for k, v in trainer.model.state_dict().items()})


def reference_ema(initial: dict, steps: list[dict], decay: float) -> dict:
    """Plain EMA over the recorded weights: a <- decay * a + (1 - decay) * w, integers copied."""
    average = {
        k: v.clone().double() if v.is_floating_point() else v.clone() for k, v in initial.items()
    }
    for weights in steps:
        for key, value in weights.items():
            if value.is_floating_point():
                average[key] = decay * average[key] + (1 - decay) * value.double()
            else:
                average[key] = value.clone()
    return average


def test_ema_config_is_validated(tiny_config):
    config = tiny_config
    config.train.ema = 1.0
    with pytest.raises(ValueError, match=r"train\.ema"):
        config.validate()
    config.train.ema = -0.1
    with pytest.raises(ValueError, match=r"train\.ema"):
        config.validate()
    config.train.ema = 0.9
    config.validate()


def test_averaged_model_is_the_ema_of_the_trained_weights(tiny_config, tmp_path):
    torch.manual_seed(0)
    tiny_config.train.ema = 0.7
    tiny_config.train.epochs = 2
    initial: dict[str, torch.Tensor] = {}

    class Initial(Callback):
        def on_train_start(self, trainer) -> None:
            initial.update({k: v.detach().clone() for k, v in trainer.model.state_dict().items()})

    record = RecordWeights()
    train(tiny_config, tmp_path / "run", callbacks=[Initial(), record])
    assert len(record.steps) >= 4
    expected = reference_ema(initial, record.steps, 0.7)
    averaged = record.trainer.averaged.state_dict()
    for key, value in expected.items():
        if value.is_floating_point():
            torch.testing.assert_close(averaged[key].double(), value, rtol=1e-5, atol=1e-6)
        else:
            assert torch.equal(averaged[key], value), key
    # The average differs from the trained weights (else this test could not fail).
    trained = record.trainer.model.state_dict()
    assert any(
        not torch.allclose(trained[k], averaged[k])
        for k in trained
        if trained[k].is_floating_point()
    )
    # The checkpoint's model is the averaged one; the trained weights travel for resuming.
    state = torch.load(tmp_path / "run" / "checkpoints" / "last.pt", weights_only=True)
    for key, value in averaged.items():
        assert torch.equal(state["model"][key], value)
        assert torch.equal(state["train_model"][key], trained[key])


def test_every_evaluation_uses_the_averaged_model(tiny_config, tmp_path):
    """The test predictions written by the run are the averaged model's argmax."""
    tiny_config.train.ema = 0.8
    record = RecordWeights()
    train(tiny_config, tmp_path / "run", callbacks=[record])
    trainer, run = record.trainer, load_run(tmp_path / "run")
    split = run.available_predictions()[-1]
    dataset = trainer.data.dataset(*split)
    item = dataset[0]
    with torch.inference_mode():
        image = item["image"][None]
        by_average = trainer.averaged.eval()(image).argmax(1)[0]
    written = torch.from_numpy(run.predictions(*split)[int(item["section"])].astype("int64"))
    assert torch.equal(written, by_average)
    assert trainer.model.training  # evaluation passes leave the trained model in train mode


def test_resume_with_ema_equals_uninterrupted_run(tiny_config, tmp_path):
    tiny_config.train.ema = 0.6
    tiny_config.train.epochs = 2
    full, split = train_interrupted_and_resumed(tiny_config, tmp_path, after=1)
    a = torch.load(full / "checkpoints" / "last.pt", weights_only=True)
    b = torch.load(split / "checkpoints" / "last.pt", weights_only=True)
    for part in ("model", "train_model"):
        assert all(torch.equal(a[part][k], b[part][k]) for k in a[part])


def test_averaged_model_is_evaluated_without_the_feature_mixer(tiny_config, tmp_path):
    """``style-feature`` mixes channel statistics through a hook that follows the trained
    model's mode; evaluating the average must run it in eval mode too (the identity)."""
    tiny_config.train.ema = 0.8
    tiny_config.method.name = "online"
    tiny_config.method.options = {"inner": "style-feature", "warmup": 1, "k": 1, "p": 1.0}
    record = RecordWeights()
    train(tiny_config, tmp_path / "run", callbacks=[record])
    trainer, run = record.trainer, load_run(tmp_path / "run")
    assert trainer.method.refreshes >= 1
    trainer.model.eval()  # the hook's mixer is the identity now
    for split, view in run.available_predictions():
        dataset = trainer.data.dataset(split, view)
        written = run.predictions(split, view)
        with torch.inference_mode():
            for item in dataset:
                expected = trainer.averaged(item["image"][None]).argmax(1)[0].numpy()
                assert (written[int(item["section"])] == expected).all(), (split, view)
